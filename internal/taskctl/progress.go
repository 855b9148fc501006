package taskctl

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a bar on a terminal for a bulk action: "requeue email [=====>    ] 512/1000".
// Off a terminal (a pipe, a file, a script reading --json) it draws nothing, so that
// stderr holds only messages.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	on    bool
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, label string, on bool) *progress {
	return &progress{w: w, label: label, on: on}
}

// update is the progress callback of RequeueMatching. It redraws at most ten times a
// second, and always for the last entry.
func (p *progress) update(done, total int) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	fmt.Fprintf(p.w, "\r%s %s", p.label, bar(done, total, 30))
	p.drawn = true
}

// finish ends the bar's line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// bar renders done of total in width cells.
func bar(done, total, width int) string {
	if total <= 0 {
		return fmt.Sprintf("[%s] %d", strings.Repeat(" ", width), done)
	}
	if done > total {
		done = total
	}
	full := done * width / total
	head := ""
	if full < width {
		head = ">"
	}
	return fmt.Sprintf("[%s%s%s] %d/%d", strings.Repeat("=", full), head, strings.Repeat(" ", width-full-len(head)), done, total)
}
