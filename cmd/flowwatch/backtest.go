package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"flowwatch/alerting"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
)

// runBacktest replays stored counts through the site's rules, or a
// candidate rules file, and prints the alerts they would have raised.
func runBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backtest", stderr)
	sf := addSiteFlags(fs)
	rulesPath := fs.String("rules", "", "candidate rules `file` (YAML with one rules: mapping) to try instead of the config's")
	from := fs.String("from", "24h", "start: an RFC 3339 `time`, or a duration ago such as 24h")
	to := fs.String("to", "0s", "end: an RFC 3339 `time`, or a duration ago (0s: now)")
	asJSON := fs.Bool("json", false, "print the whole result as JSON")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("backtest: unexpected arguments %q", rest)
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	if *rulesPath != "" {
		data, err := os.ReadFile(*rulesPath)
		if err != nil {
			return fmt.Errorf("backtest: %w", err)
		}
		if cfg, err = config.WithRules(cfg, *rulesPath, data); err != nil {
			return err
		}
	}
	now := time.Now()
	start, err := parseWhen(*from, now)
	if err != nil {
		return fmt.Errorf("backtest: --from: %w", err)
	}
	end, err := parseWhen(*to, now)
	if err != nil {
		return fmt.Errorf("backtest: --to: %w", err)
	}
	if !end.After(start) {
		return fmt.Errorf("backtest: --to (%s) must be after --from (%s)", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	db, err := openExistingStore("backtest", cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := alerting.Backtest(cfg, func(fn func(event.CountPoint) error) error {
		return db.ReplayCounts(ctx, start, end, fn)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBacktest(stdout, res, start, end)
	return nil
}

// parseWhen reads a --from or --to value, the same for every command: an
// RFC 3339 time, a date (YYYY-MM-DD, its midnight UTC), or a duration
// before now such as 24h.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time, a date YYYY-MM-DD or a duration ago such as 24h, got %q", s)
	}
	return now.Add(-d), nil
}

func printBacktest(w io.Writer, res alerting.BacktestResult, start, end time.Time) {
	fmt.Fprintf(w, "replayed %d zone counts from %s to %s: %d alerts\n", res.Samples,
		start.Local().Format(time.DateTime), end.Local().Format(time.DateTime), len(res.Alerts))
	if len(res.Alerts) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOPENED\tLASTED\tRULE\tTARGET\tPEAK\tMESSAGE")
	for _, a := range res.Alerts {
		lasted := "open at the end"
		if !a.ResolvedAt.IsZero() {
			lasted = a.ResolvedAt.Sub(a.OpenedAt).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.OpenedAt.Local().Format(time.DateTime), lasted,
			a.Rule, a.Target, peakLevel(res.Changes, a.ID), strings.SplitN(a.MessageEN, ". ", 2)[0])
	}
	tw.Flush()
}

// peakLevel is the highest level an alert reached.
func peakLevel(chs []event.AlertChange, id int64) event.Level {
	var top event.Level
	for _, ch := range chs {
		if ch.Alert.ID == id && ch.Alert.Level.Rank() > top.Rank() {
			top = ch.Alert.Level
		}
	}
	return top
}
