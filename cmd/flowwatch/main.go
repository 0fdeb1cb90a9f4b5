// Command flowwatch is the one flowwatch binary: `serve` (the default) runs
// ingest, analysis and the console; `simulate` serves videos as RTSP
// cameras; `analyze` counts people in a file or stream; `samples` prepares
// the sample videos; `backtest` replays stored counts through candidate
// alert rules; `audit verify` checks the audit chain; `export` writes
// everything held about a period to a ZIP file; `secrets` keeps
// camera passwords and webhook secrets encrypted; `version` prints the
// build.
// main only wires the stages together; each stage lives in its own package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run flowwatch: ingest, analysis, alerts and the console (default)", runServe},
		{"simulate", "serve videos as looping live RTSP cameras", runSimulate},
		{"analyze", "count people in a video file or rtsp:// URL, per zone, into a CSV", runAnalyze},
		{"samples", "prepare the built-in sample videos (vtest and the synthetic crowds)", runSamples},
		{"backtest", "replay stored counts through the rules (or candidate --rules) and list the alerts they raise", runBacktest},
		{"audit", "audit verify: check that no audit entry was changed or removed", runAudit},
		{"export", "export everything held about a period (--from, --to) to a ZIP file (--out)", runExport},
		{"secrets", "keygen, import, set, list, rotate, delete: camera passwords and webhook secrets, encrypted", runSecrets},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "flowwatch:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, args, stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", name)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: flowwatch [COMMAND] [FLAGS] [ARGS]")
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "`flowwatch COMMAND -h` lists a command's flags.")
}

// newFlagSet makes a subcommand's flag set, reporting to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("flowwatch "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses flags that may stand before, between or after the
// positional arguments, and returns the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "flowwatch %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
