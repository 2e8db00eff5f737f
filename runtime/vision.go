package runtime

import (
	"context"
	"fmt"
	"math"

	"github.com/palid/palid/neon"
)

// Image is one frame ready for the ViT: CHW float32 (3 planes of
// Height x Width), values in [-1, 1].
type Image struct {
	Width, Height int
	Pix           []float32
}

// maxImageSide bounds the frames EncodeImage accepts (memory grows with
// the square of the side).
const maxImageSide = 2048

// visionWeights is the SigLIP tower and the projector.
type visionWeights struct {
	imageSize, patch int
	width, ff        int
	layers, heads    int
	dh               int
	eps              float32
	projDim          int
	grid             int // position grid side

	patchW neon.Matrix // [width, 3*p*p], columns c*p*p + ky*p + kx
	patchB []float32
	pos    []float32 // grid*grid x width
	blocks []vitLayer
	postW  []float32
	postB  []float32
	proj   neon.Matrix // [projDim, width]
	projB  []float32
}

type vitLayer struct {
	ln1w, ln1b []float32
	q, k, v, o neon.Matrix
	qb, kb, vb []float32
	ob         []float32
	ln2w, ln2b []float32
	up, down   neon.Matrix
	upb, downb []float32
}

func (m *Model) loadVision(l *loader) error {
	arch, err := l.f.String("general.architecture")
	if err != nil {
		return l.wrap(err)
	}
	if arch != "clip" {
		return l.errorf("general.architecture is %q, want \"clip\"", arch)
	}
	if pt, err := l.f.String("clip.projector_type"); err != nil {
		return l.wrap(err)
	} else if pt != "pali3" {
		return l.errorf("clip.projector_type is %q, want \"pali3\"", pt)
	}
	v := &m.vis
	for _, s := range []struct {
		dst *int
		key string
	}{
		{&v.imageSize, "clip.vision.image_size"},
		{&v.patch, "clip.vision.patch_size"},
		{&v.width, "clip.vision.embedding_length"},
		{&v.ff, "clip.vision.feed_forward_length"},
		{&v.layers, "clip.vision.block_count"},
		{&v.heads, "clip.vision.attention.head_count"},
		{&v.projDim, "clip.vision.projection_dim"},
	} {
		if *s.dst, err = l.size(s.key); err != nil {
			return err
		}
	}
	if v.imageSize%v.patch != 0 {
		return l.errorf("clip.vision.image_size %d is not a multiple of clip.vision.patch_size %d", v.imageSize, v.patch)
	}
	if v.width%v.heads != 0 {
		return l.errorf("clip.vision.embedding_length %d is not a multiple of the %d heads", v.width, v.heads)
	}
	v.dh = v.width / v.heads
	eps, err := l.f.Float("clip.vision.attention.layer_norm_epsilon")
	if err != nil {
		return l.wrap(err)
	}
	if !(eps >= 0 && eps < 1) {
		return l.errorf("clip.vision.attention.layer_norm_epsilon is %g, want in [0, 1)", eps)
	}
	v.eps = float32(eps)
	v.grid = v.imageSize / v.patch
	p := v.patch
	pt, err := l.tensor("v.patch_embd.weight", p, p, 3, v.width)
	if err != nil {
		return err
	}
	if v.patchW, err = l.asMatrix(pt, v.width, 3*p*p); err != nil {
		return err
	}
	var e errs
	v.patchB = e.v(l.floats("v.patch_embd.bias", v.width))
	v.pos = e.v(l.floats("v.position_embd.weight", v.width, v.grid*v.grid))
	v.postW = e.v(l.floats("v.post_ln.weight", v.width))
	v.postB = e.v(l.floats("v.post_ln.bias", v.width))
	v.proj = e.m(l.matrix("mm.model.fc.weight", v.width, v.projDim))
	v.projB = e.v(l.floats("mm.model.fc.bias", v.projDim))
	for i := 0; i < v.layers && e.err == nil; i++ {
		pre := fmt.Sprintf("v.blk.%d.", i)
		var b vitLayer
		b.ln1w = e.v(l.floats(pre+"ln1.weight", v.width))
		b.ln1b = e.v(l.floats(pre+"ln1.bias", v.width))
		b.q = e.m(l.matrix(pre+"attn_q.weight", v.width, v.width))
		b.qb = e.v(l.floats(pre+"attn_q.bias", v.width))
		b.k = e.m(l.matrix(pre+"attn_k.weight", v.width, v.width))
		b.kb = e.v(l.floats(pre+"attn_k.bias", v.width))
		b.v = e.m(l.matrix(pre+"attn_v.weight", v.width, v.width))
		b.vb = e.v(l.floats(pre+"attn_v.bias", v.width))
		b.o = e.m(l.matrix(pre+"attn_out.weight", v.width, v.width))
		b.ob = e.v(l.floats(pre+"attn_out.bias", v.width))
		b.ln2w = e.v(l.floats(pre+"ln2.weight", v.width))
		b.ln2b = e.v(l.floats(pre+"ln2.bias", v.width))
		b.up = e.m(l.matrix(pre+"ffn_up.weight", v.width, v.ff))
		b.upb = e.v(l.floats(pre+"ffn_up.bias", v.ff))
		b.down = e.m(l.matrix(pre+"ffn_down.weight", v.ff, v.width))
		b.downb = e.v(l.floats(pre+"ffn_down.bias", v.width))
		v.blocks = append(v.blocks, b)
	}
	if e.err != nil {
		return e.err
	}
	m.info.ImageSize = v.imageSize
	m.info.PatchSize = v.patch
	m.info.VisionTokens = v.grid * v.grid
	m.info.VisionWidth = v.width
	m.info.VisionFF = v.ff
	m.info.VisionLayers = v.layers
	m.info.VisionHeads = v.heads
	m.info.VisionType = v.blocks[0].q.Type.String()
	return nil
}

