// Package runtime is palid's PaLI-3 inference engine: it maps a model
// directory (model.gguf and mmproj.gguf, DESIGN.md §3), runs the SigLIP
// vision tower and its projector on camera frames, and the UL2/T5
// encoder-decoder on the visual tokens and the prompt, with greedy or beam
// decoding.
//
// Every size comes from the files' metadata. Weights stay in the memory map
// of the files: quantized matrices are handed to the neon kernels as they lie
// on disk; only norms, biases and small tables are copied.
package runtime

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/palid/palid/internal/mmap"
	"github.com/palid/palid/neon"
	"github.com/palid/palid/runtime/gguf"
	"github.com/palid/palid/runtime/spm"
)

// MaxFrames is the largest number of frames one request may hold.
const MaxFrames = 16

// Options configures Load.
type Options struct {
	// Threads is the number of worker goroutines of the model's own pool
	// when Pool is nil; <= 0 means one per CPU.
	Threads int
	// Pool, when set, is used (and not closed by Model.Close) instead of a
	// pool of the model's own.
	Pool *neon.Pool
	// MapOnly keeps every weight in the mapped file, as stored: start-up
	// copies nothing, at the price of the slower unpacked kernels. By
	// default Load repacks the quantized matrices into neon's interleaved
	// layout (a one-time copy, see pack).
	MapOnly bool
}

// Info describes a loaded model: sizes and weight types, for inspect,
// bench and the info topic.
type Info struct {
	ImageSize     int    // model resolution, square
	PatchSize     int    // ViT patch size
	VisionTokens  int    // visual tokens per frame at ImageSize
	VisionWidth   int    // ViT hidden size
	VisionFF      int    // ViT MLP size
	VisionLayers  int    // ViT blocks
	VisionHeads   int    // ViT attention heads
	TextWidth     int    // d_model
	TextFF        int    // d_ff
	EncoderLayers int    // T5 encoder blocks
	DecoderLayers int    // T5 decoder blocks
	TextHeads     int    // T5 attention heads
	HeadDim       int    // T5 d_kv
	Vocab         int    // rows of the embedding and the head
	FeedForward   string // "gated-gelu" or "gated-silu"
	Tied          bool   // head tied to token_embd
	VisionType    string // type of the ViT block weights ("q8_0", ...)
	TextType      string // type of the T5 block weights
	Params        int64  // number of parameters, both files
	Bytes         int64  // bytes of tensor data, both files
}

// Model is a loaded PaLI-3 model. Its methods are safe for concurrent use.
type Model struct {
	pool    *neon.Pool
	ownPool bool
	files   []*gguf.File
	tok     *spm.Model
	vis     visionWeights
	txt     textWeights
	info    Info
	eos     int // end of sequence id
	start   int // decoder start id
}

// Load maps dir/model.gguf and dir/mmproj.gguf and checks every tensor
// against the sizes in their metadata.
func Load(dir string, opts Options) (*Model, error) {
	m := &Model{}
	ok := false
	defer func() {
		if !ok {
			m.closeFiles()
		}
	}()
	textPath := filepath.Join(dir, "model.gguf")
	tf, err := gguf.Open(textPath)
	if err != nil {
		return nil, err
	}
	m.files = append(m.files, tf)
	visPath := filepath.Join(dir, "mmproj.gguf")
	vf, err := gguf.Open(visPath)
	if err != nil {
		return nil, err
	}
	m.files = append(m.files, vf)

	if err := m.loadText(&loader{f: tf, path: textPath}); err != nil {
		return nil, err
	}
	if err := m.loadVision(&loader{f: vf, path: visPath}); err != nil {
		return nil, err
	}
	if m.vis.projDim != m.txt.d {
		return nil, fmt.Errorf("%s: clip.vision.projection_dim is %d but the text model is %d wide (%s)",
			visPath, m.vis.projDim, m.txt.d, textPath)
	}
	for _, f := range m.files {
		for _, t := range f.Tensors {
			n := int64(1)
			for _, d := range t.Dims {
				n *= int64(d)
			}
			m.info.Params += n
			if t.Type.BlockSize() > 0 {
				m.info.Bytes += int64(neon.RowBytes(t.Type, t.Type.BlockSize())) * (n / int64(t.Type.BlockSize()))
			}
		}
	}
	m.pool = opts.Pool
	if m.pool == nil {
		m.pool = neon.NewPool(opts.Threads)
		m.ownPool = true
	}
	if !opts.MapOnly {
		m.pack()
	}
	ok = true
	return m, nil
}

