// Package spm is a SentencePiece tokenizer: it reads a SentencePiece
// `.model` file (the serialized ModelProto) and encodes text to the same
// ids as the C++ library's spm_encode, for unigram models (T5, UL2) and
// BPE models (Gemma), with the model's normalizer (precompiled charsmap),
// user-defined and control pieces, unknown pieces and byte fallback.
//
// The algorithms follow sentencepiece 0.1.97: normalizer.cc, the optimized
// Viterbi of unigram_model.cc, the merge loop of bpe_model.cc and
// SentencePieceProcessor's post-processing (runs of unknown pieces are
// merged into one; with byte fallback an unknown piece becomes its UTF-8
// bytes).
package spm

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// PieceType is the type of a piece, with the values of the proto enum
// ModelProto.SentencePiece.Type.
type PieceType int

// Piece types.
const (
	Normal      PieceType = 1 // an ordinary piece
	Unknown     PieceType = 2 // the unknown piece (<unk>)
	Control     PieceType = 3 // control pieces such as <s> and </s>, never produced by Encode
	UserDefined PieceType = 4 // user-defined symbols, always kept whole
	Unused      PieceType = 5 // pieces the encoder does not emit
	Byte        PieceType = 6 // byte pieces <0x00>..<0xFF> for byte fallback
)

// String returns the proto name of the type.
func (t PieceType) String() string {
	switch t {
	case Normal:
		return "NORMAL"
	case Unknown:
		return "UNKNOWN"
	case Control:
		return "CONTROL"
	case UserDefined:
		return "USER_DEFINED"
	case Unused:
		return "UNUSED"
	case Byte:
		return "BYTE"
	}
	return fmt.Sprintf("PieceType(%d)", int(t))
}

// Piece is one entry of the vocabulary.
type Piece struct {
	Text  string
	Score float32
	Type  PieceType
}

// Model is a loaded SentencePiece model. It is immutable and safe for
// concurrent use.
type Model struct {
	proto  *modelProto
	pieces []Piece
	kind   string // "unigram" or "bpe"

	normal   map[string]int32 // NORMAL, USER_DEFINED and UNUSED pieces
	reserved map[string]int32 // every other type
	unk      int32
	byteIDs  [256]int32 // id of <0xXX>, valid with byte fallback
	bosID    int
	eosID    int
	padID    int

	norm   normalizer
	denorm *normalizer // applied to decoded text; nil when the model has none

	// unigram
	vocab    *trie // normal pieces -> id
	minScore float32
	maxScore float32
}

// Load reads a SentencePiece model file.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse decodes a serialized ModelProto (the content of a `.model` file)
// and checks it as the C++ library does when loading. data is not kept.
func Parse(data []byte) (*Model, error) {
	if len(data) == 0 {
		return nil, errors.New("spm: empty model")
	}
	mp, err := parseModelProto(data)
	if err != nil {
		return nil, fmt.Errorf("spm: bad model: %w", err)
	}
	m := &Model{proto: mp}
	if err := m.init(); err != nil {
		return nil, fmt.Errorf("spm: bad model: %w", err)
	}
	return m, nil
}

