package spm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// This file reads the protobuf wire format of sentencepiece_model.proto
// (proto2) by hand. Only the fields the encoder and decoder need are kept;
// every other field is skipped, as protobuf does with unknown fields.

// Wire types of the protobuf encoding.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireStart   = 3
	wireEnd     = 4
	wireFixed32 = 5
)

// Model types of TrainerSpec.model_type.
const (
	modelUnigram = 1
	modelBPE     = 2
	modelWord    = 3
	modelChar    = 4
)

// wireReader walks over the fields of one protobuf message.
type wireReader struct {
	buf []byte
	off int
	msg string // message name for errors
}

var errTruncated = errors.New("truncated")

func (r *wireReader) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 70; shift += 7 {
		if r.off >= len(r.buf) {
			return 0, errTruncated
		}
		b := r.buf[r.off]
		r.off++
		if shift == 63 && b > 1 {
			return 0, errors.New("varint overflows 64 bits")
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint longer than 10 bytes")
}

// field is one decoded field: its number, wire type and payload.
type field struct {
	num  uint64
	wire int
	u    uint64 // varint, fixed32 and fixed64 payloads
	b    []byte // length-delimited payload
}

// next reads the next field; ok is false at the end of the message.
func (r *wireReader) next() (f field, ok bool, err error) {
	if r.off >= len(r.buf) {
		return field{}, false, nil
	}
	start := r.off
	key, err := r.varint()
	if err != nil {
		return field{}, false, r.errorf(start, "field key: %v", err)
	}
	f.num, f.wire = key>>3, int(key&7)
	if f.num == 0 || f.num > 1<<29-1 {
		return field{}, false, r.errorf(start, "invalid field number %d", f.num)
	}
	switch f.wire {
	case wireVarint:
		if f.u, err = r.varint(); err != nil {
			return field{}, false, r.errorf(start, "field %d: %v", f.num, err)
		}
	case wireFixed64:
		if len(r.buf)-r.off < 8 {
			return field{}, false, r.errorf(start, "field %d: %v", f.num, errTruncated)
		}
		f.u = binary.LittleEndian.Uint64(r.buf[r.off:])
		r.off += 8
	case wireFixed32:
		if len(r.buf)-r.off < 4 {
			return field{}, false, r.errorf(start, "field %d: %v", f.num, errTruncated)
		}
		f.u = uint64(binary.LittleEndian.Uint32(r.buf[r.off:]))
		r.off += 4
	case wireBytes:
		n, err := r.varint()
		if err != nil {
			return field{}, false, r.errorf(start, "field %d length: %v", f.num, err)
		}
		if n > uint64(len(r.buf)-r.off) {
			return field{}, false, r.errorf(start, "field %d: length %d exceeds the remaining %d bytes", f.num, n, len(r.buf)-r.off)
		}
		f.b = r.buf[r.off : r.off+int(n)]
		r.off += int(n)
	case wireStart:
		if err := r.skipGroup(f.num, 0); err != nil {
			return field{}, false, r.errorf(start, "field %d: %v", f.num, err)
		}
	default:
		return field{}, false, r.errorf(start, "field %d has invalid wire type %d", f.num, f.wire)
	}
	return f, true, nil
}

// skipGroup skips a deprecated group up to its end tag.
func (r *wireReader) skipGroup(num uint64, depth int) error {
	if depth > 64 {
		return errors.New("groups nested too deeply")
	}
	for {
		key, err := r.varint()
		if err != nil {
			return err
		}
		n, w := key>>3, int(key&7)
		switch w {
		case wireVarint:
			_, err = r.varint()
		case wireFixed64:
			if len(r.buf)-r.off < 8 {
				return errTruncated
			}
			r.off += 8
		case wireFixed32:
			if len(r.buf)-r.off < 4 {
				return errTruncated
			}
			r.off += 4
		case wireBytes:
			var l uint64
			if l, err = r.varint(); err == nil {
				if l > uint64(len(r.buf)-r.off) {
					return errTruncated
				}
				r.off += int(l)
			}
		case wireStart:
			err = r.skipGroup(n, depth+1)
		case wireEnd:
			if n != num {
				return fmt.Errorf("group %d closed by end tag %d", num, n)
			}
			return nil
		default:
			return fmt.Errorf("invalid wire type %d", w)
		}
		if err != nil {
			return err
		}
	}
}

func (r *wireReader) errorf(off int, format string, args ...any) error {
	return fmt.Errorf("%s at byte %d: %s", r.msg, off, fmt.Sprintf(format, args...))
}

// protoPiece is ModelProto.SentencePiece.
type protoPiece struct {
	piece string
	score float32
	typ   PieceType
}

// trainerSpec holds the TrainerSpec fields that matter when encoding.
type trainerSpec struct {
	modelType               int
	treatWhitespaceAsSuffix bool
	allowWhitespaceOnly     bool
	splitDigits             bool
	byteFallback            bool
	unkID, bosID, eosID     int32
	padID                   int32
	unkPiece, bosPiece      string
	eosPiece, padPiece      string
	unkSurface              string
}

// normalizerSpec is NormalizerSpec.
type normalizerSpec struct {
	name                   string
	precompiledCharsmap    []byte
	addDummyPrefix         bool
	removeExtraWhitespaces bool
	escapeWhitespaces      bool
	present                bool
}

// modelProto is the part of ModelProto that palid reads.
type modelProto struct {
	pieces       []protoPiece
	trainer      trainerSpec
	normalizer   normalizerSpec
	denormalizer normalizerSpec
}

func defaultTrainerSpec() trainerSpec {
	return trainerSpec{
		modelType:  modelUnigram,
		unkID:      0,
		bosID:      1,
		eosID:      2,
		padID:      -1,
		unkPiece:   "<unk>",
		bosPiece:   "<s>",
		eosPiece:   "</s>",
		padPiece:   "<pad>",
		unkSurface: " \u2047 ",
	}
}

func defaultNormalizerSpec() normalizerSpec {
	return normalizerSpec{addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true}
}

// parseModelProto decodes a serialized ModelProto. Like protobuf, a
// singular field seen twice keeps the last value and a sub-message seen
// twice is merged.
func parseModelProto(data []byte) (*modelProto, error) {
	mp := &modelProto{
		trainer:      defaultTrainerSpec(),
		normalizer:   defaultNormalizerSpec(),
		denormalizer: defaultNormalizerSpec(),
	}
	r := wireReader{buf: data, msg: "ModelProto"}
	for {
		f, ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if f.wire != wireBytes {
			continue
		}
		switch f.num {
		case 1:
			p, err := parsePiece(f.b, len(mp.pieces))
			if err != nil {
				return nil, err
			}
			mp.pieces = append(mp.pieces, p)
		case 2:
			if err := parseTrainerSpec(f.b, &mp.trainer); err != nil {
				return nil, err
			}
		case 3:
			if err := parseNormalizerSpec(f.b, &mp.normalizer, "normalizer_spec"); err != nil {
				return nil, err
			}
		case 5:
			if err := parseNormalizerSpec(f.b, &mp.denormalizer, "denormalizer_spec"); err != nil {
				return nil, err
			}
		}
	}
	return mp, nil
}

func parsePiece(data []byte, index int) (protoPiece, error) {
	p := protoPiece{typ: Normal}
	r := wireReader{buf: data, msg: fmt.Sprintf("piece %d", index)}
	for {
		f, ok, err := r.next()
		if err != nil {
			return p, err
		}
		if !ok {
			return p, nil
		}
		switch {
		case f.num == 1 && f.wire == wireBytes:
			p.piece = string(f.b)
		case f.num == 2 && f.wire == wireFixed32:
			p.score = math.Float32frombits(uint32(f.u))
		case f.num == 3 && f.wire == wireVarint:
			// proto2 keeps an unknown enum value out of the field.
			if t := int32(f.u); t >= int32(Normal) && t <= int32(Byte) {
				p.typ = PieceType(t)
			}
		}
	}
}

func parseTrainerSpec(data []byte, ts *trainerSpec) error {
	r := wireReader{buf: data, msg: "trainer_spec"}
	for {
		f, ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if f.wire == wireVarint {
			v := f.u
			switch f.num {
			case 3:
				if t := int32(v); t >= modelUnigram && t <= modelChar {
					ts.modelType = int(t)
				}
			case 24:
				ts.treatWhitespaceAsSuffix = v != 0
			case 25:
				ts.splitDigits = v != 0
			case 26:
				ts.allowWhitespaceOnly = v != 0
			case 35:
				ts.byteFallback = v != 0
			case 40:
				ts.unkID = int32(v)
			case 41:
				ts.bosID = int32(v)
			case 42:
				ts.eosID = int32(v)
			case 43:
				ts.padID = int32(v)
			}
			continue
		}
		if f.wire == wireBytes {
			switch f.num {
			case 44:
				ts.unkSurface = string(f.b)
			case 45:
				ts.unkPiece = string(f.b)
			case 46:
				ts.bosPiece = string(f.b)
			case 47:
				ts.eosPiece = string(f.b)
			case 48:
				ts.padPiece = string(f.b)
			}
		}
	}
}

func parseNormalizerSpec(data []byte, ns *normalizerSpec, name string) error {
	ns.present = true
	r := wireReader{buf: data, msg: name}
	for {
		f, ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		switch {
		case f.num == 1 && f.wire == wireBytes:
			ns.name = string(f.b)
		case f.num == 2 && f.wire == wireBytes:
			ns.precompiledCharsmap = bytes.Clone(f.b)
		case f.num == 3 && f.wire == wireVarint:
			ns.addDummyPrefix = f.u != 0
		case f.num == 4 && f.wire == wireVarint:
			ns.removeExtraWhitespaces = f.u != 0
		case f.num == 5 && f.wire == wireVarint:
			ns.escapeWhitespaces = f.u != 0
		}
	}
}
