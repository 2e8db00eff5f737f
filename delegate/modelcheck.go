package delegate

import (
	"encoding/binary"
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"
)

// Limits of checkModel: TFLite aborts the process (no error) when a model
// asks for more memory than it can get, so models are checked in Go first.
const (
	maxTensorBytes = 1 << 30 // one tensor
	maxArenaBytes  = 4 << 30 // all the tensors of a subgraph
	maxDims        = 8
)

// tensorTypeSize is the element size of TFLite's schema TensorType values
// (0 for types whose size the check does not bound, such as strings).
var tensorTypeSize = map[int8]int64{0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: 0, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: 4, 14: 0, 15: 0, 16: 4, 17: 0}

// checkModel walks a .tflite flatbuffer and refuses what would make the
// TFLite library crash or abort instead of failing: offsets out of the
// file, tensor, buffer and operator indices out of range, absurd shapes,
// constant buffers of the wrong size.
func checkModel(buf []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed flatbuffer (%v)", r)
		}
	}()
	if len(buf) < 16 {
		return fmt.Errorf("%d bytes, too short for a TFLite model", len(buf))
	}
	r := fbReader{buf}
	model := r.root()
	if v := r.scalarU32(model, 0); v != 3 {
		return fmt.Errorf("schema version %d, want 3", v)
	}
	nCodes := r.vecLen(model, 1)
	for i := 0; i < nCodes; i++ {
		oc := r.vecTable(model, 1, i)
		code := int32(r.scalarI8(oc, 0))
		if c := r.scalarI32(oc, 3); c > code {
			code = c
		}
		if code < 0 || code > 1000 {
			return fmt.Errorf("operator code %d: builtin %d out of range", i, code)
		}
	}
	nBuf := r.vecLen(model, 4)
	bufLen := make([]int64, nBuf)
	for i := range bufLen {
		bufLen[i] = int64(r.vecLen(r.vecTable(model, 4, i), 0))
	}
	nSub := r.vecLen(model, 2)
	if nSub == 0 {
		return fmt.Errorf("no subgraph")
	}
	for s := 0; s < nSub; s++ {
		sg := r.vecTable(model, 2, s)
		nT := r.vecLen(sg, 0)
		var total int64
		for t := 0; t < nT; t++ {
			ten := r.vecTable(sg, 0, t)
			nd := r.vecLen(ten, 0)
			if nd > maxDims {
				return fmt.Errorf("subgraph %d tensor %d has %d dimensions", s, t, nd)
			}
			typ := r.scalarI8(ten, 1)
			size, ok := tensorTypeSize[typ]
			if !ok {
				return fmt.Errorf("subgraph %d tensor %d has unknown type %d", s, t, typ)
			}
			n := int64(1)
			for d := 0; d < nd; d++ {
				v := int64(r.vecI32(ten, 0, d))
				if v < 0 || v > maxTensorBytes {
					return fmt.Errorf("subgraph %d tensor %d dimension %d is %d", s, t, d, v)
				}
				n *= v
				if n > maxTensorBytes {
					return fmt.Errorf("subgraph %d tensor %d holds more than %d elements", s, t, maxTensorBytes)
				}
			}
			if q := r.field(ten, 4); q != 0 {
				qp := flatbuffers.UOffsetT(q + int(r.u32(q)))
				ns, nz := r.vecLen(qp, 2), r.vecLen(qp, 3)
				if ns != nz && (ns > 0 || nz > 0) {
					return fmt.Errorf("subgraph %d tensor %d has %d scales and %d zero points", s, t, ns, nz)
				}
				if ns > 1 {
					qd := int(r.scalarI32(qp, 6))
					if qd < 0 || qd >= nd || int64(r.vecI32(ten, 0, qd)) != int64(ns) {
						return fmt.Errorf("subgraph %d tensor %d has %d scales along dimension %d of %d", s, t, ns, qd, nd)
					}
				}
			}
			bytes := n * size
			if bytes > maxTensorBytes {
				return fmt.Errorf("subgraph %d tensor %d takes %d bytes", s, t, bytes)
			}
			total += bytes
			b := int(r.scalarU32(ten, 2))
			if b >= nBuf {
				return fmt.Errorf("subgraph %d tensor %d uses buffer %d of %d", s, t, b, nBuf)
			}
			if bufLen[b] != 0 && size != 0 && bufLen[b] != bytes {
				return fmt.Errorf("subgraph %d tensor %d: buffer %d holds %d bytes, the shape needs %d", s, t, b, bufLen[b], bytes)
			}
		}
		if total > maxArenaBytes {
			return fmt.Errorf("subgraph %d needs %d bytes of tensors", s, total)
		}
		idx := func(what string, table flatbuffers.UOffsetT, slot int, optional bool) error {
			for i := 0; i < r.vecLen(table, slot); i++ {
				v := r.vecI32(table, slot, i)
				if (v == -1 && optional) || (v >= 0 && int(v) < nT) {
					continue
				}
				return fmt.Errorf("subgraph %d %s refers to tensor %d of %d", s, what, v, nT)
			}
			return nil
		}
		if err := idx("inputs", sg, 1, false); err != nil {
			return err
		}
		if err := idx("outputs", sg, 2, false); err != nil {
			return err
		}
		for o := 0; o < r.vecLen(sg, 3); o++ {
			op := r.vecTable(sg, 3, o)
			if c := int(r.scalarU32(op, 0)); c >= nCodes {
				return fmt.Errorf("subgraph %d operator %d uses code %d of %d", s, o, c, nCodes)
			}
			if err := idx(fmt.Sprintf("operator %d input", o), op, 1, true); err != nil {
				return err
			}
			if err := idx(fmt.Sprintf("operator %d output", o), op, 2, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// fbReader reads flatbuffer tables with bounds checks (out of range
// panics, which checkModel recovers into an error).
type fbReader struct{ b []byte }

func (r fbReader) u32(off int) uint32 {
	if off < 0 || off+4 > len(r.b) {
		panic(fmt.Sprintf("offset %d out of %d bytes", off, len(r.b)))
	}
	return binary.LittleEndian.Uint32(r.b[off:])
}

func (r fbReader) root() flatbuffers.UOffsetT { return flatbuffers.UOffsetT(r.u32(0)) }

// field returns the absolute position of a table's field, 0 when absent.
func (r fbReader) field(table flatbuffers.UOffsetT, slot int) int {
	t := int(table)
	vt := t - int(int32(r.u32(t)))
	if vt < 0 || vt+4 > len(r.b) {
		panic(fmt.Sprintf("vtable at %d out of %d bytes", vt, len(r.b)))
	}
	vtLen := int(binary.LittleEndian.Uint16(r.b[vt:]))
	pos := 4 + 2*slot
	if pos+2 > vtLen || vt+pos+2 > len(r.b) {
		return 0
	}
	o := int(binary.LittleEndian.Uint16(r.b[vt+pos:]))
	if o == 0 {
		return 0
	}
	return t + o
}

func (r fbReader) scalarU32(table flatbuffers.UOffsetT, slot int) uint32 {
	if p := r.field(table, slot); p != 0 {
		return r.u32(p)
	}
	return 0
}

func (r fbReader) scalarI32(table flatbuffers.UOffsetT, slot int) int32 {
	return int32(r.scalarU32(table, slot))
}

func (r fbReader) scalarI8(table flatbuffers.UOffsetT, slot int) int8 {
	if p := r.field(table, slot); p != 0 {
		if p >= len(r.b) {
			panic("offset out of range")
		}
		return int8(r.b[p])
	}
	return 0
}

// vector returns the position of a vector's first element and its length.
func (r fbReader) vector(table flatbuffers.UOffsetT, slot int) (int, int) {
	p := r.field(table, slot)
	if p == 0 {
		return 0, 0
	}
	v := p + int(r.u32(p))
	n := int(r.u32(v))
	if n < 0 || v+4+n > len(r.b) {
		panic(fmt.Sprintf("vector of %d at %d out of %d bytes", n, v, len(r.b)))
	}
	return v + 4, n
}

func (r fbReader) vecLen(table flatbuffers.UOffsetT, slot int) int {
	_, n := r.vector(table, slot)
	return n
}

func (r fbReader) vecI32(table flatbuffers.UOffsetT, slot, i int) int32 {
	p, n := r.vector(table, slot)
	if i >= n {
		panic("vector index out of range")
	}
	return int32(r.u32(p + 4*i))
}

func (r fbReader) vecTable(table flatbuffers.UOffsetT, slot, i int) flatbuffers.UOffsetT {
	p, n := r.vector(table, slot)
	if i >= n {
		panic("vector index out of range")
	}
	e := p + 4*i
	return flatbuffers.UOffsetT(e + int(r.u32(e)))
}
