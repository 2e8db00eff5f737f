package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/palid/palid/neon"
	"github.com/palid/palid/runtime/gguf"
	"github.com/palid/palid/runtime/safetensors"
	"github.com/palid/palid/runtime/spm"
)

// spmModels trains small SentencePiece models once with Debian's
// spm_train, with T5's special ids (pad 0, eos 1, unk 2, no bos).
var spmModels = struct {
	sync.Once
	paths map[string]string
	err   error
}{}

func spmModel(t *testing.T, kind string) string {
	t.Helper()
	spmModels.Do(func() {
		dir, err := os.MkdirTemp("", "convert-spm")
		if err != nil {
			spmModels.err = err
			return
		}
		corpus := filepath.Join(dir, "corpus.txt")
		var b strings.Builder
		words := []string{"red", "green", "blue", "circle", "square", "car", "door", "package", "left", "right", "what", "color", "is", "the", "answer", "caption", "detect", "where", "café", "über"}
		rng := rand.New(rand.NewPCG(7, 7))
		for i := 0; i < 400; i++ {
			for j := 0; j < 8; j++ {
				b.WriteString(words[rng.IntN(len(words))] + " ")
			}
			b.WriteString("\n")
		}
		os.WriteFile(corpus, []byte(b.String()), 0o644)
		spmModels.paths = map[string]string{}
		for _, k := range []string{"unigram", "bpe"} {
			prefix := filepath.Join(dir, k)
			cmd := exec.Command("spm_train", "--input="+corpus, "--model_prefix="+prefix, "--model_type="+k,
				"--vocab_size=40", "--pad_id=0", "--eos_id=1", "--unk_id=2", "--bos_id=-1", "--minloglevel=2")
			if out, err := cmd.CombinedOutput(); err != nil {
				spmModels.err = fmt.Errorf("spm_train (Debian package sentencepiece, installed by make test): %v\n%s", err, out)
				return
			}
			spmModels.paths[k] = prefix + ".model"
		}
	})
	if spmModels.err != nil {
		t.Fatal(spmModels.err)
	}
	return spmModels.paths[kind]
}

// ckpt describes a random source checkpoint.
type ckpt struct {
	cfg     map[string]any
	vision  map[string]any
	text    map[string]any
	tensors map[string]safetensors.Tensor
	order   []string
	spmKind string
}

func f32Tensor(name string, rng *rand.Rand, shape ...int) safetensors.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	b := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(rng.NormFloat64()*0.5)))
	}
	return safetensors.Tensor{Name: name, DType: "F32", Shape: shape, Data: b}
}

