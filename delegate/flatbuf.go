package delegate

import (
	"errors"
	"fmt"
	"sort"

	flatbuffers "github.com/google/flatbuffers/go"
)

// TFLite schema (schema.fbs) numbers the writer needs: tensor types,
// BuiltinOptions union members, and each table's field slots, which are
// the fields' declaration order in the schema.
const (
	tflFloat32 = 0
	tflInt32   = 2
	tflInt8    = 9

	optConv2D  = 1
	optFC      = 8
	optSoftmax = 9
	optConcat  = 10
	optAdd     = 11
	optL2Norm  = 12
	optReshape = 17
	optMul     = 21
	optTrans   = 26
	optReducer = 27
	optSub     = 28

	paddingValid = 1
)

// opVersion is the operator version TFLite's converter writes for int8
// kernels (what newer runtimes and delegates check).
var opVersion = map[int]int32{
	opAdd: 2, opConcat: 2, opConv2D: 3, opFC: 4, opL2Norm: 2, opLogistic: 2, opMul: 2,
	opReshape: 1, opSoftmax: 2, opTranspose: 2, opMean: 2, opSub: 2,
}

// marshal writes the quantized graph as a TFLite flatbuffer (schema
// version 3). Every tensor is int8 except biases and shape operands
// (int32).
func (g *graph) marshal(description string) ([]byte, error) {
	if len(g.inputs) == 0 || len(g.outputs) == 0 {
		return nil, errors.New("graph has no inputs or outputs")
	}
	b := flatbuffers.NewBuilder(1 << 20)

	// Buffers: 0 is the empty buffer, then one per constant tensor.
	bufOf := make([]int, len(g.t))
	var bufs []flatbuffers.UOffsetT
	startTable := func() { b.StartObject(1) }
	startTable()
	bufs = append(bufs, b.EndObject())
	for i, t := range g.t {
		data := t.tensorBytes()
		if data == nil {
			continue
		}
		b.StartVector(1, len(data), 16)
		for j := len(data) - 1; j >= 0; j-- {
			b.PrependByte(data[j])
		}
		vec := b.EndVector(len(data))
		b.StartObject(1)
		b.PrependUOffsetTSlot(0, vec, 0)
		bufOf[i] = len(bufs)
		bufs = append(bufs, b.EndObject())
	}

	// Tensors.
	tens := make([]flatbuffers.UOffsetT, len(g.t))
	for i, t := range g.t {
		name := b.CreateString(t.name)
		shape := int32Vector(b, t.shape)
		var qp flatbuffers.UOffsetT
		if t.role != roleInt32 {
			scales := t.scales
			if scales == nil {
				scales = []float32{t.q.scale}
			}
			if scales[0] == 0 {
				return nil, fmt.Errorf("tensor %s has no quantization scale", t.name)
			}
			b.StartVector(4, len(scales), 4)
			for j := len(scales) - 1; j >= 0; j-- {
				b.PrependFloat32(scales[j])
			}
			sv := b.EndVector(len(scales))
			b.StartVector(8, len(scales), 8)
			for j := len(scales) - 1; j >= 0; j-- {
				b.PrependInt64(int64(t.q.zp))
			}
			zv := b.EndVector(len(scales))
			b.StartObject(7) // QuantizationParameters
			b.PrependUOffsetTSlot(2, sv, 0)
			b.PrependUOffsetTSlot(3, zv, 0)
			b.PrependInt32Slot(6, 0, 0) // quantized_dimension
			qp = b.EndObject()
		}
		typ := int8(tflInt8)
		if t.role == roleInt32 || t.role == roleBias {
			typ = tflInt32
		}
		b.StartObject(8) // Tensor
		b.PrependUOffsetTSlot(0, shape, 0)
		b.PrependInt8Slot(1, typ, 0)
		b.PrependUint32Slot(2, uint32(bufOf[i]), 0)
		b.PrependUOffsetTSlot(3, name, 0)
		if qp != 0 {
			b.PrependUOffsetTSlot(4, qp, 0)
		}
		tens[i] = b.EndObject()
	}

	// Operator codes, in first-use order.
	codeIdx := map[int]int{}
	var codes []int
	for _, op := range g.ops {
		if _, ok := codeIdx[op.code]; !ok {
			codeIdx[op.code] = len(codes)
			codes = append(codes, op.code)
		}
	}
	codeOffs := make([]flatbuffers.UOffsetT, len(codes))
	for i, c := range codes {
		b.StartObject(4) // OperatorCode
		// TFLite up to 2.3 reads the code from slot 0 (an int8; later
		// schemas call it deprecated_builtin_code), newer ones from slot 3.
		b.PrependInt8Slot(0, int8(min(c, 127)), 0)
		b.PrependInt32Slot(2, opVersion[c], 1)
		b.PrependInt32Slot(3, int32(c), 0)
		codeOffs[i] = b.EndObject()
	}

	// Operators.
	ops := make([]flatbuffers.UOffsetT, len(g.ops))
	for i, op := range g.ops {
		optType, opts := writeOptions(b, g, op)
		ins := make([]int, len(op.in))
		copy(ins, op.in)
		inv := int32Vector(b, ins)
		outv := int32Vector(b, []int{op.out})
		b.StartObject(9) // Operator
		b.PrependUint32Slot(0, uint32(codeIdx[op.code]), 0)
		b.PrependUOffsetTSlot(1, inv, 0)
		b.PrependUOffsetTSlot(2, outv, 0)
		if optType != 0 {
			b.PrependByteSlot(3, byte(optType), 0)
			b.PrependUOffsetTSlot(4, opts, 0)
		}
		ops[i] = b.EndObject()
	}

	tensVec := tableVector(b, tens)
	inVec := int32Vector(b, g.inputs)
	outVec := int32Vector(b, g.outputs)
	opsVec := tableVector(b, ops)
	sgName := b.CreateString("main")
	b.StartObject(5) // SubGraph
	b.PrependUOffsetTSlot(0, tensVec, 0)
	b.PrependUOffsetTSlot(1, inVec, 0)
	b.PrependUOffsetTSlot(2, outVec, 0)
	b.PrependUOffsetTSlot(3, opsVec, 0)
	b.PrependUOffsetTSlot(4, sgName, 0)
	sg := b.EndObject()

	codesVec := tableVector(b, codeOffs)
	sgVec := tableVector(b, []flatbuffers.UOffsetT{sg})
	desc := b.CreateString(description)
	bufVec := tableVector(b, bufs)
	b.StartObject(8) // Model
	b.PrependUint32Slot(0, 3, 0)
	b.PrependUOffsetTSlot(1, codesVec, 0)
	b.PrependUOffsetTSlot(2, sgVec, 0)
	b.PrependUOffsetTSlot(3, desc, 0)
	b.PrependUOffsetTSlot(4, bufVec, 0)
	model := b.EndObject()
	b.FinishWithFileIdentifier(model, []byte("TFL3"))
	return b.FinishedBytes(), nil
}

