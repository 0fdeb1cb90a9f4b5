#!/usr/bin/env bash
# Runs flowwatch's benchmarks (`make bench`) and prints a summary table.
#
#   ./ingest          decoding a 1080p25 file through the Decoder, against
#                     ffmpeg -threads 1 decoding the same file (3 runs each);
#   ./cmd/flowwatch   RTSP ingest and decode of live 1080p25 cameras served
#                     by a simulator in a child process, in cores per camera
#                     and against ffmpeg -threads 1 on the same clip, and how
#                     many keyframes-only cameras fit in half a core; and
#                     the resident memory serve's per-camera stack costs
#                     (BenchmarkResidentMemoryPerCamera: 1 and 8 vtest
#                     cameras counted by the model, MB/camera, about 1 min);
#   ./alerting        the rule engine's cost per count sample on 1,000 zones,
#                     and the long crash test (kill -9 during alert storms);
#   ./cmd/flowwatch   BenchmarkGlassToAlert: the whole serve site on the
#                     dense synthetic camera in 16 zones, p50/p95 from a
#                     picture's arrival to its alert change stored and live;
#   ./vision          BenchmarkModel: the default model ($FLOWWATCH_BENCH_MODEL
#                     to pick another) through the whole Estimator on vtest
#                     frames (768x576) and 1080p frames, ONNX Runtime (2
#                     threads) and OpenCV DNN, batch 1 and 4: ms/frame,
#                     frames/s, ort/opencv and x-batch1 (about 2 minutes).
#                     Without models/default it measures the tiny test model
#                     and says so (rows named *-fallback, fallback 1).
#   ./console         BenchmarkWHEPViewers: a 1080p25 camera (4 Mbit/s)
#                     relayed over WHEP to 1, 10, 50, 100, ... pion viewers
#                     (in a child process) until the relay falls behind:
#                     relay CPU per viewer (ms per second, 0-viewer baseline
#                     subtracted), loss, lateness, and the viewers 80% of
#                     the box's cores serve; BenchmarkWHEPRelayLatency: p50
#                     and p99 from RTSP arrival to WriteRTP through a real
#                     RTSP hop, 1, 10 and 50 viewers; BenchmarkWSFanOut:
#                     alerts to 500 logged-in websocket consoles at 10 to
#                     200 alerts/s, latency p50/p99, server CPU per message,
#                     deliveries missing, clients cut off (about 3 minutes
#                     together; the first run also renders the 1080p clip
#                     into ~/.cache/flowwatch/bench, about 15 s).
#
# Every figure is measured in this run, references included; the load
# average is printed before and after, since the machine may be shared. The
# live benchmarks run in real time (about 6 minutes; the first run also
# renders the synthetic clip into ~/.cache/flowwatch/bench, about 2 minutes
# more).
# FLOWWATCH_BENCH_WINDOW (a Go duration, default 20s) sets how long each
# live measurement lasts. The full output is kept in
# ~/.cache/flowwatch/bench/results-<time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

cache=${XDG_CACHE_HOME:-$HOME/.cache}/flowwatch/bench
mkdir -p "$cache"
log="$cache/results-$(date +%Y%m%d-%H%M%S).txt"

# The file-decode benchmarks of ./ingest each decode a whole clip per
# iteration, so three iterations are plenty; the others use the default
# benchmark time.
file_decode='^Benchmark(DecodeAll|DecodeKeyframes|FFmpegReference)$'

# Build the test binaries first, so compiling does not overlap a measurement.
"$GO" test -run '^$' -count=1 ./ingest ./cmd/flowwatch ./vision ./alerting ./console >/dev/null

{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs, $("$GO" version)"
  echo "# $(ffmpeg -version | head -n 1)"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$GO" test -run '^$' -bench "$file_decode" -benchtime 3x -count=1 -timeout 20m ./ingest
  "$GO" test -run '^$' -bench . -skip "$file_decode" -count=1 -timeout 20m ./ingest
  # Every live benchmark, BenchmarkResidentMemoryPerCamera included.
  "$GO" test -run '^$' -bench . -benchtime 1x -count=1 -timeout 30m ./cmd/flowwatch
  # Alerting: the engine's cost per count on a 1,000-zone site (ten
  # minutes of site time), and the long crash test: three kill -9 cycles
  # of 20 s alert storms, then every change delivered exactly as stored.
  "$GO" test -run '^$' -bench '^BenchmarkEngineObserve1000Zones$' -benchtime 1200000x -count=1 ./alerting
  "$GO" test -run '^TestCrashDuringAlertStorm$' -count=1 -v -timeout 20m ./alerting | grep -E 'crash_test|^(ok|FAIL|---)'
  # The model benchmark's rows take 8 s each (or one call, when slower).
  "$GO" test -run '^$' -bench '^BenchmarkModel$' -benchtime 8s -count=1 -timeout 20m ./vision
  # Console: the WHEP relay's CPU per viewer and its latency, and the
  # websocket hub's fan-out to 500 consoles; each prints its own table.
  "$GO" test -run '^$' -bench '^(BenchmarkWHEPViewers|BenchmarkWHEPRelayLatency|BenchmarkWSFanOut)$' -benchtime 1x -count=1 -timeout 20m ./console
  echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$log"

# One row per benchmark: its package, its name without the GOMAXPROCS
# suffix, then its metrics; ns/op is left out where a benchmark reports a
# figure of its own (the live benchmarks take real time by design).
echo
echo "summary (full output: $log)"
awk '
  /^pkg: / { pkg = $2 }
  /^Benchmark/ && $2 ~ /^[0-9]+$/ {
    name = $1
    sub(/-[0-9]+$/, "", name)
    own = 0
    for (i = 3; i < NF; i += 2)
      if ($(i + 1) !~ /^(ns\/op|B\/op|allocs\/op|MB\/s)$/) own = 1
    row = ""
    for (i = 3; i < NF; i += 2) {
      if (own && $(i + 1) == "ns/op") continue
      row = row sprintf("  %s %s", $i, $(i + 1))
    }
    printf "%-24s %-66s%s\n", pkg, name, row
  }
  /^# load average/ { print }
' "$log"
if grep -q '^Benchmark[^ ]*-fallback' "$log"; then
  echo "NOTE: models/default was missing: the *-fallback rows measure the tiny test model (vision/testdata/density_tiny), not the default model."
fi
