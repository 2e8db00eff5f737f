package delegate

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"unsafe"
)

// TensorType is TFLite's TfLiteType.
type TensorType int32

// The tensor types the binding reads and writes.
const (
	NoType  TensorType = 0
	Float32 TensorType = 1
	Int32   TensorType = 2
	Uint8   TensorType = 3
	Int64   TensorType = 4
	Int16   TensorType = 7
	Int8    TensorType = 9
)

func (t TensorType) String() string {
	switch t {
	case NoType:
		return "notype"
	case Float32:
		return "float32"
	case Int32:
		return "int32"
	case Uint8:
		return "uint8"
	case Int64:
		return "int64"
	case Int16:
		return "int16"
	case Int8:
		return "int8"
	}
	return fmt.Sprintf("type(%d)", int32(t))
}

// Model is a .tflite flatbuffer loaded by the library.
type Model struct {
	lib  *Library
	p    uintptr
	buf  uintptr // C copy of the flatbuffer, which TFLite reads in place
	path string
}

// LoadModel reads a .tflite file. A file that is not a valid TFLite model
// is an error naming it: the flatbuffer is checked in Go first (offsets,
// indices, shapes and buffer sizes), because TFLite aborts the process on
// some malformed models instead of returning an error. The file is read
// once, into C memory kept until Close, and TFLite is given the very bytes
// that were checked, not the file again, which could have changed in
// between.
func (l *Library) LoadModel(path string) (*Model, error) {
	buf, n, err := l.readC(path)
	if err != nil {
		return nil, fmt.Errorf("tflite: model %s: %w", path, err)
	}
	if err := checkModel(unsafe.Slice((*byte)(ptr(buf)), n)); err != nil {
		l.libc.release(buf)
		return nil, fmt.Errorf("tflite: %s is not a valid TFLite model: %w", path, err)
	}
	p := l.call("TfLiteModelCreate", buf, uintptr(n))
	if p == 0 {
		l.libc.release(buf)
		return nil, fmt.Errorf("tflite: %s is not a valid TFLite model", path)
	}
	return &Model{lib: l, p: p, buf: buf, path: path}, nil
}

// readC reads the regular file at path into C memory, returning its
// address and length; free it with l.libc.release.
func (l *Library) readC(path string) (uintptr, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, 0, errors.New("not a regular file")
	}
	n := int(fi.Size())
	buf := l.libc.alloc(n)
	if _, err := io.ReadFull(f, unsafe.Slice((*byte)(ptr(buf)), n)); err != nil {
		l.libc.release(buf)
		return 0, 0, err
	}
	return buf, n, nil
}

// Path is the file the model was read from.
func (m *Model) Path() string { return m.path }

// Close frees the model. Interpreters made from it must be closed first.
func (m *Model) Close() error {
	if m.p != 0 {
		m.lib.call("TfLiteModelDelete", m.p)
		m.p = 0
		m.lib.libc.release(m.buf)
		m.buf = 0
	}
	return nil
}

// InterpreterOptions configures NewInterpreter.
type InterpreterOptions struct {
	// Threads for TFLite's CPU kernels; <= 0 leaves TFLite's default.
	Threads int
	// Delegates are applied in order; each must claim its part of the graph
	// or the interpreter is not made. They must outlive the interpreter.
	Delegates []*ExternalDelegate
}

// Interpreter runs one model. It is not safe for concurrent use.
type Interpreter struct {
	lib    *Library
	model  *Model
	p      uintptr
	logKey uintptr
	log    *errorLog
	in     []*Tensor
	out    []*Tensor
}

