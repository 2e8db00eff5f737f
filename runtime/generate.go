package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// DefaultMaxTokens is the number of tokens Generate makes at most when the
// request does not say.
const DefaultMaxTokens = 32

// maxMaxTokens bounds Request.MaxTokens (the self-attention cache is
// allocated for it up front).
const maxMaxTokens = 4096

// Request is one question to the model.
type Request struct {
	// Frames are 0..16 frames, encoded one by one by the ViT, their tokens
	// concatenated in order.
	Frames []Image
	// Visual alternatively holds already projected tokens per frame (the
	// token cache), each a whole number of rows of the text width.
	Visual [][]float32
	// Prompt is the prompt in PaLI form ("answer en what color is the circle?").
	Prompt string
	// PromptIDs alternatively holds the prompt's token ids; EOS is
	// appended by Generate in both cases.
	PromptIDs []int
	// MaxTokens is the largest number of generated tokens; 0 means
	// DefaultMaxTokens.
	MaxTokens int
	// Beam is the beam width; <= 1 is greedy decoding.
	Beam int
	// OnToken, when set, receives the answer text as it grows: each call
	// carries the newly decoded piece (greedy decoding streams token by
	// token; beam search delivers the whole answer at the end). It is
	// called on the generating goroutine and must not block.
	OnToken func(piece string)
	// KeepLogits asks for the logits of every step of the answer in
	// Result.StepLogits (for tests against a reference).
	KeepLogits bool
}

// Result is the model's answer.
type Result struct {
	Text string
	// Tokens are the generated ids, without the decoder start token, EOS
	// included when reached.
	Tokens []int
	// Logprobs holds the natural-log probability of each token under the
	// full softmax at its step.
	Logprobs []float32
	// Timings are in milliseconds: "vision", "encode", "decode", "total".
	Timings map[string]float64
	// StepLogits, when Request.KeepLogits was set, holds for each token of
	// Tokens the full logits (vocabulary wide) of the step that chose it.
	StepLogits [][]float32
}

// BuildPrompt turns a plain-words question into a PaLI prompt: a question
// that starts with a task word (caption, answer, ocr, detect, describe) is
// used as it is; any other becomes "answer {lang} {question}", lang
// defaulting to "en". Surrounding white space is trimmed.
func BuildPrompt(question, lang string) string {
	q := strings.TrimSpace(question)
	lang = strings.TrimSpace(lang)
	if lang == "" {
		lang = "en"
	}
	first := q
	if i := strings.IndexFunc(q, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }); i >= 0 {
		first = q[:i]
	}
	switch strings.ToLower(first) {
	case "caption", "answer", "ocr", "detect", "describe":
		return q
	}
	if q == "" {
		return "answer " + lang
	}
	return "answer " + lang + " " + q
}

