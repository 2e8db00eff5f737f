// Package convert turns public checkpoints into palid's model directory.
//
// The source is a Hugging Face checkpoint directory in the PaliGemma
// layout with a T5 language model (DESIGN.md §3): config.json with
// "model_type": "pali3", a SigLIP vision_config and a T5 text_config;
// model.safetensors (or shards listed by model.safetensors.index.json)
// holding vision_tower.vision_model.*, multi_modal_projector.linear.* and
// language_model.*; and spiece.model. The output is model.gguf (the T5
// text model and its tokenizer, llama.cpp's "t5" names) and mmproj.gguf
// (the SigLIP tower and projector, llama.cpp's "clip" names), as
// docs/contracts.md "Model files" specifies.
//
// Tensors are converted one at a time while the output is written, so the
// converter holds one tensor in memory, not the model.
package convert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/palid/palid/neon"
	"github.com/palid/palid/runtime/gguf"
	"github.com/palid/palid/runtime/safetensors"
	"github.com/palid/palid/runtime/spm"
)

// Options configures Convert.
type Options struct {
	// Sources are checkpoint directories (config.json, *.safetensors,
	// spiece.model) or extra .safetensors files.
	Sources []string
	// OutDir receives model.gguf and mmproj.gguf; it is created if needed.
	OutDir string
	// Quant is the type of the linear weights: F32, F16, Q8_0 or Q4_0.
	Quant neon.DType
	// Progress receives progress: a bar on a terminal, plain lines
	// otherwise; nil is quiet.
	Progress io.Writer
}

// ErrInput is matched (errors.Is) by every error that is the input's
// fault: a bad option, a missing or malformed file, a missing tensor, a
// shape that contradicts config.json. Other errors are I/O failures.
var ErrInput = errors.New("bad input")

// inputError marks err as the input's fault without changing its text.
type inputError struct{ err error }

func (e inputError) Error() string        { return e.err.Error() }
func (e inputError) Unwrap() error        { return e.err }
func (e inputError) Is(target error) bool { return target == ErrInput }

func badInput(err error) error {
	if err == nil {
		return nil
	}
	return inputError{err}
}

// Output file names inside OutDir.
const (
	ModelFile  = "model.gguf"
	MMProjFile = "mmproj.gguf"
)

// checkpoint is the opened source: config, tokenizer and tensors.
type checkpoint struct {
	name    string
	cfg     *config
	spmData []byte
	spm     *spm.Model
	tensors map[string]safetensors.Tensor
	files   []*safetensors.File
}

func (c *checkpoint) close() {
	for _, f := range c.files {
		f.Close()
	}
}

// Convert converts opts.Sources into opts.OutDir. Both output files are
// written to temporary files first and renamed into place only when both
// are complete.
func Convert(ctx context.Context, opts Options) error {
	switch opts.Quant {
	case neon.F32, neon.F16, neon.Q8_0, neon.Q4_0:
	default:
		return badInput(fmt.Errorf("unsupported quantization type %s (want f32, f16, q8_0 or q4_0)", opts.Quant))
	}
	if opts.OutDir == "" {
		return badInput(errors.New("no output directory"))
	}
	if len(opts.Sources) == 0 {
		return badInput(errors.New("no source checkpoint"))
	}
	ck, err := openCheckpoint(opts.Sources)
	if err != nil {
		return badInput(err)
	}
	defer ck.close()

	mm, model, err := plan(ck, opts.Quant)
	if err != nil {
		return badInput(err)
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return err
	}
	prog := newProgress(opts.Progress, append(append([]*item(nil), mm.items...), model.items...))
	defer prog.finish()

	var temps []string
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}()
	for _, out := range []*output{mm, model} {
		w := gguf.NewWriter()
		for _, kv := range out.kvs {
			w.Add(kv.Key, kv.Value)
		}
		for _, it := range out.items {
			it := it
			err := w.AddTensorFunc(it.dst, it.typ, it.dims, func(dst []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := convertTensor(dst, it); err != nil {
					return err
				}
				prog.done(out.file, it)
				return nil
			})
			if err != nil {
				return err
			}
		}
		tmp, err := writeTemp(w, filepath.Join(opts.OutDir, out.file))
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if err != nil {
			return err
		}
	}
	for i, out := range []*output{mm, model} {
		if err := os.Rename(temps[i], filepath.Join(opts.OutDir, out.file)); err != nil {
			return err
		}
	}
	temps = nil
	prog.summary(opts.OutDir, []string{MMProjFile, ModelFile})
	return nil
}

