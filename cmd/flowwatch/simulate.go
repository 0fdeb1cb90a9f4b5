package main

import (
	"context"
	"fmt"
	"io"

	"flowwatch/samples"
)

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", stderr)
	listen := fs.String("listen", samples.DefaultListen, "RTSP `address`; UDP uses the port +1000 and +1001")
	loop := fs.Bool("loop", true, "start each video over at its end (false: one pass)")
	user := fs.String("user", "", "require this `username` of clients")
	pass := fs.String("pass", "", "require this `password` of clients")
	cache := fs.String("cache", "", "`folder` for transcoded videos (default: the user cache folder)")
	videos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if (*user == "") != (*pass == "") {
		return fmt.Errorf("simulate: --user and --pass go together")
	}
	if *cache == "" {
		if *cache, err = samples.DefaultCacheDir(); err != nil {
			return err
		}
	}
	paths, err := samples.ResolveVideos(ctx, videos, *cache)
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	sim := samples.SimulatorConfig{Listen: *listen, Loop: *loop, Username: *user, Password: *pass, Logger: log}
	return samples.Serve(ctx, sim, paths)
}
