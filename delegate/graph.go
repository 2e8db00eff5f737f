package delegate

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/palid/palid/neon"
)

// TFLite builtin operator codes (schema.fbs BuiltinOperator) that the
// exporter writes.
const (
	opAdd       = 0
	opConcat    = 2
	opConv2D    = 3
	opFC        = 9
	opL2Norm    = 11
	opLogistic  = 14
	opMul       = 18
	opReshape   = 22
	opSoftmax   = 25
	opTranspose = 39
	opMean      = 40
	opSub       = 41
)

// opNames are for errors and the export summary.
var opNames = map[int]string{
	opAdd: "ADD", opConcat: "CONCATENATION", opConv2D: "CONV_2D", opFC: "FULLY_CONNECTED",
	opL2Norm: "L2_NORMALIZATION", opLogistic: "LOGISTIC", opMul: "MUL", opReshape: "RESHAPE",
	opSoftmax: "SOFTMAX", opTranspose: "TRANSPOSE", opMean: "MEAN", opSub: "SUB",
}

// tensorRole says how a tensor is stored in the .tflite.
type tensorRole int

const (
	roleActivation tensorRole = iota // int8, range from calibration
	roleWeight                       // int8 constant, symmetric, per tensor
	roleConvWeight                   // int8 constant, symmetric, per output channel (axis 0)
	roleBias                         // int32 constant, scale = input scale x weight scale
	roleConst                        // int8 constant operand of an element-wise op, its own range
	roleInt32                        // int32 constant: shapes, axes, permutations
)

// gtensor is a tensor of the export graph.
type gtensor struct {
	name  string
	shape []int
	role  tensorRole
	data  []float32 // constants: float values; activations: nil
	ints  []int32   // roleInt32

	// Quantization constraints, for activations.
	fixed     *quant // output of SOFTMAX, LOGISTIC, L2_NORMALIZATION
	symmetric bool   // zero point 0 (used as FC weights at run time)
	lo, hi    float32
	seen      bool

	// Chosen quantization.
	q      quant
	scales []float32 // per-channel weights
	group  int       // tensors that must share quantization (union-find parent)
}

// quant is an affine int8 quantization: real = scale * (q - zp).
type quant struct {
	scale float32
	zp    int32
}

// gop is an operator of the export graph.
type gop struct {
	code   int
	in     []int // tensor indices, -1 for an absent optional input
	out    int
	beta   float32 // SOFTMAX
	stride int     // CONV_2D
	axis   int     // CONCATENATION
}

