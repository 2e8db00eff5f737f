// Package gguf reads and writes GGUF version 3 files, the model format of
// ggml and llama.cpp.
//
// A file is a header (magic "GGUF", version, tensor count, metadata count),
// typed key-value metadata, tensor descriptions, and an aligned data
// section holding the tensors in ggml's block layouts. Open maps the file
// read-only: tensor data is never copied, Tensor.Data points into the
// mapping and stays valid until Close.
//
// The reader trusts nothing in the file: every count, length, dimension and
// offset is checked against the bytes actually present before anything is
// allocated from it, and errors say what is wrong and where.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/palid/palid/internal/mmap"
	"github.com/palid/palid/neon"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the GGUF version this package writes.
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxDims is the most dimensions a tensor may have (GGML_MAX_DIMS).
const MaxDims = 4

// MaxNameLen is the longest tensor name ggml accepts, in bytes
// (GGML_MAX_NAME less the terminating NUL).
const MaxNameLen = 63

// maxArrayDepth bounds the nesting of array values.
const maxArrayDepth = 8

// Value types of GGUF metadata, as stored in the file.
const (
	typeUint8   = 0
	typeInt8    = 1
	typeUint16  = 2
	typeInt16   = 3
	typeUint32  = 4
	typeInt32   = 5
	typeFloat32 = 6
	typeBool    = 7
	typeString  = 8
	typeArray   = 9
	typeUint64  = 10
	typeInt64   = 11
	typeFloat64 = 12
)

var typeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

// typeSize is the fixed size of a scalar value type; 0 for string and array.
var typeSize = [...]int{1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}

// File is a parsed GGUF file.
type File struct {
	// Version is the GGUF version of the file (2 or 3).
	Version uint32
	// KVs is the metadata in file order.
	KVs []KV
	// Tensors describes the tensors in file order.
	Tensors []TensorInfo
	// Alignment is general.alignment, or DefaultAlignment when absent.
	Alignment int

	data    []byte // the whole file
	dataOff int    // start of the data section in data
	kvIndex map[string]int
	tIndex  map[string]int
	unmap   func() error
	path    string
}

// KV is one metadata entry. Value holds uint8, int8, uint16, int16,
// uint32, int32, uint64, int64, float32, float64, bool or string; an
// array holds a slice of one of these ([]uint8, []string, ...), or []any
// of such slices for an array of arrays.
type KV struct {
	Key   string
	Value any
}

// TensorInfo describes one tensor: its element type, its dimensions with
// ne0 (the contiguous one) first, and its offset in the data section.
type TensorInfo struct {
	Name   string
	Type   neon.DType
	Dims   []uint64
	Offset uint64
}

// Elements returns the number of elements of the tensor.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Size returns the bytes of the tensor's data.
func (t TensorInfo) Size() uint64 {
	if len(t.Dims) == 0 {
		return uint64(t.Type.BlockBytes())
	}
	return t.Elements() / uint64(t.Type.BlockSize()) * uint64(t.Type.BlockBytes())
}

