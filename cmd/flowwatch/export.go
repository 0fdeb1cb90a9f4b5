package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"flowwatch/console"
	"flowwatch/internal/store"
)

// runExport writes everything the site holds about a period to a ZIP
// file: counts, alerts, heatmaps, audit entries, zone layouts and stored
// snapshots, with a manifest (console.WriteExport, the same archive as GET
// /api/v1/export). The export is audited ("export.all") like the
// console's. The archive is written to a temporary file beside --out and
// renamed when complete, so a failed export leaves no partial file.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", stderr)
	sf := addSiteFlags(fs)
	fromFlag := fs.String("from", "", "start of the period, included: an RFC 3339 `time`, a date YYYY-MM-DD (UTC) or a duration ago such as 24h")
	toFlag := fs.String("to", "", "end of the period, excluded: an RFC 3339 `time`, a date YYYY-MM-DD (UTC) or a duration ago (0s: now)")
	out := fs.String("out", "", "the ZIP `file` to write")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return fmt.Errorf("export: unexpected arguments %q", rest)
	case *fromFlag == "" || *toFlag == "":
		return errors.New("export: --from and --to are needed")
	case *out == "":
		return errors.New("export: --out is needed")
	}
	now := time.Now()
	from, err := parseWhen(*fromFlag, now)
	if err != nil {
		return fmt.Errorf("export: --from: %w", err)
	}
	to, err := parseWhen(*toFlag, now)
	if err != nil {
		return fmt.Errorf("export: --to: %w", err)
	}
	if !to.After(from) {
		return fmt.Errorf("export: --to %s must come after --from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	db, err := openExistingStore("export", cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	period := fmt.Sprintf("%s to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	if _, err := db.AppendAudit(ctx, store.AuditEntry{Actor: "flowwatch", Action: "export.all", Target: "everything held",
		Detail: "zip, " + period + ", command line", Remote: "command line"}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".flowwatch-export-*.zip")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	m, err := console.WriteExport(ctx, tmp, console.ExportOptions{Store: db, Site: cfg, From: from, To: to, By: "command line"})
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("export: write %s: %w", *out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export: write %s: %w", *out, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	done = true
	fmt.Fprintf(stdout, "wrote %s: %s\n", *out, period)
	for _, f := range m.Files {
		fmt.Fprintf(stdout, "  %-40s %8d rows %10d bytes\n", f.Name, f.Rows, f.Bytes)
	}
	return nil
}