func int32Vector(b *flatbuffers.Builder, v []int) flatbuffers.UOffsetT {
	b.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		b.PrependInt32(int32(v[i]))
	}
	return b.EndVector(len(v))
}

func tableVector(b *flatbuffers.Builder, v []flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	b.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		b.PrependUOffsetT(v[i])
	}
	return b.EndVector(len(v))
}

// writeOptions writes op's BuiltinOptions table; it returns the union type
// (0 for none).
func writeOptions(b *flatbuffers.Builder, g *graph, op gop) (int, flatbuffers.UOffsetT) {
	switch op.code {
	case opConv2D:
		b.StartObject(6)
		b.PrependInt8Slot(0, paddingValid, 0)
		b.PrependInt32Slot(1, int32(op.stride), 0)
		b.PrependInt32Slot(2, int32(op.stride), 0)
		b.PrependInt32Slot(4, 1, 1)
		b.PrependInt32Slot(5, 1, 1)
		return optConv2D, b.EndObject()
	case opFC:
		b.StartObject(4)
		return optFC, b.EndObject()
	case opSoftmax:
		b.StartObject(1)
		b.PrependFloat32Slot(0, op.beta, 0)
		return optSoftmax, b.EndObject()
	case opConcat:
		b.StartObject(2)
		b.PrependInt32Slot(0, int32(op.axis), 0)
		return optConcat, b.EndObject()
	case opAdd:
		b.StartObject(1)
		return optAdd, b.EndObject()
	case opSub:
		b.StartObject(1)
		return optSub, b.EndObject()
	case opMul:
		b.StartObject(1)
		return optMul, b.EndObject()
	case opL2Norm:
		b.StartObject(1)
		return optL2Norm, b.EndObject()
	case opTranspose:
		b.StartObject(0)
		return optTrans, b.EndObject()
	case opMean:
		b.StartObject(1)
		b.PrependBoolSlot(0, true, false)
		return optReducer, b.EndObject()
	case opReshape:
		s := g.t[op.out].shape
		v := int32Vector(b, s)
		b.StartObject(1)
		b.PrependUOffsetTSlot(0, v, 0)
		return optReshape, b.EndObject()
	}
	return 0, 0
}

// opSummary counts the operators by name, for the export report.
func (g *graph) opSummary() string {
	n := map[string]int{}
	for _, op := range g.ops {
		n[opNames[op.code]]++
	}
	var names []string
	for k := range n {
		names = append(names, k)
	}
	sort.Strings(names)
	s := ""
	for i, k := range names {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s x%d", k, n[k])
	}
	return s
}
