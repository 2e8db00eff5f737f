package spm

import (
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"
)

// protoBuf writes the protobuf wire format for building test models.
type protoBuf []byte

func (b protoBuf) varint(v uint64) protoBuf {
	return binary.AppendUvarint(b, v)
}

func (b protoBuf) tag(num, wire int) protoBuf { return b.varint(uint64(num<<3 | wire)) }

func (b protoBuf) bytes(num int, s []byte) protoBuf {
	return append(b.tag(num, wireBytes).varint(uint64(len(s))), s...)
}

func (b protoBuf) str(num int, s string) protoBuf { return b.bytes(num, []byte(s)) }

func (b protoBuf) uint(num int, v uint64) protoBuf { return b.tag(num, wireVarint).varint(v) }

func (b protoBuf) float(num int, f float32) protoBuf {
	return binary.LittleEndian.AppendUint32(b.tag(num, wireFixed32), math.Float32bits(f))
}

type testPiece struct {
	text  string
	score float32
	typ   PieceType
}

// buildModel serializes a ModelProto with pieces, trainer_spec and
// normalizer_spec fields given as already encoded messages.
func buildModel(pieces []testPiece, trainer, normalizer protoBuf) []byte {
	var b protoBuf
	for _, p := range pieces {
		var pb protoBuf
		pb = pb.str(1, p.text).float(2, p.score)
		if p.typ != Normal {
			pb = pb.uint(3, uint64(p.typ))
		}
		b = b.bytes(1, pb)
	}
	if trainer != nil {
		b = b.bytes(2, trainer)
	}
	if normalizer != nil {
		b = b.bytes(3, normalizer)
	}
	return b
}

func basicPieces() []testPiece {
	return []testPiece{
		{"<unk>", 0, Unknown}, {"<s>", 0, Control}, {"</s>", 0, Control},
		{"\u2581", -1, Normal}, {"a", -2, Normal}, {"b", -2.5, Normal}, {"\u2581ab", -1.5, Normal},
		{"ab", -3, Normal}, {"<u>", 0, UserDefined}, {"\u2581a", -2.2, Unused},
	}
}

func TestParseHandBuilt(t *testing.T) {
	for _, kind := range []uint64{modelUnigram, modelBPE} {
		data := buildModel(basicPieces(), protoBuf(nil).uint(3, kind), protoBuf(nil).str(1, "identity"))
		m, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Size() != 10 || m.UNK() != 0 || m.BOS() != 1 || m.EOS() != 2 || m.PAD() != -1 {
			t.Fatalf("size %d unk %d bos %d eos %d pad %d", m.Size(), m.UNK(), m.BOS(), m.EOS(), m.PAD())
		}
		if p := m.Piece(6); p.Text != "\u2581ab" || p.Score != -1.5 || p.Type != Normal {
			t.Fatalf("piece 6 = %+v", p)
		}
		if id, ok := m.ID("<u>"); !ok || id != 8 {
			t.Fatalf("ID(<u>) = %d, %v", id, ok)
		}
		if _, ok := m.ID("zz"); ok {
			t.Fatal("ID(zz) found")
		}
		// Unigram: ▁ab (-1.5) beats ▁+a+b; BPE: ▁+a merges first (the
		// unused ▁a, -2.2, beats ab, -3), then ▁a+b gives ▁ab. "<u>" stays
		// whole, "c" is unknown and a run of unknowns is one id.
		got := m.Encode("ab<u>cc")
		want := []int{6, 8, 0}
		if !equalInts(got, want) {
			t.Errorf("%s: Encode = %v, want %v", m.Kind(), got, want)
		}
		// A merged UNUSED piece is split back into its parts.
		if got := m.Encode("a"); !equalInts(got, []int{3, 4}) {
			t.Errorf("%s: Encode(a) = %v, want [3 4]", m.Kind(), got)
		}
		if s := m.Decode(got); s != "ab<u> \u2047 " {
			t.Errorf("%s: Decode = %q", m.Kind(), s)
		}
	}
}

