package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line progress bar on a terminal: bytes read of the
// inputs' total size, prompts accepted and rejected, and the rate.
type progress struct {
	w     io.Writer
	on    bool
	total int64
	read  atomic.Int64
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, total int64, want bool) *progress {
	on := false
	if f, ok := w.(*os.File); ok && want {
		on = term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: w, on: on, total: total, start: time.Now()}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil || !p.on {
		return r
	}
	return countingReader{r, &p.read}
}

func (p *progress) count(accepted, rejected int) {
	if p == nil || !p.on {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	rate := float64(accepted) / max(now.Sub(p.start).Seconds(), 1e-9)
	line := fmt.Sprintf("%d prompts, %d rejected, %.0f/s", accepted, rejected, rate)
	if p.total > 0 {
		frac := min(float64(p.read.Load())/float64(p.total), 1)
		const width = 30
		n := int(frac * width)
		line = fmt.Sprintf("[%s%s] %3.0f%%  %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, line)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *progress) clear() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\033[K")
	p.drawn = false
}
