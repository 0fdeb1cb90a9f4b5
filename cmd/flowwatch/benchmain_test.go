package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"flowwatch/samples"
)

// The ingest benchmarks (ingest_bench_test.go) run their RTSP cameras in a
// child process, so that the CPU the cameras cost to serve is not counted
// against the CPU it costs to receive and decode them. The child is this
// test binary started again with these variables set; TestMain then runs the
// simulator instead of the tests.
const (
	// benchSimVideoEnv names the prepared H.264 stream the child serves.
	benchSimVideoEnv = "FLOWWATCH_BENCH_SIM_VIDEO"
	// benchSimCamerasEnv is how many paths of that stream it serves.
	benchSimCamerasEnv = "FLOWWATCH_BENCH_SIM_CAMERAS"
)

// benchKeyframeInterval is the keyframe interval of the benchmark clip
// (synth encodes a keyframe every two seconds). The child starts its paths
// spread over one interval, so the keyframes of the simulated cameras fall
// at different moments, as those of independent cameras do.
const benchKeyframeInterval = 2 * time.Second

// TestMain runs the tests, or the benchmark simulator when this binary was
// started as one by a benchmark.
func TestMain(m *testing.M) {
	if video := os.Getenv(benchSimVideoEnv); video != "" {
		if err := runBenchSimulator(video, os.Getenv(benchSimCamerasEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "benchmark simulator:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchPathName is the RTSP path of simulated camera i.
func benchPathName(i int) string {
	return fmt.Sprintf("cam-%03d", i)
}

// runBenchSimulator serves the prepared stream video as cameras looping
// copies of it at rtsp://127.0.0.1:PORT/cam-000, cam-001, …, over TCP only.
// Once every path is served it writes the listen address as one line to
// stdout; it serves until stdin reaches its end (the benchmark closed it or
// ended) or it gets SIGINT or SIGTERM.
func runBenchSimulator(video, cameras string) error {
	n, err := strconv.Atoi(cameras)
	if err != nil || n < 1 {
		return fmt.Errorf("%s=%q: want a positive number of cameras", benchSimCamerasEnv, cameras)
	}
	prep, err := samples.LoadPrepared(video)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Port 0 lets the system pick a free port and leaves UDP off.
	sim := samples.NewSimulator(samples.SimulatorConfig{Listen: "127.0.0.1:0", Loop: true, Logger: log})
	if err := sim.Start(); err != nil {
		sim.Close()
		return err
	}
	spread := benchKeyframeInterval / time.Duration(n)
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				sim.Close()
				return nil
			case <-time.After(spread):
			}
		}
		if err := sim.AddPath(benchPathName(i), prep); err != nil {
			sim.Close()
			return err
		}
	}
	if _, err := fmt.Println(sim.Addr()); err != nil {
		sim.Close()
		return fmt.Errorf("report listen address: %w", err)
	}
	return sim.Run(ctx)
}
