package delegate

import (
	"fmt"
	"math"

	palirt "github.com/palid/palid/runtime"
)

// buildViT lays out palid's SigLIP tower and projector as a graph of ops
// that TFLite (2.2 and later) runs with int8 kernels and that NPU delegates
// take:
//
//   - patch embedding: CONV_2D (kernel = stride = patch, VALID) on the
//     NHWC frame, RESHAPE to [tokens, D], ADD of the position table;
//   - LayerNorm: MEAN, SUB, L2_NORMALIZATION; the sqrt(D) factor, the
//     LayerNorm's weight and bias are folded into the linear layers that
//     follow (TFLite 2.2 has no int8 RSQRT);
//   - attention per head: FULLY_CONNECTED for q (1/sqrt(dh) folded in), k
//     and v; scores as FULLY_CONNECTED(q, k) = q k^T, SOFTMAX,
//     TRANSPOSE of v, FULLY_CONNECTED(p, v^T) = p v; CONCATENATION of the
//     heads and the output FULLY_CONNECTED;
//   - tanh-GELU as x * LOGISTIC(2 sqrt(2/pi) x (1 + 0.044715 x^2)), in
//     MUL and ADD;
//   - residual ADDs, the final LayerNorm folded into the projector.
//
// The input is [1, S, S, 3] (S = ImageSize), the output [tokens, ProjDim].
func buildViT(vt palirt.VisionTower) (*graph, error) {
	if err := checkTower(vt); err != nil {
		return nil, err
	}
	g := &graph{}
	S, p, D := vt.ImageSize, vt.Patch, vt.Width
	grid := S / p
	n := grid * grid
	dh := D / vt.Heads

	in := g.activation("image", 1, S, S, 3)
	g.inputs = []int{in}
	// Conv weights [D, p, p, 3] from palid's [D][c*p*p + ky*p + kx].
	cw := make([]float32, D*p*p*3)
	for o := 0; o < D; o++ {
		for c := 0; c < 3; c++ {
			for ky := 0; ky < p; ky++ {
				for kx := 0; kx < p; kx++ {
					cw[((o*p+ky)*p+kx)*3+c] = vt.PatchW[o*3*p*p+c*p*p+ky*p+kx]
				}
			}
		}
	}
	conv := g.activation("patch_embd", 1, grid, grid, D)
	g.op(opConv2D, conv, in,
		g.constant("patch_embd/weight", roleConvWeight, cw, D, p, p, 3),
		g.constant("patch_embd/bias", roleBias, vt.PatchB, D)).stride = p
	x := g.reshape("patch_tokens", conv, n, D)
	x = g.binary(opAdd, "embeddings", x, g.constant("position_embd", roleConst, vt.Pos, n, D))

	for i, b := range vt.Blocks {
		pre := fmt.Sprintf("blk%d/", i)
		u := g.layerNorm(pre+"ln1", x)
		var heads []int
		for h := 0; h < vt.Heads; h++ {
			hp := fmt.Sprintf("%shead%d/", pre, h)
			scale := float32(1 / math.Sqrt(float64(dh)))
			q := g.lnLinear(hp+"q", u, rows(b.Q, D, h*dh, dh), b.QB[h*dh:(h+1)*dh], b.LN1W, b.LN1B, scale)
			k := g.lnLinear(hp+"k", u, rows(b.K, D, h*dh, dh), b.KB[h*dh:(h+1)*dh], b.LN1W, b.LN1B, 1)
			v := g.lnLinear(hp+"v", u, rows(b.V, D, h*dh, dh), b.VB[h*dh:(h+1)*dh], b.LN1W, b.LN1B, 1)
			g.t[k].symmetric = true // FC weights at run time
			g.t[v].symmetric = true
			s := g.fc(hp+"scores", q, k, -1)
			pr := g.softmax(hp+"probs", s)
			vt := g.transpose(hp+"v_t", v)
			heads = append(heads, g.fc(hp+"out", pr, vt, -1))
		}
		a := g.concat(pre+"attn", heads...)
		o := g.fc(pre+"attn_out", a,
			g.constant(pre+"attn_out/weight", roleWeight, b.O, D, D),
			g.constant(pre+"attn_out/bias", roleBias, b.OB, D))
		x = g.binary(opAdd, pre+"resid1", x, o)

		u = g.layerNorm(pre+"ln2", x)
		up := g.lnLinear(pre+"ffn_up", u, b.Up, b.UpB, b.LN2W, b.LN2B, 1)
		act := g.gelu(pre+"gelu", up)
		down := g.fc(pre+"ffn_down", act,
			g.constant(pre+"ffn_down/weight", roleWeight, b.Down, D, vt.FF),
			g.constant(pre+"ffn_down/bias", roleBias, b.DownB, D))
		x = g.binary(opAdd, pre+"resid2", x, down)
	}
	u := g.layerNorm("post_ln", x)
	out := g.lnLinear("tokens", u, vt.Proj, vt.ProjB, vt.PostW, vt.PostB, 1)
	g.outputs = []int{out}
	return g, nil
}