// toDType re-encodes an F32 tensor as F16 or BF16 (truncating BF16).
func toDType(t safetensors.Tensor, dtype string) safetensors.Tensor {
	vals, _ := t.Float32s()
	b := make([]byte, 2*len(vals))
	for i, v := range vals {
		var h uint16
		if dtype == "F16" {
			h = neon.F32ToF16(v)
		} else {
			h = uint16(math.Float32bits(v) >> 16)
		}
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	t.DType, t.Data = dtype, b
	return t
}

// newCkpt builds a small PaLI-3 checkpoint: SigLIP 32px/patch 8, width
// 64, two layers; T5 d_model 64, two encoder and three decoder layers.
func newCkpt(tied bool) *ckpt {
	c := &ckpt{tensors: map[string]safetensors.Tensor{}, spmKind: "unigram"}
	c.vision = map[string]any{
		"model_type": "siglip_vision_model", "hidden_size": 64, "intermediate_size": 96,
		"num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 32, "patch_size": 8,
		"layer_norm_eps": 1e-6,
	}
	c.text = map[string]any{
		"model_type": "t5", "d_model": 64, "d_kv": 16, "d_ff": 96, "num_layers": 2,
		"num_decoder_layers": 3, "num_heads": 4, "relative_attention_num_buckets": 32,
		"relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6,
		"feed_forward_proj": "gated-gelu", "tie_word_embeddings": tied, "vocab_size": 80,
		"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0,
	}
	c.cfg = map[string]any{"model_type": "pali3", "vision_config": c.vision, "text_config": c.text}
	rng := rand.New(rand.NewPCG(11, 13))
	add := func(name string, shape ...int) {
		c.tensors[name] = f32Tensor(name, rng, shape...)
		c.order = append(c.order, name)
	}
	const v = "vision_tower.vision_model."
	add(v+"embeddings.patch_embedding.weight", 64, 3, 8, 8)
	add(v+"embeddings.patch_embedding.bias", 64)
	add(v+"embeddings.position_embedding.weight", 16, 64)
	for i := 0; i < 2; i++ {
		p := fmt.Sprintf("%sencoder.layers.%d.", v, i)
		for _, m := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"} {
			add(p+m+".weight", 64, 64)
			add(p+m+".bias", 64)
		}
		add(p+"layer_norm1.weight", 64)
		add(p+"layer_norm1.bias", 64)
		add(p+"layer_norm2.weight", 64)
		add(p+"layer_norm2.bias", 64)
		add(p+"mlp.fc1.weight", 96, 64)
		add(p+"mlp.fc1.bias", 96)
		add(p+"mlp.fc2.weight", 64, 96)
		add(p+"mlp.fc2.bias", 64)
	}
	add(v+"post_layernorm.weight", 64)
	add(v+"post_layernorm.bias", 64)
	add("multi_modal_projector.linear.weight", 64, 64)
	add("multi_modal_projector.linear.bias", 64)
	const l = "language_model."
	add(l+"shared.weight", 80, 64)
	if !tied {
		add(l+"lm_head.weight", 80, 64)
	}
	attn := func(p string) {
		for _, m := range []string{"q", "k", "v"} {
			add(p+m+".weight", 64, 64)
		}
		add(p+"o.weight", 64, 64)
	}
	ffn := func(p string) {
		add(p+"DenseReluDense.wi_0.weight", 96, 64)
		add(p+"DenseReluDense.wi_1.weight", 96, 64)
		add(p+"DenseReluDense.wo.weight", 64, 96)
		add(p+"layer_norm.weight", 64)
	}
	for i := 0; i < 2; i++ {
		p := fmt.Sprintf("%sencoder.block.%d.layer.", l, i)
		add(p+"0.layer_norm.weight", 64)
		attn(p + "0.SelfAttention.")
		if i == 0 {
			add(p+"0.SelfAttention.relative_attention_bias.weight", 32, 4)
		}
		ffn(p + "1.")
	}
	add(l+"encoder.final_layer_norm.weight", 64)
	for i := 0; i < 3; i++ {
		p := fmt.Sprintf("%sdecoder.block.%d.layer.", l, i)
		add(p+"0.layer_norm.weight", 64)
		attn(p + "0.SelfAttention.")
		if i == 0 {
			add(p+"0.SelfAttention.relative_attention_bias.weight", 32, 4)
		}
		add(p+"1.layer_norm.weight", 64)
		attn(p + "1.EncDecAttention.")
		ffn(p + "2.")
	}
	add(l+"decoder.final_layer_norm.weight", 64)
	return c
}

func (c *ckpt) drop(name string) {
	delete(c.tensors, name)
	for i, n := range c.order {
		if n == name {
			c.order = append(c.order[:i], c.order[i+1:]...)
			return
		}
	}
}

func (c *ckpt) list() []safetensors.Tensor {
	var ts []safetensors.Tensor
	for _, n := range c.order {
		ts = append(ts, c.tensors[n])
	}
	return ts
}

// write writes the checkpoint into a new directory, in shards files.
func (c *ckpt) write(t *testing.T, shards int) string {
	t.Helper()
	dir := t.TempDir()
	js, _ := json.MarshalIndent(c.cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(spmModel(t, c.spmKind))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "spiece.model"), data, 0o644)
	ts := c.list()
	if shards <= 1 {
		if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	wm := map[string]string{}
	per := (len(ts) + shards - 1) / shards
	for s := 0; s < shards; s++ {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		part := ts[min(s*per, len(ts)):min((s+1)*per, len(ts))]
		for _, x := range part {
			wm[x.Name] = name
		}
		if err := safetensors.WriteFile(filepath.Join(dir, name), part, nil); err != nil {
			t.Fatal(err)
		}
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": wm})
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644)
	return dir
}

func run(t *testing.T, src string, q neon.DType) (string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	return out, Convert(context.Background(), Options{Sources: []string{src}, OutDir: out, Quant: q})
}