// graph is a static-shape dataflow graph in float, evaluated in Go for
// calibration and written as an int8 .tflite.
type graph struct {
	t       []*gtensor
	ops     []gop
	inputs  []int
	outputs []int
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func (g *graph) add(t *gtensor) int {
	t.group = len(g.t)
	g.t = append(g.t, t)
	return len(g.t) - 1
}

func (g *graph) activation(name string, shape ...int) int {
	return g.add(&gtensor{name: name, shape: shape, role: roleActivation})
}

func (g *graph) constant(name string, role tensorRole, data []float32, shape ...int) int {
	if len(data) != numel(shape) {
		panic(fmt.Sprintf("delegate: constant %s has %d values for shape %v", name, len(data), shape))
	}
	return g.add(&gtensor{name: name, shape: shape, role: role, data: data})
}

func (g *graph) int32s(name string, v ...int32) int {
	return g.add(&gtensor{name: name, shape: []int{len(v)}, role: roleInt32, ints: v})
}

// tie makes a and b share one quantization.
func (g *graph) tie(a, b int) {
	ra, rb := g.root(a), g.root(b)
	if ra != rb {
		g.t[rb].group = ra
	}
}

func (g *graph) root(i int) int {
	for g.t[i].group != i {
		g.t[i].group = g.t[g.t[i].group].group
		i = g.t[i].group
	}
	return i
}

func (g *graph) op(code int, out int, in ...int) *gop {
	g.ops = append(g.ops, gop{code: code, in: in, out: out})
	return &g.ops[len(g.ops)-1]
}

// Builders for each operator; each returns its output tensor. Shapes are
// 2-D [rows, cols] except around the convolution.

func (g *graph) fc(name string, x, w, b int) int {
	n := g.t[x].shape[0]
	o := g.activation(name, n, g.t[w].shape[0])
	g.op(opFC, o, x, w, b)
	return o
}

func (g *graph) binary(code int, name string, a, b int) int {
	sa, sb := g.t[a].shape, g.t[b].shape
	o := g.activation(name, max(sa[0], sb[0]), max(sa[1], sb[1]))
	g.op(code, o, a, b)
	return o
}

func (g *graph) unary(code int, name string, x int) int {
	o := g.activation(name, g.t[x].shape...)
	g.op(code, o, x)
	return o
}

func (g *graph) mean(name string, x int) int {
	o := g.activation(name, g.t[x].shape[0], 1)
	g.op(opMean, o, x, g.int32s(name+"/axis", 1))
	return o
}

func (g *graph) softmax(name string, x int) int {
	o := g.unary(opSoftmax, name, x)
	g.ops[len(g.ops)-1].beta = 1
	g.t[o].fixed = &quant{scale: 1.0 / 256, zp: -128}
	return o
}

func (g *graph) logistic(name string, x int) int {
	o := g.unary(opLogistic, name, x)
	g.t[o].fixed = &quant{scale: 1.0 / 256, zp: -128}
	return o
}

func (g *graph) l2norm(name string, x int) int {
	o := g.unary(opL2Norm, name, x)
	g.t[o].fixed = &quant{scale: 1.0 / 128, zp: 0}
	return o
}

func (g *graph) transpose(name string, x int) int {
	s := g.t[x].shape
	o := g.activation(name, s[1], s[0])
	g.op(opTranspose, o, x, g.int32s(name+"/perm", 1, 0))
	g.tie(x, o)
	return o
}

func (g *graph) reshape(name string, x int, shape ...int) int {
	o := g.activation(name, shape...)
	s := make([]int32, len(shape))
	for i, d := range shape {
		s[i] = int32(d)
	}
	g.op(opReshape, o, x, g.int32s(name+"/shape", s...))
	g.tie(x, o)
	return o
}

func (g *graph) concat(name string, xs ...int) int {
	n, d := g.t[xs[0]].shape[0], 0
	for _, x := range xs {
		d += g.t[x].shape[1]
	}
	o := g.activation(name, n, d)
	g.op(opConcat, o, xs...).axis = 1
	for _, x := range xs {
		g.tie(o, x)
	}
	return o
}

// eval runs the graph in float32 on the inputs and returns every tensor's
// values (constants included). The matrix products run on palid's kernels,
// on pool's workers (a nil pool: on the calling goroutine).
func (g *graph) eval(pool *neon.Pool, inputs ...[]float32) ([][]float32, error) {
	v := make([][]float32, len(g.t))
	for i, t := range g.t {
		if t.data != nil {
			v[i] = t.data
		}
	}
	if len(inputs) != len(g.inputs) {
		return nil, fmt.Errorf("graph has %d inputs, got %d", len(g.inputs), len(inputs))
	}
	for i, x := range inputs {
		t := g.t[g.inputs[i]]
		if len(x) != numel(t.shape) {
			return nil, fmt.Errorf("input %s takes %d values, got %d", t.name, numel(t.shape), len(x))
		}
		v[g.inputs[i]] = x
	}
	for _, op := range g.ops {
		out := g.t[op.out]
		y := make([]float32, numel(out.shape))
		in := func(k int) []float32 { return v[op.in[k]] }
		sh := func(k int) []int { return g.t[op.in[k]].shape }
		switch op.code {
		case opFC:
			x, w := in(0), in(1)
			n, k, m := out.shape[0], sh(1)[1], sh(1)[0]
			var b []float32
			if op.in[2] >= 0 {
				b = in(2)
			}
			// A nil pool runs MatMul on the calling goroutine.
			mat := neon.Matrix{Type: neon.F32, Rows: m, Cols: k,
				Data: unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), 4*len(w))}
			pool.MatMul(y, mat, x, n)
			if b != nil {
				for r := 0; r < n; r++ {
					neon.Add(y[r*m:(r+1)*m], y[r*m:(r+1)*m], b)
				}
			}
		case opAdd, opSub, opMul:
			a, b := in(0), in(1)
			sa, sb := sh(0), sh(1)
			rows, cols := out.shape[0], out.shape[1]
			for r := 0; r < rows; r++ {
				for c := 0; c < cols; c++ {
					x := a[(r%sa[0])*sa[1]+c%sa[1]]
					z := b[(r%sb[0])*sb[1]+c%sb[1]]
					switch op.code {
					case opAdd:
						y[r*cols+c] = x + z
					case opSub:
						y[r*cols+c] = x - z
					case opMul:
						y[r*cols+c] = x * z
					}
				}
			}
		case opMean:
			x := in(0)
			rows, cols := sh(0)[0], sh(0)[1]
			for r := 0; r < rows; r++ {
				var s float32
				for _, e := range x[r*cols : (r+1)*cols] {
					s += e
				}
				y[r] = s / float32(cols)
			}
		case opLogistic:
			for i, e := range in(0) {
				y[i] = float32(1 / (1 + math.Exp(-float64(e))))
			}
		case opL2Norm:
			x := in(0)
			rows, cols := out.shape[0], out.shape[1]
			for r := 0; r < rows; r++ {
				var s float64
				for _, e := range x[r*cols : (r+1)*cols] {
					s += float64(e) * float64(e)
				}
				inv := float32(1 / math.Sqrt(max(s, 1e-6)))
				for c := 0; c < cols; c++ {
					y[r*cols+c] = x[r*cols+c] * inv
				}
			}
		case opSoftmax:
			x := in(0)
			rows, cols := out.shape[0], out.shape[1]
			for r := 0; r < rows; r++ {
				xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
				m := xr[0]
				for _, e := range xr {
					m = max(m, e)
				}
				var s float64
				for c, e := range xr {
					yr[c] = float32(math.Exp(float64(op.beta * (e - m))))
					s += float64(yr[c])
				}
				for c := range yr {
					yr[c] = float32(float64(yr[c]) / s)
				}
			}
		case opTranspose:
			x := in(0)
			rows, cols := sh(0)[0], sh(0)[1]
			for r := 0; r < rows; r++ {
				for c := 0; c < cols; c++ {
					y[c*rows+r] = x[r*cols+c]
				}
			}
		case opReshape:
			copy(y, in(0))
		case opConcat:
			rows, off := out.shape[0], 0
			for k := range op.in {
				d := sh(k)[1]
				x := in(k)
				for r := 0; r < rows; r++ {
					copy(y[r*out.shape[1]+off:r*out.shape[1]+off+d], x[r*d:(r+1)*d])
				}
				off += d
			}
		case opConv2D:
			// NHWC input [1, H, W, C], weights [O, kh, kw, C], VALID,
			// stride = kernel.
			x, w, b := in(0), in(1), in(2)
			W, C := sh(0)[2], sh(0)[3]
			O, kh, kw := sh(1)[0], sh(1)[1], sh(1)[2]
			oh, ow := out.shape[1], out.shape[2]
			s := op.stride
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					for o := 0; o < O; o++ {
						acc := b[o]
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								xi := ((oy*s+ky)*W + ox*s + kx) * C
								wi := ((o*kh+ky)*kw + kx) * C
								for c := 0; c < C; c++ {
									acc += x[xi+c] * w[wi+c]
								}
							}
						}
						y[(oy*ow+ox)*O+o] = acc
					}
				}
			}
		default:
			return nil, fmt.Errorf("no float kernel for operator %d", op.code)
		}
		v[op.out] = y
	}
	return v, nil
}

// observe widens every activation's range with the values of one
// evaluation.
func (g *graph) observe(v [][]float32) {
	for i, t := range g.t {
		if t.role != roleActivation || v[i] == nil {
			continue
		}
		lo, hi := v[i][0], v[i][0]
		for _, e := range v[i] {
			lo, hi = min(lo, e), max(hi, e)
		}
		if !t.seen {
			t.lo, t.hi, t.seen = lo, hi, true
		} else {
			t.lo, t.hi = min(t.lo, lo), max(t.hi, hi)
		}
	}
}