func checkTower(vt palirt.VisionTower) error {
	switch {
	case vt.ImageSize <= 0 || vt.Patch <= 0 || vt.ImageSize%vt.Patch != 0:
		return fmt.Errorf("vision tower: image size %d is not a positive multiple of the patch %d", vt.ImageSize, vt.Patch)
	case vt.Heads <= 0 || vt.Width%vt.Heads != 0:
		return fmt.Errorf("vision tower: width %d is not a multiple of the %d heads", vt.Width, vt.Heads)
	case len(vt.Blocks) != vt.Layers || vt.Layers == 0:
		return fmt.Errorf("vision tower: %d blocks, want %d", len(vt.Blocks), vt.Layers)
	case len(vt.PatchW) != vt.Width*3*vt.Patch*vt.Patch:
		return fmt.Errorf("vision tower: patch weights hold %d values, want %d", len(vt.PatchW), vt.Width*3*vt.Patch*vt.Patch)
	case len(vt.Proj) != vt.ProjDim*vt.Width:
		return fmt.Errorf("vision tower: projector holds %d values, want %d", len(vt.Proj), vt.ProjDim*vt.Width)
	}
	return nil
}

// rows returns rows [lo, lo+k) of a row-major matrix with cols columns.
func rows(w []float32, cols, lo, k int) []float32 { return w[lo*cols : (lo+k)*cols] }

// layerNorm emits the weight-free part of a LayerNorm: c = x - mean(x),
// c / ||c||. The caller's next linear layer takes sqrt(D), the weight and
// the bias (lnLinear).
func (g *graph) layerNorm(name string, x int) int {
	c := g.binary(opSub, name+"/centered", x, g.mean(name+"/mean", x))
	return g.l2norm(name+"/unit", c)
}

// lnLinear is W (LN(x) with weight lw and bias lb) + bias, times scale,
// on u = the unit rows from layerNorm: since LN(x) = sqrt(D) u * lw + lb,
// it is one FULLY_CONNECTED with W' = scale W diag(sqrt(D) lw) and
// b' = scale (W lb + bias).
func (g *graph) lnLinear(name string, u int, w, bias, lw, lb []float32, scale float32) int {
	d := len(lw)
	m := len(w) / d
	sq := float32(math.Sqrt(float64(d)))
	wf := make([]float32, len(w))
	bf := make([]float32, m)
	for r := 0; r < m; r++ {
		acc := float64(bias[r])
		for c := 0; c < d; c++ {
			wf[r*d+c] = scale * w[r*d+c] * sq * lw[c]
			acc += float64(w[r*d+c]) * float64(lb[c])
		}
		bf[r] = scale * float32(acc)
	}
	return g.fc(name, u,
		g.constant(name+"/weight", roleWeight, wf, m, d),
		g.constant(name+"/bias", roleBias, bf, m))
}

// gelu is tanh-GELU: x * sigmoid(k x (1 + 0.044715 x^2)), k = 2 sqrt(2/pi).
func (g *graph) gelu(name string, x int) int {
	k := float32(2 * math.Sqrt(2/math.Pi))
	sq := g.binary(opMul, name+"/sq", x, x)
	t := g.binary(opMul, name+"/cubic", sq, g.constant(name+"/c1", roleConst, []float32{k * 0.044715}, 1, 1))
	t = g.binary(opAdd, name+"/poly", t, g.constant(name+"/c0", roleConst, []float32{k}, 1, 1))
	z := g.binary(opMul, name+"/z", x, t)
	s := g.logistic(name+"/sigmoid", z)
	return g.binary(opMul, name, x, s)
}
