package runtime

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/palid/palid/neon"
	"github.com/palid/palid/runtime/gguf"
)

// randomConfig is the shape of a random model written by writeRandomModel
// (tests, benchmarks and WriteRandomModel).
type randomConfig struct {
	image, patch, vWidth, vFF, vLayers, vHeads int
	d, ff, encLayers, decLayers, heads, dh     int
	vocab, pieces, buckets, maxDist            int
	silu, tied                                 bool
	quant                                      neon.DType // linear weights and embeddings

	wrong string // a tensor written with one row too many (for error tests)
	drop  string // a metadata key left out (for error tests)
}

// tinyConfig is small enough for exhaustive float64 checks.
func tinyConfig() randomConfig {
	return randomConfig{
		image: 32, patch: 8, vWidth: 64, vFF: 96, vLayers: 2, vHeads: 4,
		d: 64, ff: 96, encLayers: 2, decLayers: 2, heads: 4, dh: 16,
		vocab: 96, pieces: 80, buckets: 32, maxDist: 128,
		quant: neon.F32,
	}
}

// baseConfig is ViT-B/16 at 224 px and T5-base.
func baseConfig() randomConfig {
	return randomConfig{
		image: 224, patch: 16, vWidth: 768, vFF: 3072, vLayers: 12, vHeads: 12,
		d: 768, ff: 2048, encLayers: 12, decLayers: 12, heads: 12, dh: 64,
		vocab: 32128, pieces: 1000, buckets: 32, maxDist: 128,
		quant: neon.Q8_0,
	}
}

func (c randomConfig) key() string {
	return fmt.Sprintf("%+v", c)
}

// protoField appends a protobuf field (varint or length-delimited).
func protoVarint(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3)
	return binary.AppendUvarint(b, v)
}

func protoBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func protoFloat(b []byte, field int, v float32) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|5)
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
}

// testSPM builds a serialized SentencePiece unigram ModelProto with T5's
// special ids (pad 0, eos 1, unk 2) and n pieces in all.
func testSPM(n int) []byte {
	var m []byte
	piece := func(text string, score float32, typ int) {
		var p []byte
		p = protoBytes(p, 1, []byte(text))
		p = protoFloat(p, 2, score)
		p = protoVarint(p, 3, uint64(typ))
		m = protoBytes(m, 1, p)
	}
	piece("<pad>", 0, 3)
	piece("</s>", 0, 3)
	piece("<unk>", 0, 2)
	words := []string{"▁", "▁answer", "▁en", "▁caption", "▁what", "▁color", "▁is", "▁the", "▁circle", "?",
		"▁red", "▁blue", "▁green", "▁a", "▁square"}
	letters := "abcdefghijklmnopqrstuvwxyz"
	k := 0
	for i := 3; i < n; i++ {
		switch {
		case k < len(words):
			piece(words[k], -float32(k)/10-1, 1)
		case k < len(words)+len(letters):
			piece(letters[k-len(words):k-len(words)+1], -5, 1)
		default:
			piece(fmt.Sprintf("▁w%d", k), -10, 1)
		}
		k++
	}
	var ts []byte
	ts = protoVarint(ts, 3, 1) // model_type UNIGRAM
	ts = protoVarint(ts, 40, 2)
	ts = protoVarint(ts, 41, math.MaxUint64) // bos_id -1
	ts = protoVarint(ts, 42, 1)
	ts = protoVarint(ts, 43, 0)
	m = protoBytes(m, 2, ts)
	var ns []byte
	ns = protoBytes(ns, 1, []byte("identity"))
	m = protoBytes(m, 3, ns)
	return m
}

// dropWriter leaves out one metadata key.
type dropWriter struct {
	*gguf.Writer
	drop string
}

func (w *dropWriter) Add(key string, v any) {
	if key != w.drop {
		w.Writer.Add(key, v)
	}
}

// randWriter adds random tensors.
type randWriter struct {
	w     *gguf.Writer
	rng   *rand.Rand
	quant neon.DType
	wrong string
	err   error
}

func (r *randWriter) values(n int, scale, offset float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = offset + scale*(2*r.rng.Float32()-1)
	}
	return v
}

func (r *randWriter) add(name string, t neon.DType, dims []uint64, v []float32) {
	if name == r.wrong {
		dims = append([]uint64(nil), dims...)
		dims[len(dims)-1]++
		v = append(v, v[:len(v)/int(dims[len(dims)-1]-1)]...)
	}
	data := make([]byte, neon.RowBytes(t, len(v)))
	neon.Quantize(t, data, v)
	if err := r.w.AddTensor(name, t, dims, data); err != nil && r.err == nil {
		r.err = err
	}
}