// pack repacks every quantized weight matrix used by matrix products into
// neon's interleaved layout (neon.Pack), the matrices spread over the pool.
// The packed copies live on the heap; the mapped pages they were read from
// are released from the resident set (they stay readable: Matrix.Row and
// Dequantize still use them).
func (m *Model) pack() {
	var ms []*neon.Matrix
	t := &m.txt
	if t.tied {
		ms = append(ms, &t.embd) // the head; embed still reads its rows
	} else {
		ms = append(ms, &t.head)
	}
	for _, layers := range [][]t5Layer{t.enc, t.dec} {
		for i := range layers {
			b := &layers[i]
			ms = append(ms, &b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down)
			if b.cq.Rows > 0 {
				ms = append(ms, &b.cq, &b.ck, &b.cv, &b.co)
			}
		}
	}
	v := &m.vis
	ms = append(ms, &v.patchW, &v.proj)
	for i := range v.blocks {
		b := &v.blocks[i]
		ms = append(ms, &b.q, &b.k, &b.v, &b.o, &b.up, &b.down)
	}
	m.pool.RunBalanced(len(ms), func(lo, hi int) {
		for _, w := range ms[lo:hi] {
			*w = neon.Pack(*w)
			if w.Packed() && w != &t.embd {
				mmap.Release(w.Data) // only the packed copy is read from now on
			}
		}
	})
	if t.tied {
		t.head = t.embd
	}
}

func (m *Model) closeFiles() error {
	var errs []error
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	m.files = nil
	return errors.Join(errs...)
}

// Close unmaps the model files and stops the model's own worker pool.
// The model must not be used afterwards.
func (m *Model) Close() error {
	if m.ownPool && m.pool != nil {
		m.pool.Close()
		m.pool = nil
	}
	return m.closeFiles()
}

// ImageSize is the model's resolution (square images of this size).
func (m *Model) ImageSize() int { return m.vis.imageSize }

// Tokenizer is the model's SentencePiece tokenizer.
func (m *Model) Tokenizer() *spm.Model { return m.tok }

// Info reports the model's sizes and weight types.
func (m *Model) Info() Info { return m.info }

// loader reads tensors from one file and checks their shapes, naming the
// file in every error.
type loader struct {
	f    *gguf.File
	path string
}

func (l *loader) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", l.path, fmt.Sprintf(format, args...))
}

func (l *loader) wrap(err error) error {
	return fmt.Errorf("%s: %w", l.path, err)
}

// size reads a positive integer key.
func (l *loader) size(key string) (int, error) {
	v, err := l.f.Int(key)
	if err != nil {
		return 0, l.wrap(err)
	}
	if v <= 0 || v > 1<<24 {
		return 0, l.errorf("metadata key %q is %d, want a positive size", key, v)
	}
	return v, nil
}

func (l *loader) tensor(name string, dims ...int) (gguf.Tensor, error) {
	t, err := l.f.Tensor(name)
	if err != nil {
		return t, l.wrap(err)
	}
	ud := make([]uint64, len(dims))
	for i, d := range dims {
		ud[i] = uint64(d)
	}
	if err := t.Expect(ud...); err != nil {
		return t, l.wrap(err)
	}
	switch t.Type {
	case neon.F32, neon.F16, neon.Q8_0, neon.Q4_0:
	default:
		return t, l.errorf("tensor %s has unsupported type %v", name, t.Type)
	}
	return t, nil
}

// matrix maps a weight of shape [rows, cols] (GGUF dims [cols, rows]).
func (l *loader) matrix(name string, cols, rows int) (neon.Matrix, error) {
	t, err := l.tensor(name, cols, rows)
	if err != nil {
		return neon.Matrix{}, err
	}
	return l.asMatrix(t, rows, cols)
}

// asMatrix views t's data as a rows x cols matrix after checking that the
// bytes are exactly there.
func (l *loader) asMatrix(t gguf.Tensor, rows, cols int) (neon.Matrix, error) {
	if cols%t.Type.BlockSize() != 0 {
		return neon.Matrix{}, l.errorf("tensor %s: row length %d is not a multiple of the %v block size %d",
			t.Name, cols, t.Type, t.Type.BlockSize())
	}
	if want := rows * neon.RowBytes(t.Type, cols); len(t.Data) != want {
		return neon.Matrix{}, l.errorf("tensor %s holds %d bytes, want %d", t.Name, len(t.Data), want)
	}
	return neon.Matrix{Type: t.Type, Rows: rows, Cols: cols, Data: t.Data}, nil
}

// floats reads a small tensor of the given dims as float32.
func (l *loader) floats(name string, dims ...int) ([]float32, error) {
	t, err := l.tensor(name, dims...)
	if err != nil {
		return nil, err
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, l.wrap(err)
	}
	return v, nil
}

// errs collects the first error of a sequence of loads.
type errs struct{ err error }

func (e *errs) m(m neon.Matrix, err error) neon.Matrix {
	if e.err == nil {
		e.err = err
	}
	return m
}

func (e *errs) v(v []float32, err error) []float32 {
	if e.err == nil {
		e.err = err
	}
	return v
}
