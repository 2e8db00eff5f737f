// Package safetensors reads Hugging Face safetensors files through mmap.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
// describing each tensor (dtype, shape, data_offsets relative to the end
// of the header) plus optional "__metadata__", then the tensor bytes.
// Every offset, size and shape is checked against the file before use.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/palid/palid/internal/mmap"
	"github.com/palid/palid/neon"
)

// MaxHeader is the largest JSON header accepted (the reference
// implementation's limit).
const MaxHeader = 100 << 20

// dtypeSizes are the element sizes of the dtypes safetensors defines.
var dtypeSizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// File is an open safetensors file.
type File struct {
	tensors  map[string]Tensor
	names    []string
	metadata map[string]string
	data     []byte
	unmap    func() error
	path     string
}

// Tensor is one tensor: its dtype name ("F32", "F16", "BF16", "I64", ...),
// its shape in PyTorch order, and its bytes, which point into the mapping.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// Open maps the file at path read-only and checks its header. The file
// stays mapped until Close.
func Open(path string) (*File, error) {
	data, unmap, err := mmap.File("safetensors", path)
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

// Parse reads a safetensors file held in data (not copied).
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return f, nil
}

type entry struct {
	DType   string   `json:"dtype"`
	Shape   []int64  `json:"shape"`
	Offsets []uint64 `json:"data_offsets"`
}

func parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("file of %d bytes is too short for the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeader {
		return nil, fmt.Errorf("header length %d exceeds the limit of %d bytes", n, MaxHeader)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("truncated file: header length %d, only %d bytes follow", n, len(data)-8)
	}
	hdr := data[8 : 8+n]
	body := data[8+n:]
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, fmt.Errorf("header is not a JSON object")
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("header: %v", err)
	}
	if rest := bytes.TrimRight(hdr[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("header: data after the JSON object")
	}
	f := &File{tensors: make(map[string]Tensor, len(raw)), data: data}
	type span struct {
		name       string
		start, end uint64
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.metadata); err != nil {
				return nil, fmt.Errorf("__metadata__ is not a map of strings: %v", err)
			}
			continue
		}
		var e entry
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, fmt.Errorf("tensor %q: bad description: %v", name, err)
		}
		size, ok := dtypeSizes[e.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %q: unknown dtype %q", name, e.DType)
		}
		if len(e.Offsets) != 2 {
			return nil, fmt.Errorf("tensor %q: data_offsets has %d values, want 2", name, len(e.Offsets))
		}
		elems := uint64(1)
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: bad dimension %d in shape %v", name, d, e.Shape)
			}
			hi, lo := bits.Mul64(elems, uint64(d))
			if hi != 0 || lo > math.MaxInt64/8 {
				return nil, fmt.Errorf("tensor %q: shape %v overflows", name, e.Shape)
			}
			elems = lo
			shape[i] = int(d)
		}
		start, end := e.Offsets[0], e.Offsets[1]
		if start > end || end > uint64(len(body)) {
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] lie outside the %d bytes of data (file truncated?)", name, start, end, len(body))
		}
		if want := elems * uint64(size); end-start != want {
			return nil, fmt.Errorf("tensor %q: %d bytes of data, want %d for %s %v", name, end-start, want, e.DType, e.Shape)
		}
		f.tensors[name] = Tensor{Name: name, DType: e.DType, Shape: shape, Data: body[start:end:end]}
		f.names = append(f.names, name)
		spans = append(spans, span{name, start, end})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].start != spans[j].start {
			return spans[i].start < spans[j].start
		}
		return spans[i].end < spans[j].end
	})
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return nil, fmt.Errorf("tensor %q [%d, %d] overlaps tensor %q [%d, %d]", spans[i].name, spans[i].start, spans[i].end, spans[i-1].name, spans[i-1].start, spans[i-1].end)
		}
	}
	sort.Strings(f.names)
	return f, nil
}

// Close releases the mapping; tensor data must not be used afterwards.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	f.tensors = nil
	return err
}

// Path returns the path the file was opened from ("" for Parse).
func (f *File) Path() string { return f.path }

// Names returns the tensor names, sorted.
func (f *File) Names() []string { return f.names }

// Metadata returns the "__metadata__" map (nil when absent).
func (f *File) Metadata() map[string]string { return f.metadata }

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (Tensor, error) {
	t, ok := f.tensors[name]
	if !ok {
		if f.tensors == nil {
			return Tensor{}, fmt.Errorf("tensor %q: file is closed", name)
		}
		return Tensor{}, fmt.Errorf("missing tensor %q", name)
	}
	return t, nil
}

// Elements returns the number of elements of t.
func (t Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Float32s returns the elements of t as float32: F32 as is, F16 and BF16
// widened exactly. Other dtypes are an error naming the tensor.
func (t Tensor) Float32s() ([]float32, error) {
	n := t.Elements()
	out := make([]float32, n)
	if err := t.Decode(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Decode writes the elements of t as float32 into dst, which must hold
// exactly Elements() values.
func (t Tensor) Decode(dst []float32) error {
	n := t.Elements()
	if len(dst) != n {
		return fmt.Errorf("tensor %q: %d elements, buffer holds %d", t.Name, n, len(dst))
	}
	size, ok := dtypeSizes[t.DType]
	if !ok || len(t.Data) != n*size {
		return fmt.Errorf("tensor %q: %d bytes of %s data for %d elements", t.Name, len(t.Data), t.DType, n)
	}
	switch t.DType {
	case "F32":
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case "F16":
		for i := range dst {
			dst[i] = neon.F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case "BF16":
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	default:
		return fmt.Errorf("tensor %q has dtype %s, want F32, F16 or BF16", t.Name, t.DType)
	}
	return nil
}
