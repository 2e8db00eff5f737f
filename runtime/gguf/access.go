package gguf

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/palid/palid/neon"
)

// Get returns the value of key and whether it is present.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KVs[i].Value, true
}

func (f *File) must(key string) (any, error) {
	v, ok := f.Get(key)
	if !ok {
		return nil, fmt.Errorf("%w metadata key %q", errMissing, key)
	}
	return v, nil
}

func wrongType(key string, v any, want string) error {
	return fmt.Errorf("key %q is %s, want %s", key, typeName(v), want)
}

// typeName names the GGUF type of a metadata value: "uint8", "string",
// "array of float32", ...
func typeName(v any) string {
	switch v.(type) {
	case uint8:
		return "uint8"
	case int8:
		return "int8"
	case uint16:
		return "uint16"
	case int16:
		return "int16"
	case uint32:
		return "uint32"
	case int32:
		return "int32"
	case uint64:
		return "uint64"
	case int64:
		return "int64"
	case float32:
		return "float32"
	case float64:
		return "float64"
	case bool:
		return "bool"
	case string:
		return "string"
	case []uint8:
		return "array of uint8"
	case []int8:
		return "array of int8"
	case []uint16:
		return "array of uint16"
	case []int16:
		return "array of int16"
	case []uint32:
		return "array of uint32"
	case []int32:
		return "array of int32"
	case []uint64:
		return "array of uint64"
	case []int64:
		return "array of int64"
	case []float32:
		return "array of float32"
	case []float64:
		return "array of float64"
	case []bool:
		return "array of bool"
	case []string:
		return "array of string"
	case []any:
		return "array of array"
	}
	return fmt.Sprintf("%T", v)
}

// String returns the string value of key.
func (f *File) String(key string) (string, error) {
	v, err := f.must(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", wrongType(key, v, "string")
	}
	return s, nil
}

// asInt64 converts a signed integer value; ok is false for other types.
func asInt64(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

// asUint64 converts an unsigned integer value; ok is false for other types.
func asUint64(v any) (uint64, bool) {
	switch v := v.(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	}
	return 0, false
}

// Uint returns the value of key, which must be an unsigned integer or a
// non-negative signed one.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.must(key)
	if err != nil {
		return 0, err
	}
	if u, ok := asUint64(v); ok {
		return u, nil
	}
	if i, ok := asInt64(v); ok {
		if i < 0 {
			return 0, fmt.Errorf("key %q is %d, want a non-negative integer", key, i)
		}
		return uint64(i), nil
	}
	return 0, wrongType(key, v, "an unsigned integer")
}

// Int returns the value of key, which must be an integer that fits int.
func (f *File) Int(key string) (int, error) {
	v, err := f.must(key)
	if err != nil {
		return 0, err
	}
	n, err := toInt(v)
	if err != nil {
		return 0, fmt.Errorf("key %q %s", key, err)
	}
	return n, nil
}

func toInt(v any) (int, error) {
	if u, ok := asUint64(v); ok {
		if u > math.MaxInt {
			return 0, fmt.Errorf("is %d, beyond int", u)
		}
		return int(u), nil
	}
	if i, ok := asInt64(v); ok {
		if i != int64(int(i)) {
			return 0, fmt.Errorf("is %d, beyond int", i)
		}
		return int(i), nil
	}
	return 0, fmt.Errorf("is %s, want an integer", typeName(v))
}

// Float returns the value of key, which must be float32 or float64.
func (f *File) Float(key string) (float64, error) {
	v, err := f.must(key)
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case float32:
		return float64(v), nil
	case float64:
		return v, nil
	}
	return 0, wrongType(key, v, "a float")
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.must(key)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, wrongType(key, v, "bool")
	}
	return b, nil
}

// Strings returns the array of strings of key.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.must(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]string)
	if !ok {
		return nil, wrongType(key, v, "array of string")
	}
	return s, nil
}

// Floats returns the array of float32 (or float64, converted) of key.
func (f *File) Floats(key string) ([]float32, error) {
	v, err := f.must(key)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case []float32:
		return v, nil
	case []float64:
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, wrongType(key, v, "array of float32")
}

