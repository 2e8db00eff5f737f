package neon

// LayerNorm writes (x - mean) / sqrt(var + eps) * w + b for one row to dst
// (dst may alias x; w and b may be nil).
func LayerNorm(dst, x, w, b []float32, eps float32) { kern.layerNorm(dst, x, w, b, eps) }

// RMSNorm writes T5's x / sqrt(mean(x^2) + eps) * w to dst (dst may alias
// x; w may be nil).
func RMSNorm(dst, x, w []float32, eps float32) { kern.rmsNorm(dst, x, w, eps) }

// GELUTanh applies the tanh approximation of GELU in place. The assembly
// paths compute in float32 with a fast exp, within about 1e-6 relative
// (plus 1e-30 absolute) of the float64 twin.
func GELUTanh(x []float32) { kern.gelu(x) }

// SiLU applies x*sigmoid(x) in place.
func SiLU(x []float32) { kern.silu(x) }

// Softmax replaces x by its softmax, subtracting the maximum first. A row
// that is entirely -Inf (fully masked) becomes all zeros.
func Softmax(x []float32) { kern.softmax(x) }

// ExpSum sets x[i] = exp(x[i] - m) in place and returns their sum: the
// exponentiation pass of Softmax, for callers that keep a running maximum
// (attention's online softmax). Entries of -Inf become 0; m should be at
// least max(x) so that nothing overflows.
func ExpSum(x []float32, m float32) float32 { return kern.expSum(x, m) }

// Dot returns the dot product of a and b (len(b) >= len(a)).
func Dot(a, b []float32) float32 { return kern.dotF32(a, b) }

// Axpy computes y += a*x (len(x) >= len(y)).
func Axpy(y []float32, a float32, x []float32) { kern.axpy(y, a, x) }

// Scale multiplies x by a in place.
func Scale(x []float32, a float32) { scaleGeneric(x, a) }

// Add writes a + b to dst (any of them may alias).
func Add(dst, a, b []float32) { addGeneric(dst, a, b) }

// Mul writes a * b element-wise to dst (any of them may alias).
func Mul(dst, a, b []float32) { mulGeneric(dst, a, b) }
