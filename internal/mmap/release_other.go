//go:build !linux

package mmap

// Release is a no-op where madvise is not used.
func Release(b []byte) {}
