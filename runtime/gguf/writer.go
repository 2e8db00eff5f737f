package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/palid/palid/neon"
)

// Writer builds a GGUF v3 file: metadata in the order added, then tensors
// in the order added, each aligned to general.alignment (default 32) as
// ggml writes them.
type Writer struct {
	kvs     []KV
	kvIndex map[string]int
	tensors []wTensor
	names   map[string]bool
	err     error
}

type wTensor struct {
	TensorInfo
	size uint64
	data []byte
	fill func(dst []byte) error
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{kvIndex: map[string]int{}, names: map[string]bool{}}
}

// Add sets metadata key to value; a key added again keeps its place and
// takes the new value. The GGUF type follows the Go type: uint8 ... int64,
// float32, float64, bool, string, a slice of one of these, or []any whose
// elements are such slices (an array of arrays). Go's int is written as
// int64 and uint as uint64. An unsupported type makes WriteTo fail.
func (w *Writer) Add(key string, value any) {
	switch v := value.(type) {
	case int:
		value = int64(v)
	case uint:
		value = uint64(v)
	case []int:
		a := make([]int64, len(v))
		for i, x := range v {
			a[i] = int64(x)
		}
		value = a
	}
	if _, err := encodedValueSize(value, 0); err != nil && w.err == nil {
		w.err = fmt.Errorf("gguf: key %q: %w", key, err)
	}
	if i, ok := w.kvIndex[key]; ok {
		w.kvs[i].Value = value
		return
	}
	w.kvIndex[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: value})
}

// AddTensor adds a tensor whose data is already laid out in type t; dims
// list ne0 first. The data is written as given (not copied until WriteTo).
func (w *Writer) AddTensor(name string, t neon.DType, dims []uint64, data []byte) error {
	size, err := w.checkTensor(name, t, dims)
	if err != nil {
		return err
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("gguf: tensor %q: %d bytes of data, want %d for %s %s", name, len(data), size, t, dimsString(dims))
	}
	w.addTensor(name, t, dims, size, data, nil)
	return nil
}

// AddTensorFunc adds a tensor whose data is produced while the file is
// written: fill receives a buffer of exactly the tensor's size and must
// fill it. This lets a converter stream a model tensor by tensor without
// holding it all in memory.
func (w *Writer) AddTensorFunc(name string, t neon.DType, dims []uint64, fill func(dst []byte) error) error {
	size, err := w.checkTensor(name, t, dims)
	if err != nil {
		return err
	}
	if size > math.MaxInt {
		return fmt.Errorf("gguf: tensor %q: %d bytes is too large", name, size)
	}
	w.addTensor(name, t, dims, size, nil, fill)
	return nil
}

func (w *Writer) addTensor(name string, t neon.DType, dims []uint64, size uint64, data []byte, fill func([]byte) error) {
	w.names[name] = true
	w.tensors = append(w.tensors, wTensor{
		TensorInfo: TensorInfo{Name: name, Type: t, Dims: append([]uint64(nil), dims...)},
		size:       size, data: data, fill: fill,
	})
}

func (w *Writer) checkTensor(name string, t neon.DType, dims []uint64) (uint64, error) {
	switch {
	case name == "":
		return 0, errors.New("gguf: tensor with an empty name")
	case len(name) > MaxNameLen:
		return 0, fmt.Errorf("gguf: tensor %q: name longer than %d bytes", name, MaxNameLen)
	case w.names[name]:
		return 0, fmt.Errorf("gguf: duplicate tensor %q", name)
	case !t.Valid():
		return 0, fmt.Errorf("gguf: tensor %q: unknown ggml type %d", name, uint32(t))
	case len(dims) == 0 || len(dims) > MaxDims:
		return 0, fmt.Errorf("gguf: tensor %q: %d dimensions, want 1 to %d", name, len(dims), MaxDims)
	}
	ti := TensorInfo{Name: name, Type: t, Dims: dims}
	elems := uint64(1)
	for _, d := range dims {
		if d > math.MaxInt64 || (d != 0 && elems > math.MaxInt64/d) {
			return 0, fmt.Errorf("gguf: tensor %q: dimensions %s overflow", name, dimsString(dims))
		}
		elems *= d
	}
	if dims[0]%uint64(t.BlockSize()) != 0 {
		return 0, fmt.Errorf("gguf: tensor %q: row of %d elements is not a multiple of the %s block size %d", name, dims[0], t, t.BlockSize())
	}
	if elems/uint64(t.BlockSize()) > math.MaxInt64/uint64(t.BlockBytes()) {
		return 0, fmt.Errorf("gguf: tensor %q: dimensions %s overflow", name, dimsString(dims))
	}
	return ti.Size(), nil
}

func (w *Writer) alignment() (int, error) {
	i, ok := w.kvIndex["general.alignment"]
	if !ok {
		return DefaultAlignment, nil
	}
	a, ok := w.kvs[i].Value.(uint32)
	if !ok || a == 0 || a&(a-1) != 0 || a > 1<<20 {
		return 0, fmt.Errorf("gguf: general.alignment must be a uint32 power of two up to 1 MiB, got %v", w.kvs[i].Value)
	}
	return int(a), nil
}