// Generate answers req: it encodes the frames (or takes the cached visual
// tokens), runs the encoder on them and the prompt, and decodes greedily or
// with beam search.
func (m *Model) Generate(ctx context.Context, req Request) (Result, error) {
	t0 := time.Now()
	d := m.txt.d
	switch {
	case len(req.Frames) > 0 && len(req.Visual) > 0:
		return Result{}, errors.New("request has both frames and visual tokens; give one")
	case len(req.Frames) > MaxFrames || len(req.Visual) > MaxFrames:
		return Result{}, fmt.Errorf("request has %d frames, at most %d allowed", max(len(req.Frames), len(req.Visual)), MaxFrames)
	case req.MaxTokens < 0 || req.MaxTokens > maxMaxTokens:
		return Result{}, fmt.Errorf("max tokens %d outside 0..%d", req.MaxTokens, maxMaxTokens)
	case req.Beam > 64:
		return Result{}, fmt.Errorf("beam width %d larger than 64", req.Beam)
	}
	for i, f := range req.Frames {
		if err := m.checkImage(f); err != nil {
			return Result{}, fmt.Errorf("frame %d: %w", i, err)
		}
	}
	for i, v := range req.Visual {
		if len(v) == 0 || len(v)%d != 0 {
			return Result{}, fmt.Errorf("visual tokens of frame %d: %d values, not a whole number of rows of width %d", i, len(v), d)
		}
	}
	ids := req.PromptIDs
	if len(ids) == 0 {
		p := strings.TrimSpace(req.Prompt)
		if p == "" {
			return Result{}, errors.New("empty prompt")
		}
		ids = m.tok.Encode(p)
		if len(ids) == 0 {
			return Result{}, fmt.Errorf("prompt %q has no tokens", req.Prompt)
		}
	} else if req.Prompt != "" {
		return Result{}, errors.New("request has both a prompt and prompt ids; give one")
	}
	for _, id := range ids {
		if id < 0 || id >= m.txt.vocab {
			return Result{}, fmt.Errorf("prompt token id %d outside the vocabulary of %d", id, m.txt.vocab)
		}
	}
	ids = append(ids[:len(ids):len(ids)], m.eos)
	maxTokens := req.MaxTokens
	if maxTokens == 0 {
		maxTokens = DefaultMaxTokens
	}
	beam := max(req.Beam, 1)

	// Vision.
	visual := req.Visual
	if len(req.Frames) > 0 {
		visual = make([][]float32, len(req.Frames))
		for i, f := range req.Frames {
			v, err := m.encodeImage(ctx, f)
			if err != nil {
				return Result{}, err
			}
			visual[i] = v
		}
	}
	t1 := time.Now()

	// Encoder input: visual tokens of each frame, then the prompt.
	nVis := 0
	for _, v := range visual {
		nVis += len(v) / d
	}
	n := nVis + len(ids)
	x := make([]float32, n*d)
	off := 0
	for _, v := range visual {
		off += copy(x[off:], v)
	}
	m.txt.embed(x[off:], ids)
	enc, err := m.encode(ctx, x, n)
	if err != nil {
		return Result{}, err
	}
	dec, err := m.newDecoder(ctx, enc, n, maxTokens)
	if err != nil {
		return Result{}, err
	}
	t2 := time.Now()

	step := dec.step
	var stream textStream
	if req.OnToken != nil {
		stream = textStream{m: m, emit: req.OnToken}
		if beam == 1 {
			inner := step
			step = func(ctx context.Context, parents, tokens []int) ([]float32, error) {
				stream.feed(tokens[0])
				return inner(ctx, parents, tokens)
			}
		}
	}
	best, err := search(ctx, step, m.txt.vocab, m.start, m.eos, beam, maxTokens, req.KeepLogits)
	if err != nil {
		return Result{}, err
	}
	t3 := time.Now()

	text := make([]int, 0, len(best.tokens))
	for _, id := range best.tokens {
		if id != m.eos && id != m.start && id < m.tok.Size() {
			text = append(text, id)
		}
	}
	if req.OnToken != nil {
		stream.finish(best.tokens)
	}
	ms := func(a, b time.Time) float64 { return float64(b.Sub(a).Microseconds()) / 1000 }
	return Result{
		Text:       m.tok.Decode(text),
		Tokens:     best.tokens,
		Logprobs:   best.logprobs,
		StepLogits: best.logits,
		Timings: map[string]float64{
			"vision": ms(t0, t1),
			"encode": ms(t1, t2),
			"decode": ms(t2, t3),
			"total":  ms(t0, t3),
		},
	}, nil
}

// stepFunc feeds tokens[i] to the continuation of beam parents[i] (an
// index into the previous call's beams; the first call has one beam, 0)
// and returns the logits, len(tokens) rows of the vocabulary. The returned
// slice may be reused by the next call.
type stepFunc func(ctx context.Context, parents, tokens []int) ([]float32, error)

// hypothesis is one beam.
type hypothesis struct {
	tokens   []int
	logprobs []float32
	logits   [][]float32
	score    float64
}

// logSoftmax returns the log-probabilities of logits, in float64.
func logSoftmax(dst []float64, logits []float32) {
	mx := float32(math.Inf(-1))
	for _, x := range logits {
		if x > mx {
			mx = x
		}
	}
	var sum float64
	for _, x := range logits {
		sum += math.Exp(float64(x) - float64(mx))
	}
	lse := float64(mx) + math.Log(sum)
	for i, x := range logits {
		dst[i] = float64(x) - lse
	}
}

