//go:build !linux

package runtime

// releaseMapped is a no-op where madvise is not used.
func releaseMapped(b []byte) {}