// expected maps output tensor names to source names and kinds.
func expected(tied bool) map[string]step {
	m := map[string]step{}
	const v = "vision_tower.vision_model."
	m["v.patch_embd.weight"] = step{src: v + "embeddings.patch_embedding.weight", k: table}
	m["v.patch_embd.bias"] = step{src: v + "embeddings.patch_embedding.bias", k: small}
	m["v.position_embd.weight"] = step{src: v + "embeddings.position_embedding.weight", k: table}
	for i := 0; i < 2; i++ {
		for dst, src := range map[string]string{"ln1": "layer_norm1", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_out": "self_attn.out_proj", "ln2": "layer_norm2", "ffn_up": "mlp.fc1", "ffn_down": "mlp.fc2"} {
			k := linear
			if strings.HasPrefix(dst, "ln") {
				k = small
			}
			m[fmt.Sprintf("v.blk.%d.%s.weight", i, dst)] = step{src: fmt.Sprintf("%sencoder.layers.%d.%s.weight", v, i, src), k: k}
			m[fmt.Sprintf("v.blk.%d.%s.bias", i, dst)] = step{src: fmt.Sprintf("%sencoder.layers.%d.%s.bias", v, i, src), k: small}
		}
	}
	m["v.post_ln.weight"] = step{src: v + "post_layernorm.weight", k: small}
	m["v.post_ln.bias"] = step{src: v + "post_layernorm.bias", k: small}
	m["mm.model.fc.weight"] = step{src: "multi_modal_projector.linear.weight", k: linear}
	m["mm.model.fc.bias"] = step{src: "multi_modal_projector.linear.bias", k: small}
	const l = "language_model."
	m["token_embd.weight"] = step{src: l + "shared.weight", k: linear}
	if !tied {
		m["output.weight"] = step{src: l + "lm_head.weight", k: linear}
	}
	attn := map[string]string{"q": "q", "k": "k", "v": "v", "o": "o"}
	ffn := map[string]string{"ffn_gate": "wi_0", "ffn_up": "wi_1", "ffn_down": "wo"}
	for i := 0; i < 2; i++ {
		p := fmt.Sprintf("%sencoder.block.%d.layer.", l, i)
		d := fmt.Sprintf("enc.blk.%d.", i)
		m[d+"attn_norm.weight"] = step{src: p + "0.layer_norm.weight", k: small}
		for a, b := range attn {
			m[d+"attn_"+a+".weight"] = step{src: p + "0.SelfAttention." + b + ".weight", k: linear}
		}
		m[d+"ffn_norm.weight"] = step{src: p + "1.layer_norm.weight", k: small}
		for a, b := range ffn {
			m[d+a+".weight"] = step{src: p + "1.DenseReluDense." + b + ".weight", k: linear}
		}
	}
	m["enc.blk.0.attn_rel_b.weight"] = step{src: l + "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", k: small}
	m["enc.output_norm.weight"] = step{src: l + "encoder.final_layer_norm.weight", k: small}
	for i := 0; i < 3; i++ {
		p := fmt.Sprintf("%sdecoder.block.%d.layer.", l, i)
		d := fmt.Sprintf("dec.blk.%d.", i)
		m[d+"attn_norm.weight"] = step{src: p + "0.layer_norm.weight", k: small}
		m[d+"cross_attn_norm.weight"] = step{src: p + "1.layer_norm.weight", k: small}
		for a, b := range attn {
			m[d+"attn_"+a+".weight"] = step{src: p + "0.SelfAttention." + b + ".weight", k: linear}
			m[d+"cross_attn_"+a+".weight"] = step{src: p + "1.EncDecAttention." + b + ".weight", k: linear}
		}
		m[d+"ffn_norm.weight"] = step{src: p + "2.layer_norm.weight", k: small}
		for a, b := range ffn {
			m[d+a+".weight"] = step{src: p + "2.DenseReluDense." + b + ".weight", k: linear}
		}
	}
	m["dec.blk.0.attn_rel_b.weight"] = step{src: l + "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", k: small}
	m["dec.output_norm.weight"] = step{src: l + "decoder.final_layer_norm.weight", k: small}
	return m
}

func wantType(k kind, q neon.DType) neon.DType {
	switch {
	case k == linear:
		return q
	case k == table && q == neon.F16:
		return neon.F16
	}
	return neon.F32
}

