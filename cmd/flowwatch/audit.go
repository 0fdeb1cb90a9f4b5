package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

// runAudit checks the audit log: `flowwatch audit verify` walks the hash
// chain and names the first entry that was changed or removed.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return fmt.Errorf("audit: say what to do: flowwatch audit verify [-c config.yaml] [--data DIR]")
	}
	fs := newFlagSet("audit verify", stderr)
	cfgPath := fs.String("c", "", "configuration `file` (default: the embedded demo)")
	dataDir := fs.String("data", "", "data `folder`, overriding storage.data_dir")
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("audit verify: unexpected arguments %q", rest)
	}
	var cfg *config.Config
	if *cfgPath == "" {
		cfg, err = config.Demo()
	} else {
		cfg, err = config.Load(*cfgPath)
	}
	if err != nil {
		return err
	}
	if *dataDir != "" {
		cfg.Storage.DataDir = *dataDir
	}
	path := filepath.Join(cfg.Storage.DataDir, "flowwatch.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	db, err := store.Open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := db.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit verify %s: %w (checked %d entries before it)", path, err, n)
	}
	fmt.Fprintf(stdout, "audit chain intact: %d entries in %s\n", n, path)
	return nil
}
