package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/palid/palid/runtime/gguf"
)

func init() {
	register("inspect", "print the metadata and tensors of a model directory or GGUF file", func(args []string) error {
		return inspect(args, os.Stdout)
	})
}

// inspect runs "palid inspect DIR|FILE".
func inspect(args []string, out io.Writer) error {
	fs := newFlags("inspect", "DIR|FILE")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return badInputf("want one model directory or GGUF file (usage: palid inspect DIR|FILE)")
	}
	path := fs.Arg(0)
	st, err := os.Stat(path)
	if err != nil {
		return badInput(err)
	}
	files := []string{path}
	if st.IsDir() {
		files = nil
		for _, name := range []string{"model.gguf", "mmproj.gguf"} {
			p := filepath.Join(path, name)
			if _, err := os.Stat(p); err == nil {
				files = append(files, p)
			}
		}
		if len(files) == 0 {
			return badInputf("%s holds neither model.gguf nor mmproj.gguf", path)
		}
	}
	for i, p := range files {
		if i > 0 {
			fmt.Fprintln(out)
		}
		if err := inspectFile(p, out); err != nil {
			return err
		}
	}
	return nil
}

func inspectFile(path string, out io.Writer) error {
	f, err := gguf.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrPermission) {
			return err
		}
		return badInput(err)
	}
	defer f.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: GGUF v%d, %d metadata keys, %d tensors, %s, alignment %d\n",
		path, f.Version, len(f.KVs), len(f.Tensors), humanBytes(uint64(f.Size())), f.Alignment)
	b.WriteString("metadata:\n")
	width := 0
	for _, kv := range f.KVs {
		width = max(width, len(kv.Key))
	}
	for _, kv := range f.KVs {
		fmt.Fprintf(&b, "  %-*s = %s\n", width, kv.Key, formatValue(kv.Value))
	}
	b.WriteString("tensors:\n")
	width = 0
	for _, t := range f.Tensors {
		width = max(width, len(t.Name))
	}
	var total uint64
	byType := map[string][2]uint64{}
	for _, t := range f.Tensors {
		size := t.Size()
		total += size
		c := byType[t.Type.String()]
		byType[t.Type.String()] = [2]uint64{c[0] + 1, c[1] + size}
		fmt.Fprintf(&b, "  %-*s  %-4s  %-18s  %s\n", width, t.Name, t.Type, dimsText(t.Dims), humanBytes(size))
	}
	var types []string
	for k := range byType {
		types = append(types, k)
	}
	sort.Strings(types)
	var parts []string
	for _, k := range types {
		parts = append(parts, fmt.Sprintf("%s: %d tensors, %s", k, byType[k][0], humanBytes(byType[k][1])))
	}
	fmt.Fprintf(&b, "total: %d tensors, %s of tensor data", len(f.Tensors), humanBytes(total))
	if len(parts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, "; "))
	}
	b.WriteString("\n")
	_, err = io.WriteString(out, b.String())
	return err
}

func dimsText(d []uint64) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// arrayPreview is how many elements of an array inspect shows.
const arrayPreview = 8

// formatValue prints a metadata value; arrays are summarized by type and
// length with their first elements.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return quoteShort(v)
	case float32, float64:
		return fmt.Sprintf("%g", v)
	case []string:
		items := make([]string, 0, arrayPreview)
		for _, s := range v[:min(len(v), arrayPreview)] {
			items = append(items, quoteShort(s))
		}
		return arraySummary("string", len(v), items)
	case []uint8:
		// Byte arrays are blobs (tokenizer models, charsmaps): no preview.
		return fmt.Sprintf("[uint8 x %d] (%s)", len(v), humanBytes(uint64(len(v))))
	case []any:
		items := make([]string, 0, arrayPreview)
		for _, x := range v[:min(len(v), arrayPreview)] {
			items = append(items, formatValue(x))
		}
		return arraySummary("array", len(v), items)
	}
	if s, n, ok := sliceItems(v); ok {
		return arraySummary(s, n.count, n.items)
	}
	return fmt.Sprint(v)
}

type preview struct {
	count int
	items []string
}

// sliceItems previews numeric and bool arrays.
func sliceItems(v any) (string, preview, bool) {
	mk := func(name string, n int, at func(i int) any) (string, preview, bool) {
		p := preview{count: n}
		for i := 0; i < min(n, arrayPreview); i++ {
			p.items = append(p.items, fmt.Sprint(at(i)))
		}
		return name, p, true
	}
	switch a := v.(type) {
	case []int8:
		return mk("int8", len(a), func(i int) any { return a[i] })
	case []uint16:
		return mk("uint16", len(a), func(i int) any { return a[i] })
	case []int16:
		return mk("int16", len(a), func(i int) any { return a[i] })
	case []uint32:
		return mk("uint32", len(a), func(i int) any { return a[i] })
	case []int32:
		return mk("int32", len(a), func(i int) any { return a[i] })
	case []uint64:
		return mk("uint64", len(a), func(i int) any { return a[i] })
	case []int64:
		return mk("int64", len(a), func(i int) any { return a[i] })
	case []float32:
		return mk("float32", len(a), func(i int) any { return a[i] })
	case []float64:
		return mk("float64", len(a), func(i int) any { return a[i] })
	case []bool:
		return mk("bool", len(a), func(i int) any { return a[i] })
	}
	return "", preview{}, false
}

func arraySummary(typ string, n int, items []string) string {
	s := fmt.Sprintf("[%s x %d]", typ, n)
	if len(items) > 0 {
		s += " " + strings.Join(items, ", ")
		if n > len(items) {
			s += ", ..."
		}
	}
	return s
}

// quoteShort quotes s, cut to 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		cut := 80
		for cut > 0 && (s[cut]&0xc0) == 0x80 {
			cut--
		}
		return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
	}
	return fmt.Sprintf("%q", s)
}