// writeTemp writes w to a temporary file next to path and returns its name.
func writeTemp(w *gguf.Writer, path string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return f.Name(), fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return f.Name(), err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return f.Name(), err
	}
	return f.Name(), f.Close()
}

// openCheckpoint finds and opens config.json, spiece.model and the
// safetensors files of the sources.
func openCheckpoint(sources []string) (*checkpoint, error) {
	ck := &checkpoint{tensors: map[string]safetensors.Tensor{}}
	if err := ck.open(sources); err != nil {
		ck.close()
		return nil, err
	}
	return ck, nil
}

func (ck *checkpoint) open(sources []string) (err error) {
	var cfgPath, spmPath string
	var stFiles []string
	for _, src := range sources {
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("source %s: %w", src, err)
		}
		if !st.IsDir() {
			if !strings.HasSuffix(src, ".safetensors") {
				return fmt.Errorf("source %s: not a checkpoint directory or .safetensors file", src)
			}
			stFiles = append(stFiles, src)
			continue
		}
		if ck.name == "" {
			ck.name = filepath.Base(filepath.Clean(src))
		}
		if p := filepath.Join(src, "config.json"); exists(p) && cfgPath == "" {
			cfgPath = p
		}
		if p := filepath.Join(src, "spiece.model"); exists(p) && spmPath == "" {
			spmPath = p
		}
		files, err := shardFiles(src)
		if err != nil {
			return err
		}
		stFiles = append(stFiles, files...)
	}
	if cfgPath == "" {
		return fmt.Errorf("no config.json in %s: unknown checkpoint layout (want a Hugging Face checkpoint directory)", strings.Join(sources, ", "))
	}
	if ck.cfg, err = readConfig(cfgPath); err != nil {
		return err
	}
	if spmPath == "" {
		return fmt.Errorf("no spiece.model in %s: the checkpoint lacks its SentencePiece tokenizer", strings.Join(sources, ", "))
	}
	if ck.spmData, err = os.ReadFile(spmPath); err != nil {
		return err
	}
	if ck.spm, err = spm.Parse(ck.spmData); err != nil {
		return fmt.Errorf("%s: %w", spmPath, err)
	}
	if len(stFiles) == 0 {
		return fmt.Errorf("no .safetensors files in %s", strings.Join(sources, ", "))
	}
	from := map[string]string{}
	for _, p := range stFiles {
		f, err := safetensors.Open(p)
		if err != nil {
			return err
		}
		ck.files = append(ck.files, f)
		for _, name := range f.Names() {
			if prev, dup := from[name]; dup {
				return fmt.Errorf("tensor %q is in both %s and %s", name, prev, p)
			}
			from[name] = p
			ck.tensors[name], _ = f.Tensor(name)
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// shardFiles lists the safetensors files of a checkpoint directory: those
// of model.safetensors.index.json when present, else model.safetensors,
// else every *.safetensors file.
func shardFiles(dir string) ([]string, error) {
	idx := filepath.Join(dir, "model.safetensors.index.json")
	if data, err := os.ReadFile(idx); err == nil {
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &index); err != nil {
			return nil, fmt.Errorf("%s: %v", idx, err)
		}
		if len(index.WeightMap) == 0 {
			return nil, fmt.Errorf("%s: empty weight_map", idx)
		}
		seen := map[string]bool{}
		var files []string
		for _, f := range index.WeightMap {
			if f != filepath.Base(f) || !strings.HasSuffix(f, ".safetensors") {
				return nil, fmt.Errorf("%s: bad shard name %q", idx, f)
			}
			if !seen[f] {
				seen[f] = true
				files = append(files, filepath.Join(dir, f))
			}
		}
		sort.Strings(files)
		for _, f := range files {
			if !exists(f) {
				return nil, fmt.Errorf("%s lists shard %s, which is missing", idx, filepath.Base(f))
			}
		}
		return files, nil
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	if p := filepath.Join(dir, "model.safetensors"); exists(p) {
		return []string{p}, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// item is one output tensor and where it comes from.
type item struct {
	src  string
	dst  string
	typ  neon.DType
	dims []uint64 // GGUF order (ne0 first)
	t    safetensors.Tensor
}

// output is one GGUF file to write.
type output struct {
	file  string
	kvs   []gguf.KV
	items []*item
}

func (o *output) add(key string, v any) { o.kvs = append(o.kvs, gguf.KV{Key: key, Value: v}) }

// tensor kinds decide the output type.
type kind int

const (
	linear kind = iota // 2-D weights: quantized
	table              // patch conv, position embeddings: F16 under f16, else F32
	small              // norms, biases, relative bias tables: always F32
)

// step maps one source tensor to one output tensor.
type step struct {
	dst, src string
	k        kind
	shape    []int // PyTorch order
}

// planner collects output items, checking each source tensor.
type planner struct {
	ck    *checkpoint
	quant neon.DType
}

// take checks that source tensor src exists with PyTorch shape shape and
// returns the item writing it as dst.
func (p *planner) take(out *output, dst, src string, k kind, shape ...int) error {
	t, ok := p.ck.tensors[src]
	if !ok {
		return fmt.Errorf("checkpoint lacks tensor %q", src)
	}
	if !equalShape(t.Shape, shape) {
		return fmt.Errorf("tensor %q has shape %v, config.json implies %v", src, t.Shape, shape)
	}
	switch t.DType {
	case "F32", "F16", "BF16":
	default:
		return fmt.Errorf("tensor %q has dtype %s, want F32, F16 or BF16", src, t.DType)
	}
	dims := make([]uint64, len(shape))
	for i, d := range shape {
		dims[len(shape)-1-i] = uint64(d)
	}
	typ := neon.F32
	switch k {
	case linear:
		typ = p.quant
		if typ.BlockSize() > 1 && dims[0]%uint64(typ.BlockSize()) != 0 {
			typ = neon.F32 // rows that do not fill whole blocks stay exact
		}
	case table:
		if p.quant == neon.F16 {
			typ = neon.F16
		}
	}
	out.items = append(out.items, &item{src: src, dst: dst, typ: typ, dims: dims, t: t})
	return nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fileType is llama.cpp's general.file_type for the quantization.
func fileType(q neon.DType) uint32 {
	switch q {
	case neon.F16:
		return 1
	case neon.Q4_0:
		return 2
	case neon.Q8_0:
		return 7
	}
	return 0
}

// plan checks the whole checkpoint against config.json and lays out both
// output files, before anything is written.
func plan(ck *checkpoint, quant neon.DType) (mm, model *output, err error) {
	p := &planner{ck: ck, quant: quant}
	if mm, err = p.vision(); err != nil {
		return nil, nil, err
	}
	if model, err = p.text(); err != nil {
		return nil, nil, err
	}
	used := map[string]bool{}
	for _, it := range append(append([]*item(nil), mm.items...), model.items...) {
		used[it.src] = true
	}
	// Copies of the shared embedding that PyTorch state dicts carry.
	for _, name := range []string{"language_model.lm_head.weight", "language_model.encoder.embed_tokens.weight", "language_model.decoder.embed_tokens.weight"} {
		if t, ok := ck.tensors[name]; ok && ck.cfg.Text.Tied || name != "language_model.lm_head.weight" {
			if ok && !equalShape(t.Shape, []int{ck.cfg.Text.Vocab, ck.cfg.Text.DModel}) {
				return nil, nil, fmt.Errorf("tensor %q has shape %v, config.json implies %v", name, t.Shape, []int{ck.cfg.Text.Vocab, ck.cfg.Text.DModel})
			}
			used[name] = true
		}
	}
	var unknown []string
	for name := range ck.tensors {
		if !used[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, nil, fmt.Errorf("checkpoint has %d tensors this layout does not use, first %q: unknown checkpoint layout", len(unknown), unknown[0])
	}
	return mm, model, nil
}

func (p *planner) vision() (*output, error) {
	v := p.ck.cfg.Vision
	t := p.ck.cfg.Text
	out := &output{file: MMProjFile}
	out.add("general.architecture", "clip")
	out.add("general.name", p.ck.name)
	out.add("general.file_type", fileType(p.quant))
	if p.quant == neon.Q8_0 || p.quant == neon.Q4_0 {
		out.add("general.quantization_version", uint32(2))
	}
	out.add("clip.has_text_encoder", false)
	out.add("clip.has_vision_encoder", true)
	out.add("clip.projector_type", "pali3")
	out.add("clip.use_gelu", true)
	out.add("clip.vision.image_size", uint32(v.ImageSize))
	out.add("clip.vision.patch_size", uint32(v.PatchSize))
	out.add("clip.vision.embedding_length", uint32(v.Hidden))
	out.add("clip.vision.feed_forward_length", uint32(v.Intermediate))
	out.add("clip.vision.block_count", uint32(v.Layers))
	out.add("clip.vision.attention.head_count", uint32(v.Heads))
	out.add("clip.vision.attention.layer_norm_epsilon", float32(v.Eps))
	out.add("clip.vision.projection_dim", uint32(t.DModel))
	out.add("clip.vision.image_mean", []float32{0.5, 0.5, 0.5})
	out.add("clip.vision.image_std", []float32{0.5, 0.5, 0.5})

	const pre = "vision_tower.vision_model."
	D, I, P := v.Hidden, v.Intermediate, v.PatchSize
	n := (v.ImageSize / P) * (v.ImageSize / P)
	steps := []step{
		{"v.patch_embd.weight", pre + "embeddings.patch_embedding.weight", table, []int{D, v.Channels, P, P}},
		{"v.patch_embd.bias", pre + "embeddings.patch_embedding.bias", small, []int{D}},
		{"v.position_embd.weight", pre + "embeddings.position_embedding.weight", table, []int{n, D}},
	}
	for i := 0; i < v.Layers; i++ {
		src := fmt.Sprintf("%sencoder.layers.%d.", pre, i)
		dst := fmt.Sprintf("v.blk.%d.", i)
		for _, m := range []step{
			{"ln1", "layer_norm1", small, []int{D}},
			{"attn_q", "self_attn.q_proj", linear, []int{D, D}},
			{"attn_k", "self_attn.k_proj", linear, []int{D, D}},
			{"attn_v", "self_attn.v_proj", linear, []int{D, D}},
			{"attn_out", "self_attn.out_proj", linear, []int{D, D}},
			{"ln2", "layer_norm2", small, []int{D}},
			{"ffn_up", "mlp.fc1", linear, []int{I, D}},
			{"ffn_down", "mlp.fc2", linear, []int{D, I}},
		} {
			steps = append(steps,
				step{dst + m.dst + ".weight", src + m.src + ".weight", m.k, m.shape},
				step{dst + m.dst + ".bias", src + m.src + ".bias", small, m.shape[:1]})
		}
	}
	steps = append(steps,
		step{"v.post_ln.weight", pre + "post_layernorm.weight", small, []int{D}},
		step{"v.post_ln.bias", pre + "post_layernorm.bias", small, []int{D}},
		step{"mm.model.fc.weight", "multi_modal_projector.linear.weight", linear, []int{t.DModel, D}},
		step{"mm.model.fc.bias", "multi_modal_projector.linear.bias", small, []int{t.DModel}},
	)
	for _, s := range steps {
		if err := p.take(out, s.dst, s.src, s.k, s.shape...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *planner) text() (*output, error) {
	t := p.ck.cfg.Text
	out := &output{file: ModelFile}
	out.add("general.architecture", "t5")
	out.add("general.name", p.ck.name)
	out.add("general.file_type", fileType(p.quant))
	if p.quant == neon.Q8_0 || p.quant == neon.Q4_0 {
		out.add("general.quantization_version", uint32(2))
	}
	out.add("t5.context_length", uint32(t.Context))
	out.add("t5.embedding_length", uint32(t.DModel))
	out.add("t5.feed_forward_length", uint32(t.DFF))
	out.add("t5.block_count", uint32(t.Layers))
	out.add("t5.decoder_block_count", uint32(t.DecLayers))
	out.add("t5.attention.head_count", uint32(t.Heads))
	out.add("t5.attention.key_length", uint32(t.DKV))
	out.add("t5.attention.value_length", uint32(t.DKV))
	out.add("t5.attention.layer_norm_epsilon", float32(t.Eps))
	out.add("t5.attention.layer_norm_rms_epsilon", float32(t.Eps))
	out.add("t5.attention.relative_buckets_count", uint32(t.Buckets))
	out.add("t5.attention.relative_max_distance", uint32(t.MaxDistance))
	out.add("t5.feed_forward_proj", t.FFProj)
	out.add("t5.tie_word_embeddings", t.Tied)
	out.add("t5.decoder_start_token_id", uint32(t.DecoderStart))
	if err := p.tokenizer(out); err != nil {
		return nil, err
	}

	const pre = "language_model."
	d, inner, ff := t.DModel, t.Heads*t.DKV, t.DFF
	take := func(dst, src string, k kind, shape ...int) error {
		return p.take(out, dst, pre+src, k, shape...)
	}
	if err := take("token_embd.weight", "shared.weight", linear, t.Vocab, d); err != nil {
		return nil, err
	}
	if !t.Tied {
		if err := take("output.weight", "lm_head.weight", linear, t.Vocab, d); err != nil {
			return nil, err
		}
	}
	attn := func(dst, src string) error {
		for _, m := range []struct {
			dst, src string
			shape    []int
		}{
			{"q", "q", []int{inner, d}}, {"k", "k", []int{inner, d}},
			{"v", "v", []int{inner, d}}, {"o", "o", []int{d, inner}},
		} {
			if err := take(dst+m.dst+".weight", src+m.src+".weight", linear, m.shape...); err != nil {
				return err
			}
		}
		return nil
	}
	ffn := func(dst, src string) error {
		for _, m := range []struct {
			dst, src string
			shape    []int
		}{
			{"ffn_gate", "wi_0", []int{ff, d}}, {"ffn_up", "wi_1", []int{ff, d}}, {"ffn_down", "wo", []int{d, ff}},
		} {
			if err := take(dst+m.dst+".weight", src+"DenseReluDense."+m.src+".weight", linear, m.shape...); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i < t.Layers; i++ {
		src := fmt.Sprintf("encoder.block.%d.layer.", i)
		dst := fmt.Sprintf("enc.blk.%d.", i)
		if err := take(dst+"attn_norm.weight", src+"0.layer_norm.weight", small, d); err != nil {
			return nil, err
		}
		if err := attn(dst+"attn_", src+"0.SelfAttention."); err != nil {
			return nil, err
		}
		if i == 0 {
			if err := take(dst+"attn_rel_b.weight", src+"0.SelfAttention.relative_attention_bias.weight", small, t.Buckets, t.Heads); err != nil {
				return nil, err
			}
		}
		if err := take(dst+"ffn_norm.weight", src+"1.layer_norm.weight", small, d); err != nil {
			return nil, err
		}
		if err := ffn(dst, src+"1."); err != nil {
			return nil, err
		}
	}
	if err := take("enc.output_norm.weight", "encoder.final_layer_norm.weight", small, d); err != nil {
		return nil, err
	}
	for i := 0; i < t.DecLayers; i++ {
		src := fmt.Sprintf("decoder.block.%d.layer.", i)
		dst := fmt.Sprintf("dec.blk.%d.", i)
		if err := take(dst+"attn_norm.weight", src+"0.layer_norm.weight", small, d); err != nil {
			return nil, err
		}
		if err := attn(dst+"attn_", src+"0.SelfAttention."); err != nil {
			return nil, err
		}
		if i == 0 {
			if err := take(dst+"attn_rel_b.weight", src+"0.SelfAttention.relative_attention_bias.weight", small, t.Buckets, t.Heads); err != nil {
				return nil, err
			}
		}
		if err := take(dst+"cross_attn_norm.weight", src+"1.layer_norm.weight", small, d); err != nil {
			return nil, err
		}
		if err := attn(dst+"cross_attn_", src+"1.EncDecAttention."); err != nil {
			return nil, err
		}
		if err := take(dst+"ffn_norm.weight", src+"2.layer_norm.weight", small, d); err != nil {
			return nil, err
		}
		if err := ffn(dst, src+"2."); err != nil {
			return nil, err
		}
	}
	if err := take("dec.output_norm.weight", "decoder.final_layer_norm.weight", small, d); err != nil {
		return nil, err
	}
	return out, nil
}

// tokenizer adds the tokenizer.ggml.* keys and the whole SentencePiece
// model. The vocabulary is padded to the model's vocab_size with unused
// "[PAD<id>]" pieces, as llama.cpp's converter does.
func (p *planner) tokenizer(out *output) error {
	m := p.ck.spm
	t := p.ck.cfg.Text
	var kind string
	switch m.Kind() {
	case "unigram":
		kind = "t5"
	case "bpe":
		kind = "llama"
	default:
		return fmt.Errorf("spiece.model: unsupported model kind %q", m.Kind())
	}
	if m.Size() > t.Vocab {
		return fmt.Errorf("spiece.model has %d pieces, more than text_config.vocab_size %d", m.Size(), t.Vocab)
	}
	tokens := make([]string, t.Vocab)
	scores := make([]float32, t.Vocab)
	types := make([]int32, t.Vocab)
	for i := range tokens {
		if i < m.Size() {
			pc := m.Piece(i)
			tokens[i], scores[i], types[i] = pc.Text, pc.Score, int32(pc.Type)
		} else {
			tokens[i], scores[i], types[i] = fmt.Sprintf("[PAD%d]", i), -1000, int32(spm.Unused)
		}
	}
	id := func(name string, cfg, tok int) (int, error) {
		switch {
		case cfg >= 0 && tok >= 0 && cfg != tok:
			return 0, fmt.Errorf("config.json text_config.%s_token_id is %d but spiece.model's %s is %d", strings.ToLower(name), cfg, name, tok)
		case tok >= 0:
			return tok, nil
		case cfg >= 0:
			return cfg, nil
		}
		return 0, fmt.Errorf("neither config.json nor spiece.model gives a %s token id", name)
	}
	eos, err := id("EOS", t.EOS, m.EOS())
	if err != nil {
		return err
	}
	pad, err := id("PAD", t.PAD, m.PAD())
	if err != nil {
		return err
	}
	for _, x := range []int{eos, pad} {
		if x >= t.Vocab {
			return fmt.Errorf("token id %d is outside the vocabulary of %d", x, t.Vocab)
		}
	}
	out.add("tokenizer.ggml.model", kind)
	out.add("tokenizer.ggml.tokens", tokens)
	out.add("tokenizer.ggml.scores", scores)
	out.add("tokenizer.ggml.token_type", types)
	out.add("tokenizer.ggml.eos_token_id", uint32(eos))
	out.add("tokenizer.ggml.padding_token_id", uint32(pad))
	out.add("tokenizer.ggml.unknown_token_id", uint32(m.UNK()))
	if b := m.BOS(); b >= 0 {
		out.add("tokenizer.ggml.bos_token_id", uint32(b))
	}
	out.add("tokenizer.ggml.add_bos_token", false)
	out.add("tokenizer.ggml.add_eos_token", true)
	out.add("tokenizer.ggml.precompiled_charsmap", append([]uint8{}, m.PrecompiledCharsmap()...))
	out.add("palid.tokenizer.spm_model", p.ck.spmData)
	return nil
}

// chunkElems bounds the float32 scratch of a conversion.
const chunkElems = 1 << 20

// convertTensor decodes the source tensor and writes it in the item's
// type, a block of whole rows at a time.
func convertTensor(dst []byte, it *item) error {
	row := int(it.dims[0])
	n := it.t.Elements()
	if n == 0 {
		return nil
	}
	srcSize := len(it.t.Data) / n
	rows := n / row
	per := max(1, chunkElems/row)
	buf := make([]float32, min(per, rows)*row)
	off := 0
	for r := 0; r < rows; r += per {
		k := min(per, rows-r)
		part := it.t
		part.Shape = []int{k * row}
		part.Data = it.t.Data[r*row*srcSize : (r+k)*row*srcSize]
		vals := buf[:k*row]
		if err := part.Decode(vals); err != nil {
			return err
		}
		nb := neon.RowBytes(it.typ, k*row)
		neon.Quantize(it.typ, dst[off:off+nb], vals)
		off += nb
	}
	if off != len(dst) {
		return fmt.Errorf("converted %d bytes, want %d", off, len(dst))
	}
	return nil
}