// checkImage validates a frame for EncodeImage.
func (m *Model) checkImage(img Image) error {
	p := m.vis.patch
	switch {
	case img.Width <= 0 || img.Height <= 0:
		return fmt.Errorf("image is %dx%d, want a positive size", img.Width, img.Height)
	case img.Width > maxImageSide || img.Height > maxImageSide:
		return fmt.Errorf("image is %dx%d, larger than %d pixels a side", img.Width, img.Height, maxImageSide)
	case img.Width%p != 0 || img.Height%p != 0:
		return fmt.Errorf("image is %dx%d, not a multiple of the patch size %d (the model takes %dx%d)",
			img.Width, img.Height, p, m.vis.imageSize, m.vis.imageSize)
	case len(img.Pix) != 3*img.Width*img.Height:
		return fmt.Errorf("image %dx%d has %d values, want 3x%dx%d = %d",
			img.Width, img.Height, len(img.Pix), img.Width, img.Height, 3*img.Width*img.Height)
	}
	return nil
}

// EncodeImage runs the ViT and the projector on one frame and returns its
// visual tokens, (Height/p)*(Width/p) rows of the text width, row-major.
// A frame of another size than ImageSize gets interpolated position
// embeddings (as Hugging Face SigLIP's interpolate_pos_encoding).
func (m *Model) EncodeImage(ctx context.Context, img Image) ([]float32, error) {
	if err := m.checkImage(img); err != nil {
		return nil, err
	}
	return m.encodeImage(ctx, img)
}

func (m *Model) encodeImage(ctx context.Context, img Image) ([]float32, error) {
	v := &m.vis
	p := v.patch
	gw, gh := img.Width/p, img.Height/p
	n, D := gw*gh, v.width
	kk := 3 * p * p
	// Unfold the patches so that the conv is one matrix product.
	patches := make([]float32, n*kk)
	plane := img.Width * img.Height
	m.pool.Run(gh, func(lo, hi int) {
		for gy := lo; gy < hi; gy++ {
			for gx := 0; gx < gw; gx++ {
				row := patches[(gy*gw+gx)*kk : (gy*gw+gx+1)*kk]
				for c := 0; c < 3; c++ {
					for ky := 0; ky < p; ky++ {
						src := img.Pix[c*plane+(gy*p+ky)*img.Width+gx*p:]
						copy(row[c*p*p+ky*p:c*p*p+ky*p+p], src[:p])
					}
				}
			}
		}
	})
	x := make([]float32, n*D)
	m.pool.MatMul(x, v.patchW, patches, n)
	pos := v.pos
	if gh != v.grid || gw != v.grid {
		pos = bicubicResize(v.pos, v.grid, v.grid, D, gh, gw)
	}
	m.pool.Run(n, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			r := x[t*D : (t+1)*D]
			neon.Add(r, r, v.patchB)
			neon.Add(r, r, pos[t*D:(t+1)*D])
		}
	})

	norm := make([]float32, n*D)
	q := make([]float32, n*D)
	k := make([]float32, n*D)
	val := make([]float32, n*D)
	a := make([]float32, n*D)
	o := make([]float32, n*D)
	h := make([]float32, n*v.ff)
	var work attnWork
	sh := attnShape{heads: v.heads, dh: v.dh, scale: float32(1 / math.Sqrt(float64(v.dh)))}
	job := []attnJob{{
		q: q, qStride: D, nq: n,
		k: k, v: val, kvStride: D, nk: n,
		out: a, outStride: D,
	}}
	for i := range v.blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := &v.blocks[i]
		m.lnRows(norm, x, b.ln1w, b.ln1b, n, D)
		m.linear(q, b.q, b.qb, norm, n)
		m.linear(k, b.k, b.kb, norm, n)
		m.linear(val, b.v, b.vb, norm, n)
		attend(m.pool, sh, job, &work)
		m.linear(o, b.o, b.ob, a, n)
		m.addInto(x, o)
		m.lnRows(norm, x, b.ln2w, b.ln2b, n, D)
		m.linear(h, b.up, b.upb, norm, n)
		const chunk = 4096
		m.pool.Run((len(h)+chunk-1)/chunk, func(lo, hi int) {
			neon.GELUTanh(h[lo*chunk : min(hi*chunk, len(h))])
		})
		m.linear(o, b.down, b.downb, h, n)
		m.addInto(x, o)
	}
	m.lnRows(norm, x, v.postW, v.postB, n, D)
	out := make([]float32, n*v.projDim)
	m.linear(out, v.proj, v.projB, norm, n)
	return out, nil
}

