package neon

// kernelSet is one implementation path of the hot kernels. Kernels that a
// path does not provide are the Go twins.
type kernelSet struct {
	path string // "generic", "avx2", "asimd", "sdot", "smmla"

	dotQ8     func(w, x []byte) float32
	dotQ8x2   func(out *[4]float32, w0, w1, x0, x1 []byte)
	dotQ4Q8   func(w, x []byte) float32
	dotQ4Q8x2 func(out *[4]float32, w0, w1, x0, x1 []byte)
	quantQ8   func(dst []byte, src []float32)
	dotF32    func(a, b []float32) float32
	axpy      func(y []float32, a float32, x []float32)
	gemmF32   gemmF32Func
	gemmF16   gemmF16Func
	toF16     func(dst []uint16, src []float32)

	// Packed-weight kernels (pack.go), used for matrices returned by
	// Pack; unpacked matrices run on the row-pair kernels above.
	tileQ8   tileFunc
	tileQ4   tileFunc
	quantAct func(qs []byte, ds []float32, sums []int32, src []float32)

	f16ToF32 func(dst []float32, src []byte)     // F16 weights to float32
	dotF16   func(w []byte, x []float32) float32 // F16 row . float32 vector

	gelu, silu, softmax func(x []float32) // in place
	expSum              func(x []float32, m float32) float32
	layerNorm           func(dst, x, w, b []float32, eps float32)
	rmsNorm             func(dst, x, w []float32, eps float32)

	// names lists "kernel: implementation" for Kernels.
	names []string
}

var genericKernels = &kernelSet{
	path:      "generic",
	dotQ8:     dotQ8Generic,
	dotQ8x2:   dotQ8x2Generic,
	dotQ4Q8:   dotQ4Q8Generic,
	dotQ4Q8x2: dotQ4Q8x2Generic,
	quantQ8:   quantizeQ8Generic,
	dotF32:    dotF32Generic,
	axpy:      axpyGeneric,
	gemmF32:   gemmF32Generic,
	gemmF16:   gemmF16Generic,
	toF16:     toF16Generic,
	tileQ8:    tileQ8Generic,
	tileQ4:    tileQ4Generic,
	quantAct:  quantizeActGeneric,
	f16ToF32:  f16ToF32Generic,
	dotF16:    dotF16Generic,
	gelu:      geluTanhGeneric,
	silu:      siluGeneric,
	softmax:   softmaxGeneric,
	expSum:    softmaxExpGeneric,
	layerNorm: layerNormGeneric,
	rmsNorm:   rmsNormGeneric,
	names: []string{"dotQ8Generic", "dotQ4Q8Generic", "tileQ8Generic", "tileQ4Generic",
		"quantizeQ8Generic", "dotF32Generic", "axpyGeneric", "gemmF32Generic", "gemmF16Generic", "toF16Generic"},
}

// kern is the dispatched path, chosen once at init (tests switch it).
var kern = bestKernels()

// Kernels reports the kernel implementations dispatch chose for this CPU,
// e.g. "dotQ8SDOT".
func Kernels() []string {
	return append([]string(nil), kern.names...)
}

// KernelPath returns the name of the dispatched path: "generic", "avx2",
// "asimd", "sdot" or "smmla".
func KernelPath() string { return kern.path }

// quantizeQ8 quantizes activations with the dispatched kernel.
func quantizeQ8(dst []byte, src []float32) { kern.quantQ8(dst, src) }

// useKernels switches the dispatched path (tests only) and returns a
// function that restores the previous one.
func useKernels(k *kernelSet) (restore func()) {
	old := kern
	kern = k
	return func() { kern = old }
}

// b2i is 1 for true: the add flag as assembly kernels take it.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