// linear adds a weight [rows, cols] with uniform values of variance ~1/cols.
func (r *randWriter) linear(name string, cols, rows int) {
	t := r.quant
	if cols%t.BlockSize() != 0 {
		t = neon.F32
	}
	r.add(name, t, []uint64{uint64(cols), uint64(rows)}, r.values(cols*rows, float32(math.Sqrt(3/float64(cols))), 0))
}

// vec adds a small F32 tensor.
func (r *randWriter) vec(name string, scale, offset float32, dims ...int) {
	n := 1
	ud := make([]uint64, len(dims))
	for i, d := range dims {
		n *= d
		ud[i] = uint64(d)
	}
	r.add(name, neon.F32, ud, r.values(n, scale, offset))
}

// writeRandomModel writes model.gguf and mmproj.gguf with random weights.
func writeRandomModel(dir string, c randomConfig, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	// Text model.
	w := &dropWriter{gguf.NewWriter(), c.drop}
	w.Add("general.architecture", "t5")
	w.Add("t5.context_length", uint32(512))
	w.Add("t5.embedding_length", uint32(c.d))
	w.Add("t5.feed_forward_length", uint32(c.ff))
	w.Add("t5.block_count", uint32(c.encLayers))
	w.Add("t5.decoder_block_count", uint32(c.decLayers))
	w.Add("t5.attention.head_count", uint32(c.heads))
	w.Add("t5.attention.key_length", uint32(c.dh))
	w.Add("t5.attention.value_length", uint32(c.dh))
	w.Add("t5.attention.layer_norm_rms_epsilon", float32(1e-6))
	w.Add("t5.attention.relative_buckets_count", uint32(c.buckets))
	w.Add("t5.attention.relative_max_distance", uint32(c.maxDist))
	proj := "gated-gelu"
	if c.silu {
		proj = "gated-silu"
	}
	w.Add("t5.feed_forward_proj", proj)
	w.Add("t5.tie_word_embeddings", c.tied)
	w.Add("t5.decoder_start_token_id", uint32(0))
	w.Add("tokenizer.ggml.model", "t5")
	w.Add("tokenizer.ggml.eos_token_id", uint32(1))
	w.Add("tokenizer.ggml.padding_token_id", uint32(0))
	w.Add("tokenizer.ggml.unknown_token_id", uint32(2))
	w.Add("palid.tokenizer.spm_model", testSPM(c.pieces))
	r := &randWriter{w: w.Writer, rng: rng, quant: c.quant, wrong: c.wrong}
	r.linear("token_embd.weight", c.d, c.vocab)
	if !c.tied {
		r.linear("output.weight", c.d, c.vocab)
	}
	inner := c.heads * c.dh
	for _, side := range []string{"enc", "dec"} {
		layers := c.encLayers
		if side == "dec" {
			layers = c.decLayers
		}
		r.vec(side+".blk.0.attn_rel_b.weight", 0.5, 0, c.heads, c.buckets)
		for i := 0; i < layers; i++ {
			p := fmt.Sprintf("%s.blk.%d.", side, i)
			r.vec(p+"attn_norm.weight", 0.2, 1, c.d)
			r.linear(p+"attn_q.weight", c.d, inner)
			r.linear(p+"attn_k.weight", c.d, inner)
			r.linear(p+"attn_v.weight", c.d, inner)
			r.linear(p+"attn_o.weight", inner, c.d)
			if side == "dec" {
				r.vec(p+"cross_attn_norm.weight", 0.2, 1, c.d)
				r.linear(p+"cross_attn_q.weight", c.d, inner)
				r.linear(p+"cross_attn_k.weight", c.d, inner)
				r.linear(p+"cross_attn_v.weight", c.d, inner)
				r.linear(p+"cross_attn_o.weight", inner, c.d)
			}
			r.vec(p+"ffn_norm.weight", 0.2, 1, c.d)
			r.linear(p+"ffn_gate.weight", c.d, c.ff)
			r.linear(p+"ffn_up.weight", c.d, c.ff)
			r.linear(p+"ffn_down.weight", c.ff, c.d)
		}
		r.vec(side+".output_norm.weight", 0.2, 1, c.d)
	}
	if r.err != nil {
		return r.err
	}
	if err := w.WriteFile(filepath.Join(dir, "model.gguf")); err != nil {
		return err
	}

	// Vision tower.
	w = &dropWriter{gguf.NewWriter(), c.drop}
	r.w = w.Writer
	w.Add("general.architecture", "clip")
	w.Add("clip.has_vision_encoder", true)
	w.Add("clip.projector_type", "pali3")
	w.Add("clip.vision.image_size", uint32(c.image))
	w.Add("clip.vision.patch_size", uint32(c.patch))
	w.Add("clip.vision.embedding_length", uint32(c.vWidth))
	w.Add("clip.vision.feed_forward_length", uint32(c.vFF))
	w.Add("clip.vision.block_count", uint32(c.vLayers))
	w.Add("clip.vision.attention.head_count", uint32(c.vHeads))
	w.Add("clip.vision.attention.layer_norm_epsilon", float32(1e-6))
	w.Add("clip.vision.projection_dim", uint32(c.d))
	w.Add("clip.vision.image_mean", []float32{0.5, 0.5, 0.5})
	w.Add("clip.vision.image_std", []float32{0.5, 0.5, 0.5})
	p := c.patch
	grid := c.image / p
	r.vec("v.patch_embd.weight", float32(math.Sqrt(3/float64(3*p*p))), 0, p, p, 3, c.vWidth)
	r.vec("v.patch_embd.bias", 0.1, 0, c.vWidth)
	r.vec("v.position_embd.weight", 0.5, 0, c.vWidth, grid*grid)
	for i := 0; i < c.vLayers; i++ {
		p := fmt.Sprintf("v.blk.%d.", i)
		r.vec(p+"ln1.weight", 0.2, 1, c.vWidth)
		r.vec(p+"ln1.bias", 0.1, 0, c.vWidth)
		for _, n := range []string{"attn_q", "attn_k", "attn_v", "attn_out"} {
			r.linear(p+n+".weight", c.vWidth, c.vWidth)
			r.vec(p+n+".bias", 0.1, 0, c.vWidth)
		}
		r.vec(p+"ln2.weight", 0.2, 1, c.vWidth)
		r.vec(p+"ln2.bias", 0.1, 0, c.vWidth)
		r.linear(p+"ffn_up.weight", c.vWidth, c.vFF)
		r.vec(p+"ffn_up.bias", 0.1, 0, c.vFF)
		r.linear(p+"ffn_down.weight", c.vFF, c.vWidth)
		r.vec(p+"ffn_down.bias", 0.1, 0, c.vWidth)
	}
	r.vec("v.post_ln.weight", 0.2, 1, c.vWidth)
	r.vec("v.post_ln.bias", 0.1, 0, c.vWidth)
	r.linear("mm.model.fc.weight", c.vWidth, c.d)
	r.vec("mm.model.fc.bias", 0.1, 0, c.d)
	if r.err != nil {
		return r.err
	}
	return w.WriteFile(filepath.Join(dir, "mmproj.gguf"))
}