func equalInts(a, b []int) bool {
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

func TestParseErrors(t *testing.T) {
	bytePieces := func() []testPiece {
		ps := basicPieces()
		for b := 0; b < 256; b++ {
			ps = append(ps, testPiece{"<0x" + strings.ToUpper(string("0123456789abcdef"[b>>4])+string("0123456789abcdef"[b&15])) + ">", 0, Byte})
		}
		return ps
	}
	fallback := protoBuf(nil).uint(35, 1)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty model"},
		{"garbage", []byte("not a model at all"), "bad model"},
		{"truncated", buildModel(basicPieces(), nil, nil)[:20], "exceeds"},
		{"no pieces", buildModel(nil, protoBuf(nil).uint(3, modelUnigram), nil), "no pieces"},
		{"empty piece", buildModel(append(basicPieces(), testPiece{"", 0, Normal}), nil, nil), "empty"},
		{"duplicate", buildModel(append(basicPieces(), testPiece{"a", 0, Normal}), nil, nil), "already defined"},
		{"two unk", buildModel(append(basicPieces(), testPiece{"<unk2>", 0, Unknown}), nil, nil), "unknown piece is already"},
		{"no unk", buildModel(basicPieces()[1:], nil, nil), "no unknown piece"},
		{"byte without fallback", buildModel(append(basicPieces(), testPiece{"<0x41>", 0, Byte}), nil, nil), "byte_fallback is false"},
		{"bad byte", buildModel(append(basicPieces(), testPiece{"<0xZZ>", 0, Byte}), fallback, nil), "invalid"},
		{"missing bytes", buildModel(append(basicPieces(), testPiece{"<0x41>", 0, Byte}), fallback, nil), "no byte piece <0x00>"},
		{"word", buildModel(basicPieces(), protoBuf(nil).uint(3, modelWord), nil), "WORD"},
		{"charsmap short", buildModel(basicPieces(), nil, protoBuf(nil).bytes(2, []byte{1, 0, 0})), "charsmap"},
		{"charsmap size", buildModel(basicPieces(), nil, protoBuf(nil).bytes(2, []byte{9, 0, 0, 0, 1})), "charsmap"},
		{"bad wire type", []byte{0x0f}, "wire type"},
		{"long varint", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "varint"},
	} {
		_, err := Parse(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "spm: ") {
			t.Errorf("%s: Parse error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := Parse(buildModel(bytePieces(), fallback, nil)); err != nil {
		t.Errorf("256 byte pieces with fallback: %v", err)
	}
}

func TestLoadErrorNamesFile(t *testing.T) {
	path := t.TempDir() + "/bad.model"
	if err := os.WriteFile(path, []byte{0x0f}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load error %v does not name %s", err, path)
	}
}

// TestProtoMerge checks protobuf semantics: the last singular value wins
// and repeated sub-messages merge.
func TestProtoMerge(t *testing.T) {
	data := buildModel(basicPieces(), protoBuf(nil).uint(3, modelBPE), protoBuf(nil).uint(3, 0))
	data = protoBuf(data).bytes(2, protoBuf(nil).uint(42, 5))        // second trainer_spec: eos_id only
	data = protoBuf(data).bytes(3, protoBuf(nil).str(1, "identity")) // second normalizer_spec
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind() != "bpe" || m.proto.trainer.eosID != 5 {
		t.Errorf("kind %s eos_id %d", m.Kind(), m.proto.trainer.eosID)
	}
	if m.proto.normalizer.addDummyPrefix || m.NormalizerName() != "identity" {
		t.Errorf("normalizer %+v", m.proto.normalizer)
	}
	if got := m.Normalize("  a  b "); got != "a\u2581b" {
		t.Errorf("Normalize = %q", got)
	}
}
