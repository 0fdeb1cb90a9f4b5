package main

import (
	"context"
	"fmt"
	"io"
)

// runAudit checks the audit log: `flowwatch audit verify` walks the hash
// chain and names the first entry that was changed or removed.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return fmt.Errorf("audit: say what to do: flowwatch audit verify [-c config.yaml] [--data DIR]")
	}
	fs := newFlagSet("audit verify", stderr)
	sf := addSiteFlags(fs)
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("audit verify: unexpected arguments %q", rest)
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	path := dbPath(cfg)
	db, err := openExistingStore("audit verify", cfg)
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