// checkOutput opens both files and checks every tensor against its
// source: name set, dims (PyTorch shape reversed), type, and bytes equal
// to neon.Quantize of the source values.
func checkOutput(t *testing.T, out string, c *ckpt, q neon.DType) (*gguf.File, *gguf.File) {
	t.Helper()
	tied := c.text["tie_word_embeddings"].(bool)
	want := expected(tied)
	files := map[string]*gguf.File{}
	for _, name := range []string{MMProjFile, ModelFile} {
		f, err := gguf.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files[name] = f
	}
	seen := 0
	for fname, f := range files {
		for _, ti := range f.Tensors {
			s, ok := want[ti.Name]
			if !ok {
				t.Errorf("%s: unexpected tensor %s", fname, ti.Name)
				continue
			}
			if (fname == MMProjFile) != (strings.HasPrefix(ti.Name, "v.") || strings.HasPrefix(ti.Name, "mm.")) {
				t.Errorf("tensor %s is in %s", ti.Name, fname)
			}
			seen++
			src := c.tensors[s.src]
			dims := make([]uint64, len(src.Shape))
			for i, d := range src.Shape {
				dims[len(dims)-1-i] = uint64(d)
			}
			if !reflect.DeepEqual(ti.Dims, dims) {
				t.Errorf("%s: dims %v, want %v (from %v)", ti.Name, ti.Dims, dims, src.Shape)
			}
			if wt := wantType(s.k, q); ti.Type != wt {
				t.Errorf("%s: type %s, want %s", ti.Name, ti.Type, wt)
			}
			got, _ := f.Tensor(ti.Name)
			vals, err := src.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			ref := make([]byte, len(got.Data))
			neon.Quantize(ti.Type, ref, vals)
			if !bytes.Equal(got.Data, ref) {
				t.Errorf("%s: data differs from the quantized source", ti.Name)
			}
			// And the values survive within the type's precision.
			back, _ := got.Float32s()
			tol := map[neon.DType]float64{neon.F32: 0, neon.F16: 1e-3, neon.Q8_0: 0.02, neon.Q4_0: 0.35}[ti.Type]
			for i := range vals {
				if math.Abs(float64(back[i]-vals[i])) > tol*(1+math.Abs(float64(vals[i]))) {
					t.Errorf("%s[%d]: %g, source %g", ti.Name, i, back[i], vals[i])
					break
				}
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%d tensors written, want %d", seen, len(want))
	}
	return files[ModelFile], files[MMProjFile]
}

func TestConvertQuantTypes(t *testing.T) {
	c := newCkpt(false)
	// Mixed source dtypes: the converter widens F16 and BF16 exactly.
	for _, n := range []string{"language_model.shared.weight", "vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight"} {
		c.tensors[n] = toDType(c.tensors[n], "F16")
	}
	for _, n := range []string{"language_model.encoder.block.1.layer.0.SelfAttention.q.weight", "vision_tower.vision_model.post_layernorm.bias"} {
		c.tensors[n] = toDType(c.tensors[n], "BF16")
	}
	src := c.write(t, 1)
	for _, q := range []neon.DType{neon.F32, neon.F16, neon.Q8_0, neon.Q4_0} {
		t.Run(q.String(), func(t *testing.T) {
			out, err := run(t, src, q)
			if err != nil {
				t.Fatal(err)
			}
			model, mm := checkOutput(t, out, c, q)
			ft, _ := model.Uint("general.file_type")
			if want := map[neon.DType]uint64{neon.F32: 0, neon.F16: 1, neon.Q4_0: 2, neon.Q8_0: 7}[q]; ft != want {
				t.Errorf("general.file_type %d, want %d", ft, want)
			}
			ft2, _ := mm.Uint("general.file_type")
			if ft2 != ft {
				t.Errorf("mmproj general.file_type %d, model %d", ft2, ft)
			}
		})
	}
}

func TestConvertMetadata(t *testing.T) {
	c := newCkpt(false)
	src := c.write(t, 1)
	out, err := run(t, src, neon.Q8_0)
	if err != nil {
		t.Fatal(err)
	}
	model, mm := checkOutput(t, out, c, neon.Q8_0)
	wantMM := map[string]any{
		"general.architecture": "clip", "clip.has_vision_encoder": true, "clip.projector_type": "pali3",
		"clip.vision.image_size": uint32(32), "clip.vision.patch_size": uint32(8),
		"clip.vision.embedding_length": uint32(64), "clip.vision.feed_forward_length": uint32(96),
		"clip.vision.block_count": uint32(2), "clip.vision.attention.head_count": uint32(4),
		"clip.vision.attention.layer_norm_epsilon": float32(1e-6), "clip.vision.projection_dim": uint32(64),
		"clip.vision.image_mean": []float32{0.5, 0.5, 0.5}, "clip.vision.image_std": []float32{0.5, 0.5, 0.5},
	}
	for k, v := range wantMM {
		got, ok := mm.Get(k)
		if !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("mmproj %s = %#v, want %#v", k, got, v)
		}
	}
	wantModel := map[string]any{
		"general.architecture": "t5", "t5.context_length": uint32(512), "t5.embedding_length": uint32(64),
		"t5.feed_forward_length": uint32(96), "t5.block_count": uint32(2), "t5.decoder_block_count": uint32(3),
		"t5.attention.head_count": uint32(4), "t5.attention.key_length": uint32(16),
		"t5.attention.value_length": uint32(16), "t5.attention.layer_norm_rms_epsilon": float32(1e-6),
		"t5.attention.relative_buckets_count": uint32(32), "t5.attention.relative_max_distance": uint32(128),
		"t5.feed_forward_proj": "gated-gelu", "t5.tie_word_embeddings": false,
		"t5.decoder_start_token_id": uint32(0), "tokenizer.ggml.model": "t5",
		"tokenizer.ggml.eos_token_id": uint32(1), "tokenizer.ggml.padding_token_id": uint32(0),
		"tokenizer.ggml.unknown_token_id": uint32(2),
	}
	for k, v := range wantModel {
		got, ok := model.Get(k)
		if !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("model %s = %#v, want %#v", k, got, v)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(src, "spiece.model"))
	if b, err := model.Bytes("palid.tokenizer.spm_model"); err != nil || !bytes.Equal(b, raw) {
		t.Errorf("palid.tokenizer.spm_model differs from spiece.model (%v)", err)
	}
	sp, err := spm.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := model.Strings("tokenizer.ggml.tokens")
	scores, _ := model.Floats("tokenizer.ggml.scores")
	types, _ := model.Ints("tokenizer.ggml.token_type")
	if len(tokens) != 80 || len(scores) != 80 || len(types) != 80 {
		t.Fatalf("tokenizer arrays of %d, %d, %d, want vocab_size 80", len(tokens), len(scores), len(types))
	}
	for i := 0; i < 80; i++ {
		if i < sp.Size() {
			p := sp.Piece(i)
			if tokens[i] != p.Text || scores[i] != p.Score || types[i] != int(p.Type) {
				t.Fatalf("token %d: %q %g %d, want %q %g %d", i, tokens[i], scores[i], types[i], p.Text, p.Score, p.Type)
			}
		} else if tokens[i] != fmt.Sprintf("[PAD%d]", i) || types[i] != int(spm.Unused) {
			t.Fatalf("padding token %d: %q type %d", i, tokens[i], types[i])
		}
	}
	if cm, err := model.Bytes("tokenizer.ggml.precompiled_charsmap"); err != nil || !bytes.Equal(cm, sp.PrecompiledCharsmap()) || len(cm) == 0 {
		t.Errorf("precompiled_charsmap: %d bytes, %v", len(cm), err)
	}
	// The tokenizer stored in the file is the one the checkpoint had.
	back, err := spm.Parse(mustBytes(t, model, "palid.tokenizer.spm_model"))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := back.Encode("what color is the café"), sp.Encode("what color is the café"); !reflect.DeepEqual(a, b) {
		t.Errorf("round-tripped tokenizer encodes %v, want %v", a, b)
	}
}

func mustBytes(t *testing.T, f *gguf.File, key string) []byte {
	b, err := f.Bytes(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConvertTiedShardedBPE(t *testing.T) {
	c := newCkpt(true)
	c.spmKind = "bpe"
	c.text["feed_forward_proj"] = "gated-silu"
	delete(c.text, "num_decoder_layers") // defaults to num_layers...
	c.text["num_layers"] = 2
	c.text["num_decoder_layers"] = 3
	// A PyTorch state dict carries copies of the shared embedding.
	for _, n := range []string{"language_model.encoder.embed_tokens.weight", "language_model.decoder.embed_tokens.weight"} {
		c.tensors[n] = c.tensors["language_model.shared.weight"]
		c.tensors[n] = safetensors.Tensor{Name: n, DType: "F32", Shape: []int{80, 64}, Data: c.tensors[n].Data}
		c.order = append(c.order, n)
	}
	src := c.write(t, 3)
	var log bytes.Buffer
	out := filepath.Join(t.TempDir(), "o")
	if err := Convert(context.Background(), Options{Sources: []string{src}, OutDir: out, Quant: neon.Q4_0, Progress: &log}); err != nil {
		t.Fatal(err)
	}
	model, _ := checkOutput(t, out, c, neon.Q4_0)
	if v, _ := model.Bool("t5.tie_word_embeddings"); !v {
		t.Error("t5.tie_word_embeddings is false for a tied model")
	}
	if s, _ := model.String("t5.feed_forward_proj"); s != "gated-silu" {
		t.Errorf("t5.feed_forward_proj %q", s)
	}
	if s, _ := model.String("tokenizer.ggml.model"); s != "llama" {
		t.Errorf("tokenizer.ggml.model %q for BPE, want llama", s)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	n := len(expected(true))
	if len(lines) != n+1 || !strings.HasPrefix(lines[0], fmt.Sprintf("[1/%d] mmproj.gguf v.patch_embd.weight f32 [8 8 3 64]", n)) ||
		!strings.HasPrefix(lines[n], "wrote ") {
		t.Errorf("progress log (%d lines):\n%s", len(lines), log.String())
	}
}

// TestConvertExtraSource passes a shard as a second source: tensors from
// every source are merged.
func TestConvertExtraSource(t *testing.T) {
	c := newCkpt(false)
	dir := c.write(t, 1)
	name := "language_model.decoder.final_layer_norm.weight"
	extra := filepath.Join(t.TempDir(), "extra.safetensors")
	if err := safetensors.WriteFile(extra, []safetensors.Tensor{c.tensors[name]}, nil); err != nil {
		t.Fatal(err)
	}
	c2 := newCkpt(false)
	c2.drop(name)
	dir2 := c2.write(t, 1)
	out := filepath.Join(t.TempDir(), "o")
	if err := Convert(context.Background(), Options{Sources: []string{dir2, extra}, OutDir: out, Quant: neon.F32}); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, out, c, neon.F32)
	err := Convert(context.Background(), Options{Sources: []string{dir, extra}, OutDir: out, Quant: neon.F32})
	if err == nil || !strings.Contains(err.Error(), `tensor "`+name+`" is in both`) {
		t.Errorf("duplicate tensor across sources: %v", err)
	}
}

func TestConvertErrors(t *testing.T) {
	spmModel(t, "unigram")
	cases := []struct {
		name  string
		edit  func(c *ckpt)
		files func(t *testing.T, dir string)
		want  string
	}{
		{"missing tensor", func(c *ckpt) { c.drop("language_model.encoder.block.1.layer.0.SelfAttention.q.weight") }, nil,
			`checkpoint lacks tensor "language_model.encoder.block.1.layer.0.SelfAttention.q.weight"`},
		{"missing lm_head", func(c *ckpt) { c.drop("language_model.lm_head.weight") }, nil,
			`checkpoint lacks tensor "language_model.lm_head.weight"`},
		{"shape", func(c *ckpt) { c.text["d_ff"] = 128 }, nil,
			`tensor "language_model.encoder.block.0.layer.1.DenseReluDense.wi_0.weight" has shape [96 64], config.json implies [128 64]`},
		{"vision shape", func(c *ckpt) { c.vision["image_size"] = 64 }, nil,
			`tensor "vision_tower.vision_model.embeddings.position_embedding.weight" has shape [16 64], config.json implies [64 64]`},
		{"vocab", func(c *ckpt) { c.text["vocab_size"] = 81 }, nil, `"language_model.shared.weight" has shape [80 64], config.json implies [81 64]`},
		{"dtype", func(c *ckpt) {
			n := "language_model.encoder.final_layer_norm.weight"
			c.tensors[n] = safetensors.Tensor{Name: n, DType: "I64", Shape: []int{64}, Data: make([]byte, 512)}
		}, nil, `tensor "language_model.encoder.final_layer_norm.weight" has dtype I64, want F32, F16 or BF16`},
		{"extra tensor", func(c *ckpt) {
			n := "language_model.encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"
			c.tensors[n] = f32Tensor(n, rand.New(rand.NewPCG(1, 1)), 32, 4)
			c.order = append(c.order, n)
		}, nil, `first "language_model.encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight": unknown checkpoint layout`},
		{"model_type", func(c *ckpt) { c.cfg["model_type"] = "paligemma" }, nil, `unsupported model_type "paligemma" (want "pali3")`},
		{"no model_type", func(c *ckpt) { delete(c.cfg, "model_type") }, nil, "no model_type"},
		{"text model_type", func(c *ckpt) { c.text["model_type"] = "gemma" }, nil, `text_config.model_type is "gemma", want "t5"`},
		{"vision model_type", func(c *ckpt) { c.vision["model_type"] = "clip" }, nil, `vision_config.model_type is "clip"`},
		{"no vision", func(c *ckpt) { delete(c.cfg, "vision_config") }, nil, "vision_config is missing"},
		{"text not object", func(c *ckpt) { c.cfg["text_config"] = 3 }, nil, "text_config is a number, want an object"},
		{"missing d_model", func(c *ckpt) { delete(c.text, "d_model") }, nil, "text_config.d_model is missing"},
		{"zero heads", func(c *ckpt) { c.vision["num_attention_heads"] = 0 }, nil, "vision_config.num_attention_heads is 0, want a positive integer"},
		{"float layers", func(c *ckpt) { c.text["num_layers"] = 2.5 }, nil, "text_config.num_layers is 2.5, want a positive integer"},
		{"string size", func(c *ckpt) { c.vision["hidden_size"] = "64" }, nil, "vision_config.hidden_size is a string, want an integer"},
		{"heads", func(c *ckpt) { c.vision["num_attention_heads"] = 5 }, nil, "hidden_size 64 is not a multiple of num_attention_heads 5"},
		{"patch", func(c *ckpt) { c.vision["patch_size"] = 7 }, nil, "image_size 32 is not a multiple of patch_size 7"},
		{"channels", func(c *ckpt) { c.vision["num_channels"] = 1 }, nil, "num_channels is 1, want 3"},
		{"eps", func(c *ckpt) { c.text["layer_norm_epsilon"] = 2 }, nil, "text_config.layer_norm_epsilon is 2, want a number between 0 and 1"},
		{"ffproj", func(c *ckpt) { c.text["feed_forward_proj"] = "relu" }, nil, `feed_forward_proj is "relu", want "gated-gelu" or "gated-silu"`},
		{"no ffproj", func(c *ckpt) { delete(c.text, "feed_forward_proj") }, nil, "feed_forward_proj is missing"},
		{"tie", func(c *ckpt) { c.text["tie_word_embeddings"] = "no" }, nil, "tie_word_embeddings is a string, want true or false"},
		{"start", func(c *ckpt) { c.text["decoder_start_token_id"] = 80 }, nil, "decoder_start_token_id 80 is outside the vocabulary of 80"},
		{"eos", func(c *ckpt) { c.text["eos_token_id"] = 3 }, nil, "config.json text_config.eos_token_id is 3 but spiece.model's EOS is 1"},
		{"small vocab", func(c *ckpt) {
			c.text["vocab_size"] = 30
			c.tensors["language_model.shared.weight"] = f32Tensor("language_model.shared.weight", rand.New(rand.NewPCG(1, 2)), 30, 64)
			c.tensors["language_model.lm_head.weight"] = f32Tensor("language_model.lm_head.weight", rand.New(rand.NewPCG(1, 2)), 30, 64)
		}, nil, "spiece.model has 40 pieces, more than text_config.vocab_size 30"},
		{"bad json", nil, func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o644) }, "config.json: not a JSON object"},
		{"no config", nil, func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "config.json")) }, "no config.json in"},
		{"no spiece", nil, func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "spiece.model")) }, "no spiece.model in"},
		{"bad spiece", nil, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "spiece.model"), []byte("garbage!"), 0o644)
		}, "spiece.model: spm:"},
		{"no weights", nil, func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "model.safetensors")) }, "no .safetensors files in"},
		{"bad weights", nil, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte{1, 2, 3}, 0o644)
		}, "model.safetensors: safetensors: file of 3 bytes"},
		{"bad index", nil, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map": {"a": "../x.safetensors"}}`), 0o644)
		}, `bad shard name "../x.safetensors"`},
		{"missing shard", nil, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map": {"a": "model-00001-of-00002.safetensors"}}`), 0o644)
		}, "lists shard model-00001-of-00002.safetensors, which is missing"},
		{"empty index", nil, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{}`), 0o644)
		}, "empty weight_map"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCkpt(false)
			if tc.edit != nil {
				tc.edit(c)
			}
			dir := c.write(t, 1)
			if tc.files != nil {
				tc.files(t, dir)
			}
			out := filepath.Join(t.TempDir(), "out")
			err := Convert(context.Background(), Options{Sources: []string{dir}, OutDir: out, Quant: neon.Q8_0})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("failed conversion left %d files in the output directory", len(ents))
			}
		})
	}
}

func TestConvertOptionErrors(t *testing.T) {
	c := newCkpt(false)
	dir := c.write(t, 1)
	out := filepath.Join(t.TempDir(), "out")
	file := filepath.Join(dir, "config.json")
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Sources: []string{dir}, OutDir: out, Quant: neon.DType(13)}, "unsupported quantization type dtype(13)"},
		{Options{Sources: []string{dir}, Quant: neon.F32}, "no output directory"},
		{Options{OutDir: out, Quant: neon.F32}, "no source checkpoint"},
		{Options{Sources: []string{filepath.Join(dir, "nope")}, OutDir: out}, "no such file"},
		{Options{Sources: []string{file}, OutDir: out}, "not a checkpoint directory or .safetensors file"},
		{Options{Sources: []string{dir}, OutDir: file}, "not a directory"},
	}
	for _, tc := range cases {
		err := Convert(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// TestConvertCancelKeepsOld cancels a conversion: the output directory
// keeps its previous files untouched and holds no temporary files.
func TestConvertCancelKeepsOld(t *testing.T) {
	c := newCkpt(false)
	dir := c.write(t, 1)
	out := filepath.Join(t.TempDir(), "out")
	if err := Convert(context.Background(), Options{Sources: []string{dir}, OutDir: out, Quant: neon.F32}); err != nil {
		t.Fatal(err)
	}
	before := listDir(t, out)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Convert(ctx, Options{Sources: []string{dir}, OutDir: out, Quant: neon.Q8_0})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("cancelled conversion: %v", err)
	}
	if after := listDir(t, out); !reflect.DeepEqual(before, after) {
		t.Errorf("output changed by a failed conversion:\n%v\n%v", before, after)
	}
}

func listDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out = append(out, fmt.Sprintf("%s:%d:%x", e.Name(), len(data), data[:min(len(data), 64)]))
	}
	sort.Strings(out)
	return out
}

// TestConvertChunks converts a tensor larger than one conversion chunk.
func TestConvertChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	src := f32Tensor("w", rng, 3*chunkElems/64+5, 64)
	it := &item{src: "w", dst: "w", typ: neon.Q8_0, dims: []uint64{64, uint64(src.Shape[0])}, t: src}
	dst := make([]byte, neon.RowBytes(neon.Q8_0, src.Elements()))
	if err := convertTensor(dst, it); err != nil {
		t.Fatal(err)
	}
	vals, _ := src.Float32s()
	ref := make([]byte, len(dst))
	neon.Quantize(neon.Q8_0, ref, vals)
	if !bytes.Equal(dst, ref) {
		t.Error("chunked conversion differs from whole-tensor quantization")
	}
}

func TestErrInput(t *testing.T) {
	err := Convert(context.Background(), Options{Sources: []string{t.TempDir()}, OutDir: t.TempDir(), Quant: neon.F32})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "no config.json") {
		t.Errorf("missing config: %v (ErrInput: %v)", err, errors.Is(err, ErrInput))
	}
	c := newCkpt(false)
	dir := c.write(t, 1)
	file := filepath.Join(dir, "config.json")
	err = Convert(context.Background(), Options{Sources: []string{dir}, OutDir: file, Quant: neon.F32})
	if err == nil || errors.Is(err, ErrInput) {
		t.Errorf("unwritable output: %v is marked as bad input", err)
	}
}

// TestConvertReferenceCheckpoint converts a checkpoint written by the
// PyTorch reference (tools/reference): its attention width, 6 heads x 8,
// is no multiple of the block size, so attn_o (rows of 48) stays F32
// while attn_q (rows of 64) is quantized.
func TestConvertReferenceCheckpoint(t *testing.T) {
	src := "../testdata/pali3_tiny_b"
	out, err := run(t, src, neon.Q8_0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(filepath.Join(out, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, want := range map[string]struct {
		src string
		typ neon.DType
	}{
		"enc.blk.0.attn_q.weight": {"language_model.encoder.block.0.layer.0.SelfAttention.q.weight", neon.Q8_0},
		"enc.blk.0.attn_o.weight": {"language_model.encoder.block.0.layer.0.SelfAttention.o.weight", neon.F32},
	} {
		got, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := st.Tensor(want.src)
		vals, _ := s.Float32s()
		ref := make([]byte, neon.RowBytes(want.typ, len(vals)))
		neon.Quantize(want.typ, ref, vals)
		if got.Type != want.typ || !bytes.Equal(got.Data, ref) {
			t.Errorf("%s: %s, want %s of the source", name, got.Type, want.typ)
		}
	}
}
