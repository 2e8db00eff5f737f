package runtime

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/palid/palid/runtime/gguf"
)

// naiveModel is a plain float64 transcription of PaLI-3 (SigLIP +
// projector + T5 v1.1), written loop by loop from the Hugging Face
// modelling code without any of the engine's machinery: no streaming
// attention, no KV cache (the decoder recomputes the whole prefix each
// step), no quantized activations.
type naiveModel struct {
	t  map[string][]float64
	kv map[string]any
	c  randomConfig
}

func loadNaive(t *testing.T, dir string, c randomConfig) *naiveModel {
	nm := &naiveModel{t: map[string][]float64{}, kv: map[string]any{}, c: c}
	for _, name := range []string{"model.gguf", "mmproj.gguf"} {
		f, err := gguf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range f.Tensors {
			ten, err := f.Tensor(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			v, err := ten.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			d := make([]float64, len(v))
			for i, x := range v {
				d[i] = float64(x)
			}
			nm.t[ti.Name] = d
		}
		f.Close()
	}
	return nm
}

func (nm *naiveModel) w(name string) []float64 {
	v, ok := nm.t[name]
	if !ok {
		panic("naive: no tensor " + name)
	}
	return v
}

// linear: x [n][in] times W [out][in] (+ b).
func naiveLinear(x [][]float64, w []float64, b []float64, out int) [][]float64 {
	in := len(x[0])
	y := make([][]float64, len(x))
	for t := range x {
		y[t] = make([]float64, out)
		for r := 0; r < out; r++ {
			s := 0.0
			for c := 0; c < in; c++ {
				s += x[t][c] * w[r*in+c]
			}
			if b != nil {
				s += b[r]
			}
			y[t][r] = s
		}
	}
	return y
}

func naiveLN(x [][]float64, w, b []float64, eps float64) [][]float64 {
	y := make([][]float64, len(x))
	for t, row := range x {
		mean, vr := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(len(row))
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(len(row))
		y[t] = make([]float64, len(row))
		for i, v := range row {
			y[t][i] = (v-mean)/math.Sqrt(vr+eps)*w[i] + b[i]
		}
	}
	return y
}

func naiveRMS(x [][]float64, w []float64, eps float64) [][]float64 {
	y := make([][]float64, len(x))
	for t, row := range x {
		ms := 0.0
		for _, v := range row {
			ms += v * v
		}
		ms /= float64(len(row))
		y[t] = make([]float64, len(row))
		for i, v := range row {
			y[t][i] = v / math.Sqrt(ms+eps) * w[i]
		}
	}
	return y
}

func naiveGELU(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// naiveAttention: full score matrix and softmax per head; bias(h, i, j)
// may be nil; mask(i, j) true hides a key.
func naiveAttention(q, k, v [][]float64, heads int, scale float64,
	bias func(h, i, j int) float64, mask func(i, j int) bool) [][]float64 {
	dh := len(q[0]) / heads
	out := make([][]float64, len(q))
	for i := range out {
		out[i] = make([]float64, heads*dh)
	}
	for h := 0; h < heads; h++ {
		for i := range q {
			s := make([]float64, len(k))
			mx := math.Inf(-1)
			for j := range k {
				if mask != nil && mask(i, j) {
					s[j] = math.Inf(-1)
					continue
				}
				x := 0.0
				for c := 0; c < dh; c++ {
					x += q[i][h*dh+c] * k[j][h*dh+c]
				}
				x *= scale
				if bias != nil {
					x += bias(h, i, j)
				}
				s[j] = x
				mx = math.Max(mx, x)
			}
			sum := 0.0
			for j := range s {
				s[j] = math.Exp(s[j] - mx)
				sum += s[j]
			}
			for j := range k {
				for c := 0; c < dh; c++ {
					out[i][h*dh+c] += s[j] / sum * v[j][h*dh+c]
				}
			}
		}
	}
	return out
}

func addRows(x, y [][]float64) {
	for t := range x {
		for i := range x[t] {
			x[t][i] += y[t][i]
		}
	}
}

// vision returns the projected tokens of a square image at model size.
func (nm *naiveModel) vision(img Image) [][]float64 {
	c := nm.c
	p, D := c.patch, c.vWidth
	g := c.image / p
	W := nm.w("v.patch_embd.weight") // [D][3][p][p]
	B := nm.w("v.patch_embd.bias")
	pos := nm.w("v.position_embd.weight")
	x := make([][]float64, g*g)
	for gy := 0; gy < g; gy++ {
		for gx := 0; gx < g; gx++ {
			row := make([]float64, D)
			for d := 0; d < D; d++ {
				s := B[d]
				for ch := 0; ch < 3; ch++ {
					for ky := 0; ky < p; ky++ {
						for kx := 0; kx < p; kx++ {
							s += W[((d*3+ch)*p+ky)*p+kx] * float64(img.Pix[ch*c.image*c.image+(gy*p+ky)*c.image+gx*p+kx])
						}
					}
				}
				row[d] = s + pos[(gy*g+gx)*D+d]
			}
			x[gy*g+gx] = row
		}
	}
	for i := 0; i < c.vLayers; i++ {
		pre := fmt.Sprintf("v.blk.%d.", i)
		h := naiveLN(x, nm.w(pre+"ln1.weight"), nm.w(pre+"ln1.bias"), 1e-6)
		q := naiveLinear(h, nm.w(pre+"attn_q.weight"), nm.w(pre+"attn_q.bias"), D)
		k := naiveLinear(h, nm.w(pre+"attn_k.weight"), nm.w(pre+"attn_k.bias"), D)
		v := naiveLinear(h, nm.w(pre+"attn_v.weight"), nm.w(pre+"attn_v.bias"), D)
		a := naiveAttention(q, k, v, c.vHeads, 1/math.Sqrt(float64(D/c.vHeads)), nil, nil)
		addRows(x, naiveLinear(a, nm.w(pre+"attn_out.weight"), nm.w(pre+"attn_out.bias"), D))
		h = naiveLN(x, nm.w(pre+"ln2.weight"), nm.w(pre+"ln2.bias"), 1e-6)
		f := naiveLinear(h, nm.w(pre+"ffn_up.weight"), nm.w(pre+"ffn_up.bias"), c.vFF)
		for _, r := range f {
			for j := range r {
				r[j] = naiveGELU(r[j])
			}
		}
		addRows(x, naiveLinear(f, nm.w(pre+"ffn_down.weight"), nm.w(pre+"ffn_down.bias"), D))
	}
	x = naiveLN(x, nm.w("v.post_ln.weight"), nm.w("v.post_ln.bias"), 1e-6)
	return naiveLinear(x, nm.w("mm.model.fc.weight"), nm.w("mm.model.fc.bias"), c.d)
}

func (nm *naiveModel) embed(ids []int) [][]float64 {
	e := nm.w("token_embd.weight")
	d := nm.c.d
	x := make([][]float64, len(ids))
	for i, id := range ids {
		x[i] = append([]float64(nil), e[id*d:(id+1)*d]...)
	}
	return x
}

func (nm *naiveModel) ffn(pre string, h [][]float64) [][]float64 {
	c := nm.c
	g := naiveLinear(h, nm.w(pre+"ffn_gate.weight"), nil, c.ff)
	u := naiveLinear(h, nm.w(pre+"ffn_up.weight"), nil, c.ff)
	for t := range g {
		for j := range g[t] {
			x := g[t][j]
			if c.silu {
				x = x / (1 + math.Exp(-x))
			} else {
				x = naiveGELU(x)
			}
			g[t][j] = x * u[t][j]
		}
	}
	return naiveLinear(g, nm.w(pre+"ffn_down.weight"), nil, c.d)
}

// hfBucket is a direct transcription of Hugging Face T5's
// _relative_position_bucket for one position, in float32 where torch is.
func hfBucket(relativePosition int, bidirectional bool, numBuckets, maxDistance int) int {
	relativeBuckets := 0
	if bidirectional {
		numBuckets /= 2
		if relativePosition > 0 {
			relativeBuckets += numBuckets
		}
		relativePosition = int(math.Abs(float64(relativePosition)))
	} else {
		relativePosition = -min(relativePosition, 0)
	}
	maxExact := numBuckets / 2
	isSmall := relativePosition < maxExact
	lg := float32(math.Log(float64(float32(relativePosition) / float32(maxExact))))
	ifLarge := maxExact + int(lg/float32(math.Log(float64(maxDistance)/float64(maxExact)))*float32(numBuckets-maxExact))
	ifLarge = min(ifLarge, numBuckets-1)
	if isSmall {
		return relativeBuckets + relativePosition
	}
	return relativeBuckets + ifLarge
}

func (nm *naiveModel) encoder(x [][]float64) [][]float64 {
	c := nm.c
	inner := c.heads * c.dh
	rel := nm.w("enc.blk.0.attn_rel_b.weight") // [buckets][heads]
	bias := func(h, i, j int) float64 {
		return rel[hfBucket(j-i, true, c.buckets, c.maxDist)*c.heads+h]
	}
	for i := 0; i < c.encLayers; i++ {
		pre := fmt.Sprintf("enc.blk.%d.", i)
		h := naiveRMS(x, nm.w(pre+"attn_norm.weight"), 1e-6)
		q := naiveLinear(h, nm.w(pre+"attn_q.weight"), nil, inner)
		k := naiveLinear(h, nm.w(pre+"attn_k.weight"), nil, inner)
		v := naiveLinear(h, nm.w(pre+"attn_v.weight"), nil, inner)
		a := naiveAttention(q, k, v, c.heads, 1, bias, nil)
		addRows(x, naiveLinear(a, nm.w(pre+"attn_o.weight"), nil, c.d))
		addRows(x, nm.ffn(pre, naiveRMS(x, nm.w(pre+"ffn_norm.weight"), 1e-6)))
	}
	return naiveRMS(x, nm.w("enc.output_norm.weight"), 1e-6)
}

// decoderLogits runs the decoder over the whole prefix and returns the
// logits of its last position.
func (nm *naiveModel) decoderLogits(enc [][]float64, prefix []int) []float64 {
	c := nm.c
	inner := c.heads * c.dh
	rel := nm.w("dec.blk.0.attn_rel_b.weight")
	bias := func(h, i, j int) float64 {
		return rel[hfBucket(j-i, false, c.buckets, c.maxDist)*c.heads+h]
	}
	causal := func(i, j int) bool { return j > i }
	x := nm.embed(prefix)
	for i := 0; i < c.decLayers; i++ {
		pre := fmt.Sprintf("dec.blk.%d.", i)
		h := naiveRMS(x, nm.w(pre+"attn_norm.weight"), 1e-6)
		q := naiveLinear(h, nm.w(pre+"attn_q.weight"), nil, inner)
		k := naiveLinear(h, nm.w(pre+"attn_k.weight"), nil, inner)
		v := naiveLinear(h, nm.w(pre+"attn_v.weight"), nil, inner)
		addRows(x, naiveLinear(naiveAttention(q, k, v, c.heads, 1, bias, causal), nm.w(pre+"attn_o.weight"), nil, c.d))
		h = naiveRMS(x, nm.w(pre+"cross_attn_norm.weight"), 1e-6)
		q = naiveLinear(h, nm.w(pre+"cross_attn_q.weight"), nil, inner)
		k = naiveLinear(enc, nm.w(pre+"cross_attn_k.weight"), nil, inner)
		v = naiveLinear(enc, nm.w(pre+"cross_attn_v.weight"), nil, inner)
		addRows(x, naiveLinear(naiveAttention(q, k, v, c.heads, 1, nil, nil), nm.w(pre+"cross_attn_o.weight"), nil, c.d))
		addRows(x, nm.ffn(pre, naiveRMS(x, nm.w(pre+"ffn_norm.weight"), 1e-6)))
	}
	x = naiveRMS(x, nm.w("dec.output_norm.weight"), 1e-6)
	last := [][]float64{x[len(x)-1]}
	head := "output.weight"
	if c.tied {
		head = "token_embd.weight"
		for i := range last[0] {
			last[0][i] *= 1 / math.Sqrt(float64(c.d))
		}
	}
	return naiveLinear(last, nm.w(head), nil, c.vocab)[0]
}

// greedy decodes greedily and returns the tokens and every step's logits.
func (nm *naiveModel) greedy(frames []Image, promptIDs []int, maxTokens int) ([]int, [][]float64) {
	var x [][]float64
	for _, f := range frames {
		x = append(x, nm.vision(f)...)
	}
	x = append(x, nm.embed(append(append([]int(nil), promptIDs...), 1))...)
	enc := nm.encoder(x)
	prefix := []int{0}
	var toks []int
	var all [][]float64
	for len(toks) < maxTokens {
		lg := nm.decoderLogits(enc, prefix)
		best := 0
		for i, v := range lg {
			if v > lg[best] {
				best = i
			}
		}
		all = append(all, lg)
		toks = append(toks, best)
		if best == 1 {
			break
		}
		prefix = append(prefix, best)
	}
	return toks, all
}
