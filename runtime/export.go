package runtime

import "github.com/palid/palid/neon"

// VisionTower is a float32 copy of a model's SigLIP tower and projector,
// for exporters (delegate's .tflite export). Matrices are row-major
// [out][in], as PyTorch's Linear holds them.
type VisionTower struct {
	ImageSize int     // model resolution, square
	Patch     int     // patch side
	Width     int     // ViT hidden size D
	FF        int     // MLP size
	Layers    int     // blocks
	Heads     int     // attention heads
	ProjDim   int     // projector output (text width)
	Eps       float32 // LayerNorm epsilon

	PatchW []float32 // [Width][3*Patch*Patch], column c*p*p + ky*p + kx
	PatchB []float32 // [Width]
	Pos    []float32 // [(ImageSize/Patch)^2][Width]
	Blocks []VisionBlock
	PostW  []float32 // final LayerNorm
	PostB  []float32
	Proj   []float32 // [ProjDim][Width]
	ProjB  []float32 // [ProjDim]
}

// VisionBlock is one pre-LN transformer block of the tower, in float32.
type VisionBlock struct {
	LN1W, LN1B []float32 // [Width]
	Q, K, V, O []float32 // [Width][Width]
	QB, KB, VB []float32 // [Width]
	OB         []float32 // [Width]
	LN2W, LN2B []float32 // [Width]
	Up         []float32 // [FF][Width]
	UpB        []float32 // [FF]
	Down       []float32 // [Width][FF]
	DownB      []float32 // [Width]
}

// VisionTower returns a dequantized float32 copy of the vision weights.
// It allocates about 4 bytes per vision parameter; the model is unchanged.
func (m *Model) VisionTower() VisionTower {
	v := &m.vis
	deq := func(w neon.Matrix) []float32 {
		out := make([]float32, w.Rows*w.Cols)
		for r := 0; r < w.Rows; r++ {
			neon.Dequantize(w.Type, out[r*w.Cols:(r+1)*w.Cols], w.Row(r))
		}
		return out
	}
	cp := func(s []float32) []float32 { return append([]float32(nil), s...) }
	t := VisionTower{
		ImageSize: v.imageSize, Patch: v.patch, Width: v.width, FF: v.ff,
		Layers: v.layers, Heads: v.heads, ProjDim: v.projDim, Eps: v.eps,
		PatchW: deq(v.patchW), PatchB: cp(v.patchB), Pos: cp(v.pos),
		PostW: cp(v.postW), PostB: cp(v.postB), Proj: deq(v.proj), ProjB: cp(v.projB),
	}
	for _, b := range v.blocks {
		t.Blocks = append(t.Blocks, VisionBlock{
			LN1W: cp(b.ln1w), LN1B: cp(b.ln1b),
			Q: deq(b.q), K: deq(b.k), V: deq(b.v), O: deq(b.o),
			QB: cp(b.qb), KB: cp(b.kb), VB: cp(b.vb), OB: cp(b.ob),
			LN2W: cp(b.ln2w), LN2B: cp(b.ln2b),
			Up: deq(b.up), UpB: cp(b.upb), Down: deq(b.down), DownB: cp(b.downb),
		})
	}
	return t
}
