package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress reports how far a long run has come: a redrawn bar with rate
// and ETA on a terminal, a plain line every few seconds otherwise (logs,
// CI).
type progress struct {
	w        io.Writer
	tty      bool
	label    string
	total    int64 // 0 when unknown
	start    time.Time
	last     time.Time
	interval time.Duration
	now      func() time.Time
}

func newProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, tty: isTerminal(w), label: label, total: total, now: time.Now}
	p.start = p.now()
	p.interval = 5 * time.Second
	if p.tty {
		p.interval = 200 * time.Millisecond
	}
	return p
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update reports that done units are complete; it draws at most once per
// interval.
func (p *progress) update(done int64) {
	t := p.now()
	if t.Sub(p.last) < p.interval {
		return
	}
	p.last = t
	p.draw(done, false)
}

// finish draws the final state and ends the line.
func (p *progress) finish(done int64) {
	p.draw(done, true)
}

func (p *progress) draw(done int64, final bool) {
	elapsed := p.now().Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	line := fmt.Sprintf("%s %d", p.label, done)
	if p.total > 0 {
		frac := min(float64(done)/float64(p.total), 1)
		eta := "?"
		if rate > 0 {
			eta = (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second).String()
		}
		if final {
			eta = "0s"
		}
		line = fmt.Sprintf("%s %d/%d %5.1f%% %.1f/s ETA %s", p.label, done, p.total, 100*frac, rate, eta)
		if p.tty {
			const width = 30
			n := int(frac * width)
			line = "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "] " + line
		}
	} else {
		line = fmt.Sprintf("%s %.1f/s %s", line, rate, time.Duration(elapsed*float64(time.Second)).Round(time.Second))
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K"+line)
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintln(p.w, line)
}