// NewInterpreter builds an interpreter for m with opts, applies the
// delegates and allocates the tensors. Errors carry the messages TFLite
// reported (an unsupported operator, a delegate that failed to prepare).
func (l *Library) NewInterpreter(m *Model, opts InterpreterOptions) (*Interpreter, error) {
	if m == nil || m.p == 0 {
		return nil, errors.New("tflite: interpreter needs an open model")
	}
	it := &Interpreter{lib: l, model: m, log: &errorLog{c: l.libc}}
	it.logKey = registerLog(it.log)
	o := l.call("TfLiteInterpreterOptionsCreate")
	if o == 0 {
		unregisterLog(it.logKey)
		return nil, errors.New("tflite: cannot create interpreter options")
	}
	defer l.call("TfLiteInterpreterOptionsDelete", o)
	l.call("TfLiteInterpreterOptionsSetErrorReporter", o, reporters.cb, it.logKey)
	if opts.Threads > 0 {
		l.call("TfLiteInterpreterOptionsSetNumThreads", o, uintptr(int32(opts.Threads)))
	}
	var names []string
	for _, d := range opts.Delegates {
		if d == nil || d.p == 0 {
			unregisterLog(it.logKey)
			return nil, errors.New("tflite: a closed or nil delegate in the interpreter options")
		}
		l.call("TfLiteInterpreterOptionsAddDelegate", o, d.p)
		names = append(names, d.path)
	}
	it.p = l.call("TfLiteInterpreterCreate", m.p, o)
	if it.p == 0 {
		unregisterLog(it.logKey)
		msg := it.log.take()
		if len(names) > 0 {
			return nil, fmt.Errorf("tflite: cannot build an interpreter for %s with delegate %v: %s", m.path, names, orUnknown(msg))
		}
		return nil, fmt.Errorf("tflite: cannot build an interpreter for %s: %s", m.path, orUnknown(msg))
	}
	if st := int32(l.call("TfLiteInterpreterAllocateTensors", it.p)); st != 0 {
		msg := it.log.take()
		it.Close()
		return nil, fmt.Errorf("tflite: cannot allocate tensors of %s: %s", m.path, orUnknown(msg))
	}
	n := int(int32(l.call("TfLiteInterpreterGetInputTensorCount", it.p)))
	for i := 0; i < n; i++ {
		it.in = append(it.in, &Tensor{it: it, p: l.call("TfLiteInterpreterGetInputTensor", it.p, uintptr(int32(i)))})
	}
	n = int(int32(l.call("TfLiteInterpreterGetOutputTensorCount", it.p)))
	for i := 0; i < n; i++ {
		it.out = append(it.out, &Tensor{it: it, p: l.call("TfLiteInterpreterGetOutputTensor", it.p, uintptr(int32(i)))})
	}
	return it, nil
}

func orUnknown(msg string) string {
	if msg == "" {
		return "TFLite reported no reason"
	}
	return msg
}

// Inputs are the model's input tensors, in order.
func (it *Interpreter) Inputs() []*Tensor { return it.in }

// Outputs are the model's output tensors, in order. Their contents are
// valid after Invoke.
func (it *Interpreter) Outputs() []*Tensor { return it.out }

// Invoke runs the model on the inputs copied in.
func (it *Interpreter) Invoke() error {
	if it.p == 0 {
		return errors.New("tflite: invoke on a closed interpreter")
	}
	if st := int32(it.lib.call("TfLiteInterpreterInvoke", it.p)); st != 0 {
		return fmt.Errorf("tflite: invoke %s failed: %s", it.model.path, orUnknown(it.log.take()))
	}
	return nil
}

// Close frees the interpreter (not the model nor the delegates).
func (it *Interpreter) Close() error {
	if it.p != 0 {
		it.lib.call("TfLiteInterpreterDelete", it.p)
		it.p = 0
		unregisterLog(it.logKey)
	}
	return nil
}

// Tensor is an input or output tensor of an interpreter.
type Tensor struct {
	it *Interpreter
	p  uintptr
}

// Type is the element type.
func (t *Tensor) Type() TensorType {
	return TensorType(int32(t.it.lib.call("TfLiteTensorType", t.p)))
}

// Shape is the tensor's dimensions.
func (t *Tensor) Shape() []int {
	n := int(int32(t.it.lib.call("TfLiteTensorNumDims", t.p)))
	s := make([]int, n)
	for i := range s {
		s[i] = int(int32(t.it.lib.call("TfLiteTensorDim", t.p, uintptr(int32(i)))))
	}
	return s
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape() {
		n *= d
	}
	return n
}

// ByteSize is the size of the tensor's data in bytes.
func (t *Tensor) ByteSize() int { return int(t.it.lib.call("TfLiteTensorByteSize", t.p)) }

// Name is the tensor's name in the model.
func (t *Tensor) Name() string {
	return t.it.lib.libc.goString(t.it.lib.call("TfLiteTensorName", t.p))
}

// Quantization is the affine quantization of an integer tensor:
// real = Scale * (q - ZeroPoint). Scale is 0 for float tensors.
type Quantization struct {
	Scale     float32
	ZeroPoint int32
}

