package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressPlainLinesWithRateAndETA(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(1000, 0)
	p := newProgress(&buf, "frames", 100)
	p.now = func() time.Time { return clock }
	p.start = clock
	clock = clock.Add(10 * time.Second)
	p.update(25)
	clock = clock.Add(time.Second) // within the interval: no line
	p.update(27)
	clock = clock.Add(10 * time.Second)
	p.finish(100)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "25/100") || !strings.Contains(lines[0], "2.5/s") || !strings.Contains(lines[0], "ETA 30s") {
		t.Errorf("first line %q lacks count, rate 2.5/s or ETA 30s", lines[0])
	}
	if strings.Contains(buf.String(), "\r") || strings.Contains(buf.String(), "\x1b") {
		t.Error("plain output carries terminal control characters")
	}
	if !strings.Contains(lines[1], "100/100") || !strings.Contains(lines[1], "100.0%") {
		t.Errorf("final line %q", lines[1])
	}
}

func TestProgressTerminalRedraws(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "frames", 10)
	p.tty = true
	p.interval = 0
	p.update(5)
	p.finish(10)
	out := buf.String()
	if strings.Count(out, "\r\x1b[K") != 2 || !strings.Contains(out, "[###############...............]") || !strings.HasSuffix(out, "\n") {
		t.Errorf("terminal output %q", out)
	}
}
