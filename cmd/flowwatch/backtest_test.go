package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// openDataStore opens, creating it when missing, the store of the --data
// folder dir; the caller closes it.
func openDataStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestBacktestCommand(t *testing.T) {
	dir := t.TempDir()
	db := openDataStore(t, dir)
	// ten minutes of the demo's square at 190 of 220 places (86%)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	var vals []store.CountValue
	for s := range 600 {
		vals = append(vals, store.CountValue{Target: event.ZoneTarget("synth-dense", "square"),
			Time: start.Add(time.Duration(s) * time.Second), Count: 190})
	}
	if err := db.AddCounts(context.Background(), vals); err != nil {
		t.Fatal(err)
	}
	db.Close()
	from := start.Add(-time.Minute).Format(time.RFC3339)
	backtest := func(extra ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"backtest", "--data", dir, "--from", from, "--to", "1m"}, extra...), &out, io.Discard)
		return out.String(), err
	}
	out, err := backtest()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "replayed 600 zone counts") || !strings.Contains(out, "area:square") || !strings.Contains(out, "yellow") {
		t.Fatalf("demo rules over the stored square:\n%s", out)
	}
	// a planner's candidate with yellow at 90% raises nothing there
	rules := filepath.Join(dir, "candidate.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  yellow: 0.9\n  orange: 0.95\n  red: 1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = backtest("--rules", rules)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, ": 0 alerts") {
		t.Fatalf("candidate rules:\n%s", out)
	}
	// a broken candidate is refused with its line
	if err := os.WriteFile(rules, []byte("rules:\n  yellow: 0.9\n  orange: 0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = backtest("--rules", rules); err == nil || !strings.Contains(err.Error(), "candidate.yaml:2") {
		t.Fatalf("broken candidate: %v", err)
	}
	if _, err = backtest("--from", "yesterday"); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Fatalf("bad --from: %v", err)
	}
	var js bytes.Buffer
	if err := run(context.Background(), []string{"backtest", "--data", dir, "--from", from, "--json"}, &js, io.Discard); err != nil || !strings.Contains(js.String(), `"samples": 600`) {
		t.Fatalf("--json: %v\n%s", err, js.String())
	}
}
