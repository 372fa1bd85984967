package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// defaultProgressEvery is how often a long command writes a progress line
// when stderr is not a terminal.
const defaultProgressEvery = 5 * time.Second

// progressFlags are the flags of a command that shows progress.
type progressFlags struct {
	every time.Duration
	off   bool
}

func addProgressFlags(fs *flag.FlagSet) *progressFlags {
	p := &progressFlags{}
	fs.DurationVar(&p.every, "progress-every", defaultProgressEvery, "when stderr is not a terminal, write a progress line this often")
	fs.BoolVar(&p.off, "no-progress", false, "show no progress bar or lines (the summary is still printed)")
	return p
}

// progress shows how far a long command got: a bar on a terminal, a line
// every few seconds on stderr otherwise.
type progress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	w     io.Writer
	label string
	unit  string
	total int64 // 0 = unknown
	every time.Duration
	start time.Time
	last  time.Time
	off   bool
	done  int64
}

// newProgress starts showing the progress of label towards total (in
// unit: "bytes", or a noun such as "dead letters"; total 0 = unknown).
func newProgress(a *app, pf *progressFlags, label string, total int64, unit string) *progress {
	p := &progress{w: a.stderr, label: label, unit: unit, total: total, start: time.Now(), every: defaultProgressEvery}
	if pf != nil {
		p.every, p.off = pf.every, pf.off
	}
	p.last = p.start
	if p.off {
		return p
	}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		max := total
		if max <= 0 {
			max = -1
		}
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription(label),
			progressbar.OptionThrottle(100 * time.Millisecond),
			progressbar.OptionShowIts(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(a.stderr) }),
		}
		if unit == "bytes" {
			opts = append(opts, progressbar.OptionShowBytes(true))
		} else {
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetItsString(unit))
		}
		p.bar = progressbar.NewOptions64(max, opts...)
	}
	return p
}

// update reports done (in the progress's unit) and a detail for the line.
func (p *progress) update(done int64, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = done
	if p.off {
		return
	}
	if p.bar != nil {
		if detail != "" {
			p.bar.Describe(p.label + " " + detail)
		}
		_ = p.bar.Set64(done)
		return
	}
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	pct := ""
	if p.total > 0 {
		pct = fmt.Sprintf("%.1f%%, ", 100*float64(done)/float64(p.total))
	}
	fmt.Fprintf(p.w, "cioq %s: %s%s, %s\n", p.label, pct, detail, time.Since(p.start).Round(time.Second))
}

// finish ends the bar (the caller prints its summary).
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
