package neon

import "unsafe"

// bytesAsF32 views little-endian float32 data in place. Callers pass
// GGUF tensor data, which is aligned to at least 32 bytes; a misaligned
// slice is copied instead.
func bytesAsF32(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		f := make([]float32, len(b)/4)
		Dequantize(F32, f, b[:len(f)*4])
		return f
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}
