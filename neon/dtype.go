// Package neon holds palid's compute kernels: quantized and float matrix
// multiplication, the element-wise work of a transformer layer, and the
// worker pool that splits it across cores.
//
// Every kernel has a plain Go twin (the files ending in _generic.go): it is
// the specification, the fallback on other architectures and the only code
// built with the purego build tag. On amd64 (AVX2) and arm64 (ASIMD, SDOT,
// SMMLA) assembly versions are chosen at start-up by CPU features; Kernels
// reports the choice.
package neon

import (
	"fmt"
	"strings"
)

// DType is a tensor element type; the values are ggml's type ids.
type DType uint32

// The element types palid uses.
const (
	F32  DType = 0
	F16  DType = 1
	Q4_0 DType = 2
	Q8_0 DType = 8
)

// String returns the lower-case ggml name of t ("f32", "f16", "q4_0", "q8_0").
func (t DType) String() string {
	switch t {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case Q4_0:
		return "q4_0"
	case Q8_0:
		return "q8_0"
	}
	return fmt.Sprintf("dtype(%d)", uint32(t))
}

// ParseDType parses a type name as String writes it (case-insensitive).
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "f32":
		return F32, nil
	case "f16":
		return F16, nil
	case "q4_0":
		return Q4_0, nil
	case "q8_0":
		return Q8_0, nil
	}
	return 0, fmt.Errorf("unknown tensor type %q (want f32, f16, q4_0 or q8_0)", s)
}

// Valid reports whether t is one of the supported types.
func (t DType) Valid() bool {
	return t == F32 || t == F16 || t == Q4_0 || t == Q8_0
}

// BlockSize returns the number of elements per block: 1 for F32 and F16,
// 32 for Q4_0 and Q8_0, 0 for an unknown type.
func (t DType) BlockSize() int {
	switch t {
	case F32, F16:
		return 1
	case Q4_0, Q8_0:
		return qk
	}
	return 0
}

// BlockBytes returns the bytes of one block: 4, 2, 18 or 34; 0 for an
// unknown type.
func (t DType) BlockBytes() int {
	switch t {
	case F32:
		return 4
	case F16:
		return 2
	case Q4_0:
		return q4Bytes
	case Q8_0:
		return q8Bytes
	}
	return 0
}

// RowBytes returns the bytes of n elements of type t. It panics if n is
// not a multiple of the block size or t is unknown (a programming error;
// validate shapes with CheckRow first when they come from a file).
func RowBytes(t DType, n int) int {
	if err := CheckRow(t, n); err != nil {
		panic("neon: " + err.Error())
	}
	return n / t.BlockSize() * t.BlockBytes()
}

// CheckRow reports whether a row of n elements can be stored in type t.
func CheckRow(t DType, n int) error {
	bs := t.BlockSize()
	if bs == 0 {
		return fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%bs != 0 {
		return fmt.Errorf("row of %d elements is not a multiple of the %s block size %d", n, t, bs)
	}
	return nil
}

const (
	qk      = 32     // elements per quantized block
	q8Bytes = 2 + qk // f16 scale + 32 int8
	q4Bytes = 2 + qk/2
)
