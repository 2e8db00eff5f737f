// Package mmap maps whole files read-only, so that model weights are used
// in place, never copied at start-up.
package mmap

import (
	"fmt"
	"os"
)

// File maps the regular file at path read-only. It returns the bytes and a
// function that unmaps them; an empty file maps to nil. Errors name the file
// with kind ("gguf", "safetensors") in front.
func File(kind, path string) ([]byte, func() error, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s %s: not a regular file", kind, path)
	}
	size := st.Size()
	if size == 0 {
		return nil, func() error { return nil }, nil
	}
	if size < 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("%s %s: file of %d bytes is too large to map", kind, path, size)
	}
	data, unmap, err := mapFile(fd, int(size))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", kind, path, err)
	}
	return data, unmap, nil
}