// lnRows layer-normalises n rows of width d.
func (m *Model) lnRows(dst, x, w, b []float32, n, d int) {
	eps := m.vis.eps
	m.pool.Run(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			neon.LayerNorm(dst[i*d:(i+1)*d], x[i*d:(i+1)*d], w, b, eps)
		}
	})
}

// linear computes out = x W^T + bias for n rows.
func (m *Model) linear(out []float32, w neon.Matrix, bias, x []float32, n int) {
	m.pool.MatMul(out, w, x, n)
	r := w.Rows
	m.pool.Run(n, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			neon.Add(out[t*r:(t+1)*r], out[t*r:(t+1)*r], bias)
		}
	})
}

// cubicCoeffs are torch's get_cubic_upsample_coefficients (A = -0.75).
func cubicCoeffs(t float32) [4]float32 {
	const A = float32(-0.75)
	conv1 := func(x float32) float32 { return ((A+2)*x-(A+3))*x*x + 1 }
	conv2 := func(x float32) float32 { return ((A*x-5*A)*x+8*A)*x - 4*A }
	x2 := 1 - t
	return [4]float32{conv2(t + 1), conv1(t), conv1(x2), conv2(x2 + 1)}
}

// cubicAxis computes, for each of out output positions along an axis of
// in input positions, the 4 clamped source indices and weights of torch's
// bicubic upsampling with align_corners=False.
func cubicAxis(in, out int) (idx [][4]int, w [][4]float32) {
	scale := float32(in) / float32(out)
	idx = make([][4]int, out)
	w = make([][4]float32, out)
	for o := 0; o < out; o++ {
		real := scale*(float32(o)+0.5) - 0.5
		i := min(int(math.Floor(float64(real))), in-1)
		t := min(max(real-float32(i), 0), 1)
		w[o] = cubicCoeffs(t)
		for j := 0; j < 4; j++ {
			idx[o][j] = min(max(i-1+j, 0), in-1)
		}
	}
	return idx, w
}

// bicubicResize resizes a grid of ih x iw positions, each a vector of d
// channels (row-major [y][x][c]), to oh x ow, exactly as
// torch.nn.functional.interpolate(mode="bicubic", align_corners=False)
// does on the [c][y][x] view: rows are interpolated along x first, then
// the four rows along y, in float32.
func bicubicResize(src []float32, ih, iw, d, oh, ow int) []float32 {
	out := make([]float32, oh*ow*d)
	if ih == oh && iw == ow {
		copy(out, src)
		return out
	}
	yi, yw := cubicAxis(ih, oh)
	xi, xw := cubicAxis(iw, ow)
	row := make([]float32, d)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			dst := out[(oy*ow+ox)*d : (oy*ow+ox+1)*d]
			for a := 0; a < 4; a++ {
				y := yi[oy][a]
				for c := 0; c < d; c++ {
					r := src[(y*iw+xi[ox][0])*d+c] * xw[ox][0]
					r += src[(y*iw+xi[ox][1])*d+c] * xw[ox][1]
					r += src[(y*iw+xi[ox][2])*d+c] * xw[ox][2]
					r += src[(y*iw+xi[ox][3])*d+c] * xw[ox][3]
					row[c] = r
				}
				if a == 0 {
					for c := 0; c < d; c++ {
						dst[c] = row[c] * yw[oy][0]
					}
				} else {
					for c := 0; c < d; c++ {
						dst[c] += row[c] * yw[oy][a]
					}
				}
			}
		}
	}
	return out
}