// randomImage is a frame with values in [-1, 1].
func randomImage(size int, seed uint64) Image {
	rng := rand.New(rand.NewPCG(seed, 2))
	pix := make([]float32, 3*size*size)
	for i := range pix {
		pix[i] = 2*rng.Float32() - 1
	}
	return Image{Width: size, Height: size, Pix: pix}
}

// WriteRandomModel writes a model directory (model.gguf and mmproj.gguf)
// with random weights and a small made-up tokenizer, for tests and
// benchmarks. shape is "tiny" (two layers of width 64 on each side, 32 px
// images, patch 8) or "base" (SigLIP ViT-B/16 at 224 px and T5-base,
// vocabulary 32128); quant is the type of the linear weights and the
// embeddings (F32, F16, Q8_0 or Q4_0).
func WriteRandomModel(dir, shape string, quant neon.DType, seed uint64) error {
	var c randomConfig
	switch shape {
	case "tiny":
		c = tinyConfig()
	case "base":
		c = baseConfig()
	default:
		return fmt.Errorf("random model shape %q: want \"tiny\" or \"base\"", shape)
	}
	switch quant {
	case neon.F32, neon.F16, neon.Q8_0, neon.Q4_0:
	default:
		return fmt.Errorf("random model: unsupported weight type %v", quant)
	}
	c.quant = quant
	return writeRandomModel(dir, c, seed)
}
