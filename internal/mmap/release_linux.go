package mmap

import (
	"os"
	"syscall"
	"unsafe"
)

// Release tells the kernel that the pages of b, part of a read-only
// file mapping (File), are not needed any more (MADV_DONTNEED): they leave the
// process's resident set and are read again from the page cache if
// touched. Only whole pages inside b are released. Errors are ignored:
// the advice is an optimisation.
func Release(b []byte) {
	if len(b) == 0 {
		return
	}
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + page - 1) &^ (page - 1)
	hi := (start + uintptr(len(b))) &^ (page - 1)
	if hi <= lo {
		return
	}
	_ = syscall.Madvise(b[lo-start:hi-start], syscall.MADV_DONTNEED)
}
