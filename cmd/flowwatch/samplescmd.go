package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"flowwatch/samples"
	"flowwatch/samples/synth"
)

func runSamples(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("samples", stderr)
	dir := fs.String("dir", samples.MediaDir(), "`folder` to write the samples into")
	force := fs.Bool("force", false, "make the synthetic samples again even when present")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("samples: %w", err)
	}
	log := newLogger(stderr)
	if _, err := samples.PrepareVtest(ctx, *dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "samples: vtest ready in %s\n", *dir)
	for _, s := range samples.Builtin() {
		if s.Source != "" {
			continue
		}
		video := filepath.Join(*dir, s.File)
		truth := filepath.Join(*dir, s.Truth)
		if !*force && exists(video) && exists(truth) {
			fmt.Fprintf(stdout, "samples: %s present\n", s.Name)
			continue
		}
		cfg, err := synth.PresetConfig(presetOf(s.Name))
		if err != nil {
			return fmt.Errorf("samples: %s: %w", s.Name, err)
		}
		cfg.Logger = log
		fmt.Fprintf(stdout, "samples: generating %s (%dx%d, %s)\n", s.Name, cfg.Width, cfg.Height, cfg.Duration)
		if err := synth.Generate(ctx, cfg, video, truth); err != nil {
			return fmt.Errorf("samples: %s: %w", s.Name, err)
		}
	}
	return nil
}

// presetOf maps a built-in synthetic sample's name (synth-dense) to its
// generator preset (dense).
func presetOf(name string) string {
	const prefix = "synth-"
	if len(name) > len(prefix) && name[:len(prefix)] == prefix {
		return name[len(prefix):]
	}
	return name
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