// init is ModelInterface::InitializePieces plus the model-specific setup.
func (m *Model) init() error {
	mp := m.proto
	switch mp.trainer.modelType {
	case modelUnigram:
		m.kind = "unigram"
	case modelBPE:
		m.kind = "bpe"
	case modelWord:
		return errors.New("model type WORD is not supported (only unigram and BPE)")
	case modelChar:
		return errors.New("model type CHAR is not supported (only unigram and BPE)")
	}
	if len(mp.pieces) == 0 {
		return errors.New("no pieces")
	}
	if len(mp.pieces) > math.MaxInt32 {
		return errors.New("too many pieces")
	}
	m.pieces = make([]Piece, len(mp.pieces))
	m.normal = make(map[string]int32, len(mp.pieces))
	m.reserved = make(map[string]int32)
	m.unk = -1
	for i := range m.byteIDs {
		m.byteIDs[i] = -1
	}
	var userDefined []trieKey
	for i, p := range mp.pieces {
		m.pieces[i] = Piece{Text: p.piece, Score: p.score, Type: p.typ}
		if p.piece == "" {
			return fmt.Errorf("piece %d is empty", i)
		}
		dict := m.reserved
		if p.typ == Normal || p.typ == UserDefined || p.typ == Unused {
			dict = m.normal
		}
		if _, dup := dict[p.piece]; dup {
			return fmt.Errorf("piece %d %q is already defined", i, p.piece)
		}
		dict[p.piece] = int32(i)
		switch p.typ {
		case UserDefined:
			userDefined = append(userDefined, trieKey{p.piece, int32(i)})
		case Unknown:
			if m.unk >= 0 {
				return fmt.Errorf("piece %d: unknown piece is already defined (piece %d)", i, m.unk)
			}
			m.unk = int32(i)
		case Byte:
			if !mp.trainer.byteFallback {
				return fmt.Errorf("piece %d: byte piece %q is found although byte_fallback is false", i, p.piece)
			}
			b, ok := pieceToByte(p.piece)
			if !ok {
				return fmt.Errorf("piece %d: byte piece %q is invalid", i, p.piece)
			}
			m.byteIDs[b] = int32(i)
		}
	}
	if m.unk < 0 {
		return errors.New("no unknown piece (<unk>) is defined")
	}
	if mp.trainer.byteFallback {
		for b, id := range m.byteIDs {
			if id < 0 {
				return fmt.Errorf("byte_fallback is true but there is no byte piece <0x%02X>", b)
			}
		}
	}
	m.norm = normalizer{spec: mp.normalizer, suffixSpace: mp.trainer.treatWhitespaceAsSuffix}
	if len(mp.normalizer.precompiledCharsmap) > 0 {
		cm, err := decodeCharsMap(mp.normalizer.precompiledCharsmap)
		if err != nil {
			return err
		}
		m.norm.cmap = cm
	}
	if d := mp.denormalizer; len(d.precompiledCharsmap) > 0 {
		cm, err := decodeCharsMap(d.precompiledCharsmap)
		if err != nil {
			return fmt.Errorf("denormalizer: %w", err)
		}
		m.denorm = &normalizer{spec: d, cmap: cm}
	}
	if len(userDefined) > 0 {
		m.norm.matcher = newTrie(userDefined)
		if m.norm.matcher.empty() {
			m.norm.matcher = nil
		}
	}
	m.bosID = m.specialID(mp.trainer.bosPiece, "<s>", Control)
	m.eosID = m.specialID(mp.trainer.eosPiece, "</s>", Control)
	m.padID = m.specialID(mp.trainer.padPiece, "<pad>", Control)

	if m.kind == "unigram" {
		m.minScore = math.MaxFloat32
		m.maxScore = math.SmallestNonzeroFloat32 * (1 << 23) // FLT_MIN, the smallest normal float
		keys := make([]trieKey, 0, len(m.normal))
		for i, p := range m.pieces {
			if p.Type == Normal {
				m.minScore = min(m.minScore, p.Score)
				m.maxScore = max(m.maxScore, p.Score)
			}
			if p.Type == Normal || p.Type == UserDefined || p.Type == Unused {
				keys = append(keys, trieKey{p.Text, int32(i)})
			}
		}
		if len(keys) == 0 {
			return errors.New("no pieces are loaded (unigram needs normal pieces)")
		}
		m.vocab = newTrie(keys)
		if m.vocab.empty() {
			return errors.New("no entry is found in the trie")
		}
	}
	return nil
}

// specialID is SentencePieceProcessor::bos_id and friends: the id of the
// named piece when it has type want, else -1.
func (m *Model) specialID(name, def string, want PieceType) int {
	if name == "" {
		name = def
	}
	id := m.pieceToID(name)
	if id >= 0 && m.pieces[id].Type == want {
		return int(id)
	}
	return -1
}

// pieceToID is ModelInterface::PieceToId: reserved pieces first, then the
// others, else the unknown id.
func (m *Model) pieceToID(s string) int32 {
	if id, ok := m.reserved[s]; ok {
		return id
	}
	if id, ok := m.normal[s]; ok {
		return id
	}
	return m.unk
}

// pieceToByte parses "<0xXX>" (upper-case hex, as ByteToPiece writes it).
func pieceToByte(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			b = b<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			b = b<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}

// Size returns the number of pieces.
func (m *Model) Size() int { return len(m.pieces) }

// Piece returns piece id; an id out of range gives the zero Piece.
func (m *Model) Piece(id int) Piece {
	if id < 0 || id >= len(m.pieces) {
		return Piece{}
	}
	return m.pieces[id]
}

// ID returns the id of a piece and whether the vocabulary has it.
func (m *Model) ID(piece string) (int, bool) {
	if id, ok := m.reserved[piece]; ok {
		return int(id), true
	}
	if id, ok := m.normal[piece]; ok {
		return int(id), true
	}
	return -1, false
}

