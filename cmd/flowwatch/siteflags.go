package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

// siteFlags are the flags shared by every command that works on a site's
// config and data: -c and --data.
type siteFlags struct {
	cfgPath, dataDir *string
}

func addSiteFlags(fs *flag.FlagSet) siteFlags {
	return siteFlags{
		cfgPath: fs.String("c", "", "configuration `file` (default: the embedded demo)"),
		dataDir: fs.String("data", "", "data `folder`, overriding storage.data_dir"),
	}
}

// load reads the config, the embedded demo without -c, and applies --data.
func (f siteFlags) load() (*config.Config, error) {
	var cfg *config.Config
	var err error
	if *f.cfgPath == "" {
		cfg, err = config.Demo()
	} else {
		cfg, err = config.Load(*f.cfgPath)
	}
	if err != nil {
		return nil, err
	}
	if *f.dataDir != "" {
		cfg.Storage.DataDir = *f.dataDir
	}
	return cfg, nil
}

// dbPath is where a site keeps its database.
func dbPath(cfg *config.Config) string { return filepath.Join(cfg.Storage.DataDir, "flowwatch.db") }

// openExistingStore opens the site's database for a command that reads
// what serve stored; it never creates an empty one.
func openExistingStore(what string, cfg *config.Config) (*store.Store, error) {
	path := dbPath(cfg)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: no stored data: %w", what, err)
	}
	return store.Open(path)
}