// Quantization reports the tensor's (per-tensor) quantization.
func (t *Tensor) Quantization() Quantization {
	// TfLiteQuantizationParams {float scale; int32_t zero_point;} is
	// returned in one integer register on amd64 and arm64.
	r := uint64(t.it.lib.call("TfLiteTensorQuantizationParams", t.p))
	return Quantization{Scale: math.Float32frombits(uint32(r)), ZeroPoint: int32(uint32(r >> 32))}
}

// CopyFrom copies b (exactly ByteSize bytes) into the tensor.
func (t *Tensor) CopyFrom(b []byte) error {
	if n := t.ByteSize(); len(b) != n || n == 0 {
		return fmt.Errorf("tflite: tensor %s holds %d bytes, got %d", t.Name(), n, len(b))
	}
	st := int32(t.it.lib.call("TfLiteTensorCopyFromBuffer", t.p, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))))
	runtime.KeepAlive(b)
	if st != 0 {
		return fmt.Errorf("tflite: copy into tensor %s failed: %s", t.Name(), orUnknown(t.it.log.take()))
	}
	return nil
}

// CopyTo copies the tensor into b (exactly ByteSize bytes).
func (t *Tensor) CopyTo(b []byte) error {
	if n := t.ByteSize(); len(b) != n || n == 0 {
		return fmt.Errorf("tflite: tensor %s holds %d bytes, buffer has %d", t.Name(), n, len(b))
	}
	st := int32(t.it.lib.call("TfLiteTensorCopyToBuffer", t.p, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))))
	runtime.KeepAlive(b)
	if st != 0 {
		return fmt.Errorf("tflite: copy from tensor %s failed: %s", t.Name(), orUnknown(t.it.log.take()))
	}
	return nil
}

// SetFloat32s writes a float32 tensor.
func (t *Tensor) SetFloat32s(v []float32) error {
	if ty := t.Type(); ty != Float32 {
		return fmt.Errorf("tflite: tensor %s is %v, not float32", t.Name(), ty)
	}
	if len(v) == 0 {
		return fmt.Errorf("tflite: no values for tensor %s", t.Name())
	}
	return t.CopyFrom(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

// Float32s reads a float32 tensor.
func (t *Tensor) Float32s() ([]float32, error) {
	if ty := t.Type(); ty != Float32 {
		return nil, fmt.Errorf("tflite: tensor %s is %v, not float32", t.Name(), ty)
	}
	v := make([]float32, t.ByteSize()/4)
	if len(v) == 0 {
		return nil, fmt.Errorf("tflite: tensor %s is empty", t.Name())
	}
	return v, t.CopyTo(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

// SetReal writes real values into a float32 tensor, or quantizes them into
// an int8 or uint8 tensor with the tensor's own quantization.
func (t *Tensor) SetReal(v []float32) error {
	switch ty := t.Type(); ty {
	case Float32:
		return t.SetFloat32s(v)
	case Int8, Uint8:
		q := t.Quantization()
		if q.Scale == 0 {
			return fmt.Errorf("tflite: tensor %s is %v without a scale", t.Name(), ty)
		}
		lo, hi := float32(-128), float32(127)
		if ty == Uint8 {
			lo, hi = 0, 255
		}
		b := make([]byte, len(v))
		for i, x := range v {
			r := float32(math.RoundToEven(float64(x/q.Scale))) + float32(q.ZeroPoint)
			r = min(max(r, lo), hi)
			if ty == Int8 {
				b[i] = byte(int8(r))
			} else {
				b[i] = byte(r)
			}
		}
		return t.CopyFrom(b)
	default:
		return fmt.Errorf("tflite: tensor %s is %v, want float32, int8 or uint8", t.Name(), ty)
	}
}

// Real reads a float32 tensor, or dequantizes an int8 or uint8 one.
func (t *Tensor) Real() ([]float32, error) {
	switch ty := t.Type(); ty {
	case Float32:
		return t.Float32s()
	case Int8, Uint8:
		q := t.Quantization()
		b := make([]byte, t.ByteSize())
		if err := t.CopyTo(b); err != nil {
			return nil, err
		}
		v := make([]float32, len(b))
		for i, x := range b {
			qv := int32(x)
			if ty == Int8 {
				qv = int32(int8(x))
			}
			v[i] = q.Scale * float32(qv-q.ZeroPoint)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("tflite: tensor %s is %v, want float32, int8 or uint8", t.Name(), ty)
	}
}