// WriteTo writes the file to out and returns the bytes written.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	cw := &countWriter{w: out}
	bw := bufio.NewWriterSize(cw, 1<<20)
	e := &encoder{w: bw}
	e.bytes([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	off := uint64(0)
	for i := range w.tensors {
		t := &w.tensors[i]
		t.Offset = off
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset)
		off += uint64(alignUp(int(t.size), align))
	}
	if e.err != nil {
		return cw.n, e.err
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	e.pad(int(cw.n), align)
	var buf []byte
	for _, t := range w.tensors {
		data := t.data
		if t.fill != nil {
			if cap(buf) < int(t.size) {
				buf = make([]byte, t.size)
			}
			data = buf[:t.size]
			clear(data)
			if err := t.fill(data); err != nil {
				return cw.n, fmt.Errorf("tensor %q: %w", t.Name, err)
			}
		}
		e.bytes(data)
		e.pad(int(t.size), align)
		if e.err != nil {
			return cw.n, e.err
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, e.err
}

// WriteFile writes the file to path atomically: into a temporary file in
// the same directory, synced, then renamed over path.
func (w *Writer) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err := w.WriteTo(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes little-endian GGUF values and keeps the first error.
type encoder struct {
	w   io.Writer
	err error
	buf [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.bytes(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.bytes(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.bytes(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.bytes(e.buf[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

var zeros [1 << 12]byte

// pad writes zeros from position n up to the next multiple of align.
func (e *encoder) pad(n, align int) {
	for k := alignUp(n, align) - n; k > 0; {
		c := min(k, len(zeros))
		e.bytes(zeros[:c])
		k -= c
	}
}

// valueType returns the GGUF type of a Go value; for slices, also the
// element type.
func valueType(v any) (vt, et uint32, err error) {
	switch v.(type) {
	case uint8:
		return typeUint8, 0, nil
	case int8:
		return typeInt8, 0, nil
	case uint16:
		return typeUint16, 0, nil
	case int16:
		return typeInt16, 0, nil
	case uint32:
		return typeUint32, 0, nil
	case int32:
		return typeInt32, 0, nil
	case uint64:
		return typeUint64, 0, nil
	case int64:
		return typeInt64, 0, nil
	case float32:
		return typeFloat32, 0, nil
	case float64:
		return typeFloat64, 0, nil
	case bool:
		return typeBool, 0, nil
	case string:
		return typeString, 0, nil
	case []uint8:
		return typeArray, typeUint8, nil
	case []int8:
		return typeArray, typeInt8, nil
	case []uint16:
		return typeArray, typeUint16, nil
	case []int16:
		return typeArray, typeInt16, nil
	case []uint32:
		return typeArray, typeUint32, nil
	case []int32:
		return typeArray, typeInt32, nil
	case []uint64:
		return typeArray, typeUint64, nil
	case []int64:
		return typeArray, typeInt64, nil
	case []float32:
		return typeArray, typeFloat32, nil
	case []float64:
		return typeArray, typeFloat64, nil
	case []bool:
		return typeArray, typeBool, nil
	case []string:
		return typeArray, typeString, nil
	case []any:
		return typeArray, typeArray, nil
	}
	return 0, 0, fmt.Errorf("unsupported value type %T", v)
}

// encodedValueSize checks that v can be written (nested arrays included).
func encodedValueSize(v any, depth int) (int, error) {
	_, et, err := valueType(v)
	if err != nil {
		return 0, err
	}
	if a, ok := v.([]any); ok && et == typeArray {
		if depth+1 >= maxArrayDepth {
			return 0, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
		}
		for _, x := range a {
			if _, isArr := x.([]any); !isArr {
				if vt, _, err := valueType(x); err != nil || vt != typeArray {
					return 0, fmt.Errorf("an array of arrays holds %T", x)
				}
			}
			if _, err := encodedValueSize(x, depth+1); err != nil {
				return 0, err
			}
		}
	}
	return 0, nil
}

// value writes the type and the value of v (checked by Add).
func (e *encoder) value(v any) {
	vt, _, _ := valueType(v)
	e.u32(vt)
	e.payload(v)
}

// payload writes v without its type (array elements).
func (e *encoder) payload(v any) {
	switch v := v.(type) {
	case uint8:
		e.u8(v)
	case int8:
		e.u8(uint8(v))
	case uint16:
		e.u16(v)
	case int16:
		e.u16(uint16(v))
	case uint32:
		e.u32(v)
	case int32:
		e.u32(uint32(v))
	case uint64:
		e.u64(v)
	case int64:
		e.u64(uint64(v))
	case float32:
		e.u32(math.Float32bits(v))
	case float64:
		e.u64(math.Float64bits(v))
	case bool:
		if v {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(v)
	default: // an array: element type, then length and elements
		_, et, _ := valueType(v)
		e.u32(et)
		e.arrayBody(v)
	}
}

// arrayBody writes the length and the elements of array v.
func (e *encoder) arrayBody(v any) {
	switch a := v.(type) {
	case []uint8:
		e.u64(uint64(len(a)))
		e.bytes(a)
	case []int8:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u8(uint8(x))
		}
	case []uint16:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u16(x)
		}
	case []int16:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u16(uint16(x))
		}
	case []uint32:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u32(x)
		}
	case []int32:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u32(uint32(x))
		}
	case []uint64:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u64(x)
		}
	case []int64:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u64(uint64(x))
		}
	case []float32:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u32(math.Float32bits(x))
		}
	case []float64:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u64(math.Float64bits(x))
		}
	case []bool:
		e.u64(uint64(len(a)))
		for _, x := range a {
			if x {
				e.u8(1)
			} else {
				e.u8(0)
			}
		}
	case []string:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.str(x)
		}
	case []any:
		e.u64(uint64(len(a)))
		for _, x := range a {
			_, et, _ := valueType(x)
			e.u32(et)
			e.arrayBody(x)
		}
	}
}