// Kind returns "unigram" or "bpe".
func (m *Model) Kind() string { return m.kind }

// UNK returns the id of the unknown piece.
func (m *Model) UNK() int { return int(m.unk) }

// BOS returns the id of the beginning-of-sentence control piece, -1 when absent.
func (m *Model) BOS() int { return m.bosID }

// EOS returns the id of the end-of-sentence control piece, -1 when absent.
func (m *Model) EOS() int { return m.eosID }

// PAD returns the id of the padding control piece, -1 when absent.
func (m *Model) PAD() int { return m.padID }

// ByteFallback reports whether unknown characters are encoded as bytes.
func (m *Model) ByteFallback() bool { return m.proto.trainer.byteFallback }

// NormalizerName returns the name of the model's normalization rule
// ("nmt_nfkc", "identity", ...).
func (m *Model) NormalizerName() string { return m.proto.normalizer.name }

// PrecompiledCharsmap returns the normalizer's compiled rules (nil for the
// identity normalizer). The caller must not modify it.
func (m *Model) PrecompiledCharsmap() []byte { return m.proto.normalizer.precompiledCharsmap }

// Normalize returns text as the model's normalizer rewrites it before
// segmentation, with U+2581 for spaces when the model escapes them.
func (m *Model) Normalize(text string) string { return m.norm.normalize(text) }

// span is one segment of the normalized text and its piece id.
type span struct {
	begin, end int32
	id         int32
}

// Encode returns the ids of text, exactly as spm_encode --output_format=id
// prints them: no BOS or EOS is added.
func (m *Model) Encode(text string) []int {
	normalized := m.norm.normalize(text)
	if normalized == "" {
		return []int{}
	}
	var spans []span
	if m.kind == "bpe" {
		spans = m.encodeBPE(normalized)
	} else {
		spans = m.encodeUnigram(normalized)
	}
	ids := make([]int, 0, len(spans))
	prevUnk := false
	fallback := m.proto.trainer.byteFallback
	for _, s := range spans {
		t := m.pieces[s.id].Type
		isUnk := t == Unknown
		switch {
		case t == Control:
			ids = append(ids, int(s.id))
		case isUnk && fallback:
			for _, b := range []byte(normalized[s.begin:s.end]) {
				ids = append(ids, int(m.byteIDs[b]))
			}
		case isUnk && prevUnk:
			// A run of unknown pieces becomes one.
		default:
			ids = append(ids, int(s.id))
		}
		prevUnk = isUnk
	}
	return ids
}

// Decode turns ids back into text as SentencePieceProcessor::Decode does:
// control pieces vanish, U+2581 becomes a space, the leading space that
// the dummy prefix added is dropped, runs of byte pieces are read as UTF-8
// (an invalid byte gives U+FFFD) and the unknown piece reads as the
// model's unk_surface (" ⁇ "), and the model's denormalizer, if it has
// one, rewrites the result. Ids out of range are skipped.
func (m *Model) Decode(ids []int) string {
	spec := &m.proto.normalizer
	var text strings.Builder
	var pending []byte // bytes of the current run of byte pieces
	flush := func() {
		for off := 0; off < len(pending); {
			n, ok := validPrefix(string(pending[off:]))
			if !ok {
				text.WriteString("\ufffd")
			} else {
				text.Write(pending[off : off+n])
			}
			off += n
		}
		pending = pending[:0]
	}
	bosWS, bosWSSeen := true, false
	for _, id := range ids {
		if id < 0 || id >= len(m.pieces) {
			continue
		}
		p := m.pieces[id]
		if p.Type == Byte {
			b, _ := pieceToByte(p.Text)
			pending = append(pending, b)
			continue
		}
		flush()
		if bosWSSeen || text.Len() > 0 {
			bosWS = false
		}
		bosWSSeen = false
		switch p.Type {
		case Control:
			continue
		case Unknown:
			text.WriteString(m.proto.trainer.unkSurface)
			continue
		}
		piece := p.Text
		if bosWS && (spec.addDummyPrefix || spec.removeExtraWhitespaces) {
			var had bool
			piece, had = strings.CutPrefix(piece, spaceSymbol)
			bosWSSeen = had && !spec.removeExtraWhitespaces
		}
		text.WriteString(strings.ReplaceAll(piece, spaceSymbol, " "))
	}
	flush()
	if m.denorm != nil {
		return m.denorm.normalize(text.String())
	}
	return text.String()
}
