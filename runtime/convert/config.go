package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// visionConfig is the part of a SiglipVisionConfig palid uses.
type visionConfig struct {
	Hidden, Intermediate, Layers, Heads int
	ImageSize, PatchSize, Channels      int
	Eps                                 float64
}

// textConfig is the part of a T5Config palid uses.
type textConfig struct {
	DModel, DKV, DFF, Layers, DecLayers, Heads int
	Buckets, MaxDistance, Vocab, Context       int
	Eps                                        float64
	FFProj                                     string
	Tied                                       bool
	DecoderStart                               int
	EOS, PAD                                   int // -1 when not given
}

type config struct {
	Vision visionConfig
	Text   textConfig
}

// jsonObj reads typed fields out of a decoded JSON object, naming the
// field in errors.
type jsonObj struct {
	m    map[string]any
	path string // "text_config." etc.
	file string
}

func (o jsonObj) errf(key, format string, args ...any) error {
	return fmt.Errorf("%s: %s%s %s", o.file, o.path, key, fmt.Sprintf(format, args...))
}

// int returns a non-negative integer field; def < 0 makes it required.
func (o jsonObj) int(key string, def int, positive bool) (int, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		if def < 0 {
			return 0, o.errf(key, "is missing")
		}
		return def, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return 0, o.errf(key, "is %s, want an integer", jsonKind(v))
	}
	i, err := n.Int64()
	if err != nil || i < 0 || i > math.MaxInt32 || (positive && i == 0) {
		want := "a non-negative integer"
		if positive {
			want = "a positive integer"
		}
		return 0, o.errf(key, "is %s, want %s", n, want)
	}
	return int(i), nil
}

func (o jsonObj) float(key string, def float64) (float64, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return 0, o.errf(key, "is %s, want a number", jsonKind(v))
	}
	f, err := n.Float64()
	if err != nil || !(f > 0 && f < 1) {
		return 0, o.errf(key, "is %s, want a number between 0 and 1", n)
	}
	return f, nil
}

func (o jsonObj) str(key, def string) (string, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", o.errf(key, "is %s, want a string", jsonKind(v))
	}
	return s, nil
}

func (o jsonObj) bool(key string, def bool) (bool, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, o.errf(key, "is %s, want true or false", jsonKind(v))
	}
	return b, nil
}

func (o jsonObj) obj(key string) (jsonObj, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return jsonObj{}, o.errf(key, "is missing")
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		return jsonObj{}, o.errf(key, "is %s, want an object", jsonKind(v))
	}
	return jsonObj{m: m, path: o.path + key + ".", file: o.file}, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

// readConfig reads and checks a checkpoint's config.json.
func readConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %v", path, err)
	}
	root := jsonObj{m: m, file: path}
	mt, err := root.str("model_type", "")
	if err != nil {
		return nil, err
	}
	switch mt {
	case "pali3":
	case "":
		return nil, fmt.Errorf("%s: no model_type (want \"pali3\"): unknown checkpoint layout", path)
	default:
		return nil, fmt.Errorf("%s: unsupported model_type %q (want \"pali3\")", path, mt)
	}
	vo, err := root.obj("vision_config")
	if err != nil {
		return nil, err
	}
	to, err := root.obj("text_config")
	if err != nil {
		return nil, err
	}
	var c config
	if c.Vision, err = readVision(vo); err != nil {
		return nil, err
	}
	if c.Text, err = readText(to); err != nil {
		return nil, err
	}
	return &c, nil
}

func readVision(o jsonObj) (visionConfig, error) {
	var v visionConfig
	if mt, err := o.str("model_type", "siglip_vision_model"); err != nil {
		return v, err
	} else if mt != "siglip_vision_model" {
		return v, o.errf("model_type", "is %q, want \"siglip_vision_model\"", mt)
	}
	fields := []struct {
		key string
		dst *int
		def int
	}{
		{"hidden_size", &v.Hidden, -1}, {"intermediate_size", &v.Intermediate, -1},
		{"num_hidden_layers", &v.Layers, -1}, {"num_attention_heads", &v.Heads, -1},
		{"image_size", &v.ImageSize, -1}, {"patch_size", &v.PatchSize, -1},
		{"num_channels", &v.Channels, 3},
	}
	for _, f := range fields {
		n, err := o.int(f.key, f.def, true)
		if err != nil {
			return v, err
		}
		*f.dst = n
	}
	var err error
	if v.Eps, err = o.float("layer_norm_eps", 1e-6); err != nil {
		return v, err
	}
	switch {
	case v.Channels != 3:
		return v, o.errf("num_channels", "is %d, want 3", v.Channels)
	case v.Hidden%v.Heads != 0:
		return v, o.errf("hidden_size", "%d is not a multiple of num_attention_heads %d", v.Hidden, v.Heads)
	case v.ImageSize%v.PatchSize != 0:
		return v, o.errf("image_size", "%d is not a multiple of patch_size %d", v.ImageSize, v.PatchSize)
	}
	return v, nil
}

func readText(o jsonObj) (textConfig, error) {
	var t textConfig
	if mt, err := o.str("model_type", "t5"); err != nil {
		return t, err
	} else if mt != "t5" {
		return t, o.errf("model_type", "is %q, want \"t5\" (other language models are not supported yet)", mt)
	}
	fields := []struct {
		key      string
		dst      *int
		def      int
		positive bool
	}{
		{"d_model", &t.DModel, -1, true}, {"d_kv", &t.DKV, -1, true}, {"d_ff", &t.DFF, -1, true},
		{"num_layers", &t.Layers, -1, true}, {"num_heads", &t.Heads, -1, true},
		{"vocab_size", &t.Vocab, -1, true},
		{"relative_attention_num_buckets", &t.Buckets, 32, true},
		{"relative_attention_max_distance", &t.MaxDistance, 128, true},
		{"n_positions", &t.Context, 512, true},
		{"decoder_start_token_id", &t.DecoderStart, 0, false},
	}
	for _, f := range fields {
		n, err := o.int(f.key, f.def, f.positive)
		if err != nil {
			return t, err
		}
		*f.dst = n
	}
	var err error
	if t.DecLayers, err = o.int("num_decoder_layers", t.Layers, true); err != nil {
		return t, err
	}
	if t.EOS, err = o.optID("eos_token_id"); err != nil {
		return t, err
	}
	if t.PAD, err = o.optID("pad_token_id"); err != nil {
		return t, err
	}
	if t.Eps, err = o.float("layer_norm_epsilon", 1e-6); err != nil {
		return t, err
	}
	if t.FFProj, err = o.str("feed_forward_proj", ""); err != nil {
		return t, err
	}
	switch t.FFProj {
	case "gated-gelu", "gated-silu":
	case "":
		return t, o.errf("feed_forward_proj", "is missing (want \"gated-gelu\" or \"gated-silu\")")
	default:
		return t, o.errf("feed_forward_proj", "is %q, want \"gated-gelu\" or \"gated-silu\"", t.FFProj)
	}
	if t.Tied, err = o.bool("tie_word_embeddings", true); err != nil {
		return t, err
	}
	if t.DecoderStart >= t.Vocab {
		return t, o.errf("decoder_start_token_id", "%d is outside the vocabulary of %d", t.DecoderStart, t.Vocab)
	}
	return t, nil
}

// optID reads an optional token id; -1 when absent.
func (o jsonObj) optID(key string) (int, error) {
	if v, ok := o.m[key]; !ok || v == nil {
		return -1, nil
	}
	return o.int(key, 0, false)
}