// Ints returns the array of integers of key, each of which must fit int.
func (f *File) Ints(key string) ([]int, error) {
	v, err := f.must(key)
	if err != nil {
		return nil, err
	}
	var out []int
	conv := func(n int, at func(i int) any) error {
		out = make([]int, n)
		for i := range out {
			x, err := toInt(at(i))
			if err != nil {
				return fmt.Errorf("key %q: element %d %s", key, i, err)
			}
			out[i] = x
		}
		return nil
	}
	switch a := v.(type) {
	case []uint8:
		err = conv(len(a), func(i int) any { return a[i] })
	case []int8:
		err = conv(len(a), func(i int) any { return a[i] })
	case []uint16:
		err = conv(len(a), func(i int) any { return a[i] })
	case []int16:
		err = conv(len(a), func(i int) any { return a[i] })
	case []uint32:
		err = conv(len(a), func(i int) any { return a[i] })
	case []int32:
		err = conv(len(a), func(i int) any { return a[i] })
	case []uint64:
		err = conv(len(a), func(i int) any { return a[i] })
	case []int64:
		err = conv(len(a), func(i int) any { return a[i] })
	default:
		return nil, wrongType(key, v, "array of integers")
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Bytes returns the array of uint8 or int8 of key as bytes.
func (f *File) Bytes(key string) ([]byte, error) {
	v, err := f.must(key)
	if err != nil {
		return nil, err
	}
	switch a := v.(type) {
	case []uint8:
		return a, nil
	case []int8:
		out := make([]byte, len(a))
		for i, x := range a {
			out[i] = byte(x)
		}
		return out, nil
	}
	return nil, wrongType(key, v, "array of uint8")
}

// Tensor is one tensor of a file: its description and its data, which
// points into the file's mapping.
type Tensor struct {
	Name string
	Type neon.DType
	Dims []uint64
	Data []byte
}

// Tensor returns the named tensor; the error names it when it is missing.
func (f *File) Tensor(name string) (Tensor, error) {
	i, ok := f.tIndex[name]
	if !ok {
		return Tensor{}, fmt.Errorf("%w tensor %q", errMissing, name)
	}
	if f.data == nil && f.Tensors[i].Size() > 0 {
		return Tensor{}, fmt.Errorf("tensor %q: file is closed", name)
	}
	t := f.Tensors[i]
	start := uint64(f.dataOff) + t.Offset
	return Tensor{Name: t.Name, Type: t.Type, Dims: t.Dims, Data: f.data[start : start+t.Size() : start+t.Size()]}, nil
}

// Elements returns the number of elements of t.
func (t Tensor) Elements() int {
	n := 1
	for _, d := range t.Dims {
		n *= int(d)
	}
	return n
}

// Matrix returns t as a weight matrix: Cols = Dims[0], Rows = Dims[1]. The
// tensor must have two dimensions (further dimensions of 1 are allowed).
func (t Tensor) Matrix() (neon.Matrix, error) {
	if len(t.Dims) < 2 {
		return neon.Matrix{}, fmt.Errorf("tensor %s has shape %s, want a matrix", t.Name, dimsString(t.Dims))
	}
	for _, d := range t.Dims[2:] {
		if d != 1 {
			return neon.Matrix{}, fmt.Errorf("tensor %s has shape %s, want a matrix", t.Name, dimsString(t.Dims))
		}
	}
	return neon.Matrix{Type: t.Type, Cols: int(t.Dims[0]), Rows: int(t.Dims[1]), Data: t.Data}, nil
}

// Float32s returns the elements of t as a new float32 slice, dequantized.
func (t Tensor) Float32s() ([]float32, error) {
	n := t.Elements()
	if bs := t.Type.BlockSize(); bs == 0 || n%bs != 0 {
		return nil, fmt.Errorf("tensor %s: cannot expand %d elements of type %s", t.Name, n, t.Type)
	}
	if len(t.Data) < neon.RowBytes(t.Type, n) {
		return nil, fmt.Errorf("tensor %s: %d bytes of data, want %d", t.Name, len(t.Data), neon.RowBytes(t.Type, n))
	}
	out := make([]float32, n)
	neon.Dequantize(t.Type, out, t.Data)
	return out, nil
}

// Expect checks that t has exactly the given dimensions (ne0 first).
func (t Tensor) Expect(dims ...uint64) error {
	ok := len(dims) == len(t.Dims)
	for i := 0; ok && i < len(dims); i++ {
		ok = dims[i] == t.Dims[i]
	}
	if !ok {
		return fmt.Errorf("tensor %s has shape %s, want %s", t.Name, dimsString(t.Dims), dimsString(dims))
	}
	return nil
}

func dimsString(d []uint64) string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = strconv.FormatUint(x, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