// topK returns the k indices of the largest lp, best first, ties toward the
// lower index.
func topK(lp []float64, k int) []int {
	best := make([]int, 0, k)
	for i, v := range lp {
		if len(best) == k && v <= lp[best[k-1]] {
			continue
		}
		j := len(best)
		if j < k {
			best = append(best, i)
		} else {
			j = k - 1
		}
		for j > 0 && lp[best[j-1]] < v {
			best[j] = best[j-1]
			j--
		}
		best[j] = i
	}
	return best
}

// search decodes with beam width k (k = 1 is greedy) as docs/contracts.md
// specifies.
func search(ctx context.Context, step stepFunc, vocab, start, eos, k, maxTokens int, keep bool) (hypothesis, error) {
	k = min(k, vocab)
	alive := []hypothesis{{}}
	var finished []hypothesis
	parents := []int{0}
	tokens := []int{start}
	lp := make([]float64, vocab)
	type cand struct {
		beam, tok int
		lp        float64
		score     float64
	}
	for stepN := 0; stepN < maxTokens && len(alive) > 0; stepN++ {
		if err := ctx.Err(); err != nil {
			return hypothesis{}, err
		}
		logits, err := step(ctx, parents, tokens)
		if err != nil {
			return hypothesis{}, err
		}
		var cands []cand
		for b := range alive {
			row := logits[b*vocab : (b+1)*vocab]
			logSoftmax(lp, row)
			for _, t := range topK(lp, k) {
				cands = append(cands, cand{beam: b, tok: t, lp: lp[t], score: alive[b].score + lp[t]})
			}
		}
		sort.SliceStable(cands, func(i, j int) bool {
			a, b := cands[i], cands[j]
			if a.score != b.score {
				return a.score > b.score
			}
			if a.beam != b.beam {
				return a.beam < b.beam
			}
			return a.tok < b.tok
		})
		extend := func(c cand) hypothesis {
			p := alive[c.beam]
			h := hypothesis{
				tokens:   append(append([]int(nil), p.tokens...), c.tok),
				logprobs: append(append([]float32(nil), p.logprobs...), float32(c.lp)),
				score:    c.score,
			}
			if keep {
				row := append([]float32(nil), logits[c.beam*vocab:(c.beam+1)*vocab]...)
				h.logits = append(append([][]float32(nil), p.logits...), row)
			}
			return h
		}
		var next []hypothesis
		parents, tokens = parents[:0], tokens[:0]
		for r, c := range cands {
			if len(next) == k {
				break
			}
			if c.tok == eos {
				if r < k {
					finished = append(finished, extend(c))
				}
				continue
			}
			next = append(next, extend(c))
			parents = append(parents, c.beam)
			tokens = append(tokens, c.tok)
		}
		alive = next
		if len(finished) >= k {
			break
		}
		if len(finished) > 0 && len(alive) > 0 && bestOf(finished).score >= alive[0].score {
			break
		}
	}
	if len(finished) > 0 {
		return bestOf(finished), nil
	}
	if len(alive) == 0 {
		return hypothesis{}, nil
	}
	return alive[0], nil
}

// bestOf is the highest-scoring hypothesis, the earliest among equals.
func bestOf(hs []hypothesis) hypothesis {
	b := 0
	for i := range hs {
		if hs[i].score > hs[b].score {
			b = i
		}
	}
	return hs[b]
}

// textStream turns the tokens chosen so far into pieces of text for
// Request.OnToken: it decodes the whole prefix each time and emits what
// was added, so SentencePiece's joining rules hold.
type textStream struct {
	m       *Model
	emit    func(string)
	ids     []int
	emitted string
}

// feed records a token fed to the decoder (the start token is ignored).
func (s *textStream) feed(id int) {
	if id == s.m.start || id == s.m.eos || id >= s.m.tok.Size() {
		return
	}
	s.ids = append(s.ids, id)
	s.flush()
}

// finish emits whatever of the final answer has not been emitted yet.
func (s *textStream) finish(tokens []int) {
	s.ids = s.ids[:0]
	for _, id := range tokens {
		if id != s.m.eos && id != s.m.start && id < s.m.tok.Size() {
			s.ids = append(s.ids, id)
		}
	}
	s.flush()
}

func (s *textStream) flush() {
	text := s.m.tok.Decode(s.ids)
	if strings.HasPrefix(text, s.emitted) {
		if d := text[len(s.emitted):]; d != "" {
			s.emit(d)
			s.emitted = text
		}
	}
}
