package convert

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// progress reports converted tensors: a redrawn bar on a terminal, one
// plain line per tensor otherwise.
type progress struct {
	w                io.Writer
	tty              bool
	total, doneBytes int64 // output bytes
	n, count         int
	start            time.Time
	drawn            bool
}

func newProgress(w io.Writer, items []*item) *progress {
	p := &progress{w: w, start: time.Now(), count: len(items)}
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	for _, it := range items {
		p.total += size(it)
	}
	return p
}

func size(it *item) int64 {
	n := int64(1)
	for _, d := range it.dims {
		n *= int64(d)
	}
	return n / int64(it.typ.BlockSize()) * int64(it.typ.BlockBytes())
}

// done records that tensor it of file has been converted.
func (p *progress) done(file string, it *item) {
	if p.w == nil {
		return
	}
	p.n++
	p.doneBytes += size(it)
	dims := make([]string, len(it.dims))
	for i, d := range it.dims {
		dims[i] = fmt.Sprint(d)
	}
	if !p.tty {
		fmt.Fprintf(p.w, "[%d/%d] %s %s %s [%s]\n", p.n, p.count, file, it.dst, it.typ, strings.Join(dims, " "))
		return
	}
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.doneBytes) / float64(p.total)
	}
	fill := int(frac * width)
	fmt.Fprintf(p.w, "\r\x1b[K[%s%s] %3.0f%% %d/%d %s", strings.Repeat("#", fill), strings.Repeat(" ", width-fill), frac*100, p.n, p.count, it.dst)
	p.drawn = true
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// summary prints what was written.
func (p *progress) summary(dir string, files []string) {
	if p.w == nil {
		return
	}
	p.finish()
	var parts []string
	for _, f := range files {
		path := filepath.Join(dir, f)
		if st, err := os.Stat(path); err == nil {
			parts = append(parts, fmt.Sprintf("%s (%.1f MiB)", path, float64(st.Size())/(1<<20)))
		}
	}
	fmt.Fprintf(p.w, "wrote %s in %.1fs\n", strings.Join(parts, " and "), time.Since(p.start).Seconds())
}