// Open maps the GGUF file at path read-only and parses it. The file stays
// mapped until Close. Errors name the file and the problem.
func Open(path string) (*File, error) {
	data, unmap, err := mmap.File("gguf", path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.unmap = unmap
	f.path = path
	return f, nil
}

// Parse parses a GGUF file held in data, with the same checks as Open.
// The File refers to data (tensor data is not copied).
func Parse(data []byte) (*File, error) {
	p := &parser{data: data}
	f, err := p.file()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

// Close releases the mapping of a file opened with Open; the Data of its
// tensors must not be used afterwards. Close on a parsed byte slice does
// nothing.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	f.data = nil
	return err
}

// Path returns the path the file was opened from ("" for Parse).
func (f *File) Path() string { return f.path }

// DataOffset returns the file offset of the data section.
func (f *File) DataOffset() int { return f.dataOff }

// Size returns the length of the file in bytes.
func (f *File) Size() int { return len(f.data) }

type parser struct {
	data []byte
	pos  int
}

func (p *parser) remaining() int { return len(p.data) - p.pos }

func (p *parser) need(n int, what string) error {
	if n < 0 || p.remaining() < n {
		return fmt.Errorf("truncated file: %s at offset %d needs %d bytes, %d left", what, p.pos, n, p.remaining())
	}
	return nil
}

func (p *parser) u32(what string) (uint32, error) {
	if err := p.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(p.data[p.pos:])
	p.pos += 4
	return v, nil
}

func (p *parser) u64(what string) (uint64, error) {
	if err := p.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(p.data[p.pos:])
	p.pos += 8
	return v, nil
}

func (p *parser) str(what string) (string, error) {
	n, err := p.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(p.remaining()) {
		return "", fmt.Errorf("truncated file: %s at offset %d has length %d, only %d bytes left", what, p.pos-8, n, p.remaining())
	}
	s := string(p.data[p.pos : p.pos+int(n)])
	p.pos += int(n)
	return s, nil
}

func (p *parser) file() (*File, error) {
	if len(p.data) < 4 || string(p.data[:4]) != Magic {
		if len(p.data) < 4 {
			return nil, fmt.Errorf("not a GGUF file: %d bytes, too short for the magic", len(p.data))
		}
		return nil, fmt.Errorf("not a GGUF file: magic %q, want %q", p.data[:4], Magic)
	}
	p.pos = 4
	version, err := p.u32("version")
	if err != nil {
		return nil, err
	}
	if version != 2 && version != 3 {
		if bits.ReverseBytes32(version) <= 3 {
			return nil, fmt.Errorf("big-endian GGUF files are not supported")
		}
		return nil, fmt.Errorf("unsupported GGUF version %d (want 3)", version)
	}
	nTensors, err := p.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := p.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// A key-value takes at least 13 bytes (key length, type, one byte of
	// value), a tensor description at least 24: check the counts against
	// the bytes left before allocating anything from them.
	if nKV > uint64(p.remaining()/13) {
		return nil, fmt.Errorf("metadata count %d is impossible in a file of %d bytes", nKV, len(p.data))
	}
	if nTensors > uint64(p.remaining()/24) {
		return nil, fmt.Errorf("tensor count %d is impossible in a file of %d bytes", nTensors, len(p.data))
	}
	f := &File{
		Version:   version,
		Alignment: DefaultAlignment,
		data:      p.data,
		kvIndex:   make(map[string]int, nKV),
		tIndex:    make(map[string]int, nTensors),
	}
	f.KVs = make([]KV, 0, nKV)
	for i := uint64(0); i < nKV; i++ {
		start := p.pos
		key, err := p.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, err
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("duplicate metadata key %q at offset %d", key, start)
		}
		vt, err := p.u32(fmt.Sprintf("type of key %q", key))
		if err != nil {
			return nil, err
		}
		v, err := p.value(vt, key, 0)
		if err != nil {
			return nil, err
		}
		f.kvIndex[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if !isU32 {
			return nil, fmt.Errorf("general.alignment is %s, want uint32", typeName(v))
		}
		if a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, fmt.Errorf("general.alignment %d is not a power of two up to 1 MiB", a)
		}
		f.Alignment = int(a)
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := p.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if _, dup := f.tIndex[t.Name]; dup {
			return nil, fmt.Errorf("duplicate tensor %q", t.Name)
		}
		f.tIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	// The data section starts at the next multiple of the alignment. A
	// file without tensors may end right after its metadata.
	off := alignUp(p.pos, f.Alignment)
	if len(f.Tensors) == 0 && off > len(p.data) {
		off = len(p.data)
	}
	if off > len(p.data) {
		return nil, fmt.Errorf("truncated file: data section would start at offset %d, file has %d bytes", off, len(p.data))
	}
	f.dataOff = off
	return f, f.checkLayout()
}

// tensorInfo reads and checks one tensor description (offsets are checked
// in checkLayout once all are known).
func (p *parser) tensorInfo(i uint64) (TensorInfo, error) {
	var t TensorInfo
	name, err := p.str(fmt.Sprintf("name of tensor %d", i))
	if err != nil {
		return t, err
	}
	t.Name = name
	if len(name) > MaxNameLen {
		return t, fmt.Errorf("tensor %q: name longer than %d bytes", name, MaxNameLen)
	}
	nd, err := p.u32(fmt.Sprintf("dimension count of tensor %q", name))
	if err != nil {
		return t, err
	}
	if nd == 0 || nd > MaxDims {
		return t, fmt.Errorf("tensor %q: %d dimensions, want 1 to %d", name, nd, MaxDims)
	}
	t.Dims = make([]uint64, nd)
	elems := uint64(1)
	for j := range t.Dims {
		d, err := p.u64(fmt.Sprintf("dimension %d of tensor %q", j, name))
		if err != nil {
			return t, err
		}
		if d > math.MaxInt64 {
			return t, fmt.Errorf("tensor %q: dimension %d is %d, beyond int64", name, j, d)
		}
		t.Dims[j] = d
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 || lo > math.MaxInt64 {
			return t, fmt.Errorf("tensor %q: dimensions %v overflow the element count", name, t.Dims[:j+1])
		}
		elems = lo
	}
	typ, err := p.u32(fmt.Sprintf("type of tensor %q", name))
	if err != nil {
		return t, err
	}
	t.Type = neon.DType(typ)
	if !t.Type.Valid() {
		return t, fmt.Errorf("tensor %q: unknown ggml type %d", name, typ)
	}
	if bs := uint64(t.Type.BlockSize()); t.Dims[0]%bs != 0 {
		return t, fmt.Errorf("tensor %q: row of %d elements is not a multiple of the %s block size %d", name, t.Dims[0], t.Type, bs)
	}
	if elems/uint64(t.Type.BlockSize()) > math.MaxInt64/uint64(t.Type.BlockBytes()) {
		return t, fmt.Errorf("tensor %q: dimensions %v make more than 2^63 bytes", name, t.Dims)
	}
	if t.Offset, err = p.u64(fmt.Sprintf("offset of tensor %q", name)); err != nil {
		return t, err
	}
	return t, nil
}

// checkLayout checks that every tensor is aligned, inside the data
// section, and overlaps no other.
func (f *File) checkLayout() error {
	avail := uint64(len(f.data) - f.dataOff)
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	for _, t := range f.Tensors {
		if t.Offset%uint64(f.Alignment) != 0 {
			return fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		size := t.Size()
		if t.Offset > avail || size > avail-t.Offset {
			return fmt.Errorf("tensor %q: data [%d, +%d) lies beyond the data section of %d bytes (file truncated?)", t.Name, t.Offset, size, avail)
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := f.Tensors[order[k-1]], f.Tensors[order[k]]
		if prev.Offset+prev.Size() > cur.Offset {
			return fmt.Errorf("tensor %q at offset %d overlaps tensor %q [%d, +%d)", cur.Name, cur.Offset, prev.Name, prev.Offset, prev.Size())
		}
	}
	return nil
}

// value reads a value of type vt for key.
func (p *parser) value(vt uint32, key string, depth int) (any, error) {
	what := fmt.Sprintf("value of key %q", key)
	if vt >= uint32(len(typeNames)) {
		return nil, fmt.Errorf("key %q: unknown value type %d", key, vt)
	}
	if vt == typeArray {
		return p.array(key, depth)
	}
	if vt == typeString {
		return p.str(what)
	}
	if err := p.need(typeSize[vt], what); err != nil {
		return nil, err
	}
	b := p.data[p.pos:]
	p.pos += typeSize[vt]
	switch vt {
	case typeUint8:
		return b[0], nil
	case typeInt8:
		return int8(b[0]), nil
	case typeUint16:
		return binary.LittleEndian.Uint16(b), nil
	case typeInt16:
		return int16(binary.LittleEndian.Uint16(b)), nil
	case typeUint32:
		return binary.LittleEndian.Uint32(b), nil
	case typeInt32:
		return int32(binary.LittleEndian.Uint32(b)), nil
	case typeFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case typeBool:
		if b[0] > 1 {
			return nil, fmt.Errorf("key %q: bool value %d is neither 0 nor 1", key, b[0])
		}
		return b[0] == 1, nil
	case typeUint64:
		return binary.LittleEndian.Uint64(b), nil
	case typeInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	default: // typeFloat64
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	}
}

func (p *parser) array(key string, depth int) (any, error) {
	if depth >= maxArrayDepth {
		return nil, fmt.Errorf("key %q: arrays nested deeper than %d", key, maxArrayDepth)
	}
	et, err := p.u32(fmt.Sprintf("array element type of key %q", key))
	if err != nil {
		return nil, err
	}
	if et >= uint32(len(typeNames)) {
		return nil, fmt.Errorf("key %q: unknown array element type %d", key, et)
	}
	n, err := p.u64(fmt.Sprintf("array length of key %q", key))
	if err != nil {
		return nil, err
	}
	min := typeSize[et]
	switch et {
	case typeString:
		min = 8
	case typeArray:
		min = 12
	}
	if n > uint64(p.remaining()/min) {
		return nil, fmt.Errorf("truncated file: array of key %q at offset %d claims %d %s elements, only %d bytes left", key, p.pos-12, n, typeNames[et], p.remaining())
	}
	cnt := int(n)
	switch et {
	case typeString:
		out := make([]string, cnt)
		for i := range out {
			if out[i], err = p.str(fmt.Sprintf("element %d of key %q", i, key)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case typeArray:
		out := make([]any, cnt)
		for i := range out {
			if out[i], err = p.array(key, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	b := p.data[p.pos : p.pos+cnt*min]
	p.pos += cnt * min
	switch et {
	case typeUint8:
		return append([]uint8(nil), b...), nil
	case typeInt8:
		out := make([]int8, cnt)
		for i := range out {
			out[i] = int8(b[i])
		}
		return out, nil
	case typeUint16:
		out := make([]uint16, cnt)
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return out, nil
	case typeInt16:
		out := make([]int16, cnt)
		for i := range out {
			out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case typeUint32:
		out := make([]uint32, cnt)
		for i := range out {
			out[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
		return out, nil
	case typeInt32:
		out := make([]int32, cnt)
		for i := range out {
			out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case typeFloat32:
		out := make([]float32, cnt)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case typeBool:
		out := make([]bool, cnt)
		for i := range out {
			if b[i] > 1 {
				return nil, fmt.Errorf("key %q: bool element %d is %d, neither 0 nor 1", key, i, b[i])
			}
			out[i] = b[i] == 1
		}
		return out, nil
	case typeUint64:
		out := make([]uint64, cnt)
		for i := range out {
			out[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
		return out, nil
	case typeInt64:
		out := make([]int64, cnt)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out, nil
	default: // typeFloat64
		out := make([]float64, cnt)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out, nil
	}
}

func alignUp(n, a int) int { return (n + a - 1) / a * a }

// errMissing is wrapped by the errors of absent keys and tensors.
var errMissing = errors.New("missing")
