package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/palid/palid/neon"
)

// sampleKVs covers every value type, arrays of each, and nested arrays.
func sampleKVs() []KV {
	return []KV{
		{"general.architecture", "t5"},
		{"u8", uint8(200)}, {"i8", int8(-100)}, {"u16", uint16(60000)}, {"i16", int16(-30000)},
		{"u32", uint32(4000000000)}, {"i32", int32(-2000000000)},
		{"u64", uint64(1) << 63}, {"i64", int64(-1) << 62},
		{"f32", float32(1.5e-6)}, {"f64", math.Pi}, {"yes", true}, {"no", false},
		{"empty", ""}, {"utf8", "héllo ▁世界"},
		{"a.u8", []uint8{0, 1, 255}}, {"a.i8", []int8{-128, 0, 127}},
		{"a.u16", []uint16{1, 65535}}, {"a.i16", []int16{-1, 2}},
		{"a.u32", []uint32{7}}, {"a.i32", []int32{-7, 8, 9}},
		{"a.u64", []uint64{math.MaxUint64}}, {"a.i64", []int64{math.MinInt64}},
		{"a.f32", []float32{0.5, -2, float32(math.Inf(1))}}, {"a.f64", []float64{1e300}},
		{"a.bool", []bool{true, false, true}}, {"a.str", []string{"a", "", "▁b"}},
		{"a.empty", []float32{}},
		{"a.nested", []any{[]uint32{1, 2}, []string{"x"}, []any{[]int8{-1}}}},
	}
}

// sampleTensors returns tensors of every type with random contents.
func sampleTensors(rng *rand.Rand) []Tensor {
	mk := func(name string, t neon.DType, dims ...uint64) Tensor {
		n := uint64(1)
		for _, d := range dims {
			n *= d
		}
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		data := make([]byte, neon.RowBytes(t, int(n)))
		neon.Quantize(t, data, src)
		return Tensor{Name: name, Type: t, Dims: dims, Data: data}
	}
	return []Tensor{
		mk("a.f32", neon.F32, 5, 3),
		mk("b.f16", neon.F16, 7),
		mk("c.q8_0", neon.Q8_0, 64, 3),
		mk("d.q4_0", neon.Q4_0, 32, 2, 1, 2),
		mk("e.scalar", neon.F32, 1),
	}
}

func buildSample(t testing.TB, align uint32) ([]byte, []KV, []Tensor) {
	t.Helper()
	w := NewWriter()
	kvs := sampleKVs()
	if align != 0 {
		kvs = append(kvs, KV{"general.alignment", align})
	}
	for _, kv := range kvs {
		w.Add(kv.Key, kv.Value)
	}
	ts := sampleTensors(rand.New(rand.NewPCG(1, 2)))
	for _, tt := range ts {
		if err := w.AddTensor(tt.Name, tt.Type, tt.Dims, tt.Data); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes(), kvs, ts
}

func checkSample(t *testing.T, f *File, kvs []KV, ts []Tensor, align int) {
	t.Helper()
	if f.Version != 3 || f.Alignment != align {
		t.Fatalf("version %d alignment %d, want 3 and %d", f.Version, f.Alignment, align)
	}
	if !reflect.DeepEqual(f.KVs, kvs) {
		t.Fatalf("KVs differ:\n got %#v\nwant %#v", f.KVs, kvs)
	}
	if len(f.Tensors) != len(ts) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(ts))
	}
	for i, want := range ts {
		if f.Tensors[i].Name != want.Name {
			t.Errorf("tensor %d is %q, want %q", i, f.Tensors[i].Name, want.Name)
		}
		if f.Tensors[i].Offset%uint64(align) != 0 {
			t.Errorf("tensor %s offset %d not aligned to %d", want.Name, f.Tensors[i].Offset, align)
		}
		got, err := f.Tensor(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != want.Type || !reflect.DeepEqual(got.Dims, want.Dims) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %s differs: %v %v (%d bytes), want %v %v (%d bytes)", want.Name, got.Type, got.Dims, len(got.Data), want.Type, want.Dims, len(want.Data))
		}
		if err := got.Expect(want.Dims...); err != nil {
			t.Error(err)
		}
		vals, err := got.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		ref := make([]float32, len(vals))
		neon.Dequantize(want.Type, ref, want.Data)
		if !reflect.DeepEqual(vals, ref) {
			t.Errorf("tensor %s: Float32s differs from Dequantize", want.Name)
		}
	}
	if (f.DataOffset() % align) != 0 {
		t.Errorf("data section at %d, not aligned to %d", f.DataOffset(), align)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 64, 1} {
		data, kvs, ts := buildSample(t, align)
		want := int(align)
		if align == 0 {
			want = DefaultAlignment
		}
		f, err := Parse(data)
		if err != nil {
			t.Fatalf("alignment %d: %v", align, err)
		}
		checkSample(t, f, kvs, ts, want)
	}
}

func TestOpenAndWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	w := NewWriter()
	kvs := sampleKVs()
	for _, kv := range kvs {
		w.Add(kv.Key, kv.Value)
	}
	ts := sampleTensors(rand.New(rand.NewPCG(3, 4)))
	for i, tt := range ts {
		var err error
		if i%2 == 0 {
			err = w.AddTensor(tt.Name, tt.Type, tt.Dims, tt.Data)
		} else {
			err = w.AddTensorFunc(tt.Name, tt.Type, tt.Dims, func(dst []byte) error { copy(dst, tt.Data); return nil })
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries after WriteFile, want 1 (temporary file left?)", len(ents))
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, f, kvs, ts, DefaultAlignment)
	if f.Path() != path {
		t.Errorf("Path() = %q", f.Path())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Tensor("a.f32"); err == nil {
		t.Error("Tensor after Close succeeded")
	}
	if err := f.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "absent.gguf")); err == nil || !os.IsNotExist(err) {
		t.Errorf("absent file: %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "too short") {
		t.Errorf("empty file: %v", err)
	}
	bad := filepath.Join(dir, "bad.gguf")
	data, _, _ := buildSample(t, 0)
	os.WriteFile(bad, data[:len(data)/2], 0o644)
	_, err := Open(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+": gguf: ") {
		t.Errorf("truncated file: %v", err)
	}
}

// TestTruncated cuts a valid file at every length short of its last
// tensor's end: each must be refused, never panic.
func TestTruncated(t *testing.T) {
	data, _, _ := buildSample(t, 0)
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	end := 0
	for _, ti := range f.Tensors {
		end = max(end, f.DataOffset()+int(ti.Offset+ti.Size()))
	}
	for n := 0; n < end; n++ {
		if _, err := Parse(data[:n]); err == nil {
			t.Fatalf("file cut at %d of %d bytes parsed without error", n, len(data))
		} else if !strings.HasPrefix(err.Error(), "gguf: ") {
			t.Fatalf("cut at %d: error %q lacks the gguf prefix", n, err)
		}
	}
	if _, err := Parse(data[:end]); err != nil {
		t.Fatalf("file cut after its last tensor (only padding lost): %v", err)
	}
}

// raw builds GGUF bytes by hand, for files the Writer refuses to make.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) u64(v uint64) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }
func (r *raw) header(nt, nkv uint64) *raw {
	r.WriteString("GGUF")
	return r.u32(3).u64(nt).u64(nkv)
}
func (r *raw) tensor(name string, typ uint32, off uint64, dims ...uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(typ).u64(off)
}
func (r *raw) padTo(a int) *raw {
	for r.Len()%a != 0 {
		r.WriteByte(0)
	}
	return r
}
func (r *raw) zeros(n int) *raw { r.Write(make([]byte, n)); return r }

func TestCorrupt(t *testing.T) {
	nr := func() *raw { return new(raw) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte("GG"), "too short for the magic"},
		{"magic", []byte("GGML\x03\x00\x00\x00"), `magic "GGML"`},
		{"version", nr().header(0, 0).Bytes()[:4:4], "version at offset 4"},
		{"version1", append([]byte("GGUF"), 1, 0, 0, 0), "unsupported GGUF version 1"},
		{"bigendian", append([]byte("GGUF"), 0, 0, 0, 3), "big-endian"},
		{"counts", append([]byte("GGUF"), 3, 0, 0, 0, 0, 0), "tensor count at offset 8"},
		{"kvcount", nr().header(0, 1<<60).Bytes(), "metadata count 1152921504606846976 is impossible"},
		{"tcount", nr().header(1<<40, 0).zeros(100).Bytes(), "tensor count 1099511627776 is impossible"},
		{"keylen", nr().header(0, 1).u64(1 << 50).zeros(8).Bytes(), "metadata key 0 at offset 24 has length 1125899906842624"},
		{"valtype", nr().header(0, 1).str("k").u32(13).zeros(8).Bytes(), `key "k": unknown value type 13`},
		{"valtrunc", nr().header(0, 1).str("k").u32(typeUint64).zeros(1).Bytes(), `value of key "k" at offset`},
		{"strtrunc", nr().header(0, 1).str("k").u32(typeString).u64(99).zeros(1).Bytes(), `value of key "k" at offset 37 has length 99`},
		{"bool", nr().header(0, 1).str("k").u32(typeBool).u32(2).Bytes(), `key "k": bool value 2`},
		{"boolarr", nr().header(0, 1).str("k").u32(typeArray).u32(typeBool).u64(2).u32(0x0201).Bytes(), `key "k": bool element 1 is 2`},
		{"arrtype", nr().header(0, 1).str("k").u32(typeArray).u32(77).u64(0).Bytes(), `key "k": unknown array element type 77`},
		{"arrlen", nr().header(0, 1).str("k").u32(typeArray).u32(typeUint32).u64(1 << 62).zeros(4).Bytes(), `array of key "k" at offset 37 claims 4611686018427387904 uint32 elements`},
		{"arrstr", nr().header(0, 1).str("k").u32(typeArray).u32(typeString).u64(1).u64(5).Bytes(), `element 0 of key "k"`},
		{"deep", func() []byte {
			r := nr().header(0, 1).str("k").u32(typeArray)
			for i := 0; i < 10; i++ {
				r.u32(typeArray).u64(1)
			}
			return r.zeros(16).Bytes()
		}(), `key "k": arrays nested deeper than 8`},
		{"dupkey", nr().header(0, 2).str("k").u32(typeUint8).zeros(1).str("k").u32(typeUint8).zeros(1).Bytes(), `duplicate metadata key "k"`},
		{"aligntype", nr().header(0, 1).str("general.alignment").u32(typeUint64).u64(32).Bytes(), "general.alignment is uint64, want uint32"},
		{"alignpow", nr().header(0, 1).str("general.alignment").u32(typeUint32).u32(48).Bytes(), "general.alignment 48 is not a power of two"},
		{"alignzero", nr().header(0, 1).str("general.alignment").u32(typeUint32).u32(0).Bytes(), "general.alignment 0 is not a power of two"},
		{"ggmltype", nr().header(1, 0).tensor("x", 13, 0, 32).padTo(32).zeros(64).Bytes(), `tensor "x": unknown ggml type 13`},
		{"ndims0", nr().header(1, 0).tensor("x", 0, 0).padTo(32).zeros(64).Bytes(), `tensor "x": 0 dimensions, want 1 to 4`},
		{"ndims5", nr().header(1, 0).tensor("x", 0, 0, 1, 1, 1, 1, 1).padTo(32).zeros(64).Bytes(), `tensor "x": 5 dimensions`},
		{"dimbig", nr().header(1, 0).tensor("x", 0, 0, 1<<63).padTo(32).zeros(64).Bytes(), `tensor "x": dimension 0 is 9223372036854775808, beyond int64`},
		{"dimoverflow", nr().header(1, 0).tensor("x", 0, 0, 1<<32, 1<<32).padTo(32).zeros(64).Bytes(), `tensor "x": dimensions [4294967296 4294967296] overflow`},
		{"bytesoverflow", nr().header(1, 0).tensor("x", 0, 0, 1<<62).padTo(32).zeros(64).Bytes(), `tensor "x": dimensions [4611686018427387904] make more than 2^63 bytes`},
		{"block", nr().header(1, 0).tensor("x", 8, 0, 33).padTo(32).zeros(64).Bytes(), `tensor "x": row of 33 elements is not a multiple of the q8_0 block size 32`},
		{"name", nr().header(1, 0).tensor(strings.Repeat("n", 64), 0, 0, 1).padTo(32).zeros(64).Bytes(), "name longer than 63 bytes"},
		{"tinfotrunc", nr().header(1, 0).str("x").u32(2).u64(4).zeros(4).Bytes(), `dimension 1 of tensor "x"`},
		{"duptensor", nr().header(2, 0).tensor("x", 0, 0, 8).tensor("x", 0, 32, 8).padTo(32).zeros(64).Bytes(), `duplicate tensor "x"`},
		{"misaligned", nr().header(1, 0).tensor("x", 0, 4, 8).padTo(32).zeros(64).Bytes(), `tensor "x": offset 4 is not a multiple of the alignment 32`},
		{"bounds", nr().header(1, 0).tensor("x", 0, 32, 16).padTo(32).zeros(64).Bytes(), `tensor "x": data [32, +64) lies beyond the data section of 64 bytes`},
		{"hugeoffset", nr().header(1, 0).tensor("x", 0, 1<<63, 16).padTo(32).zeros(64).Bytes(), `lies beyond the data section`},
		{"overlap", nr().header(2, 0).tensor("x", 0, 0, 16).tensor("y", 0, 32, 8).padTo(32).zeros(96).Bytes(), `tensor "y" at offset 32 overlaps tensor "x" [0, +64)`},
		{"nodata", nr().header(1, 0).tensor("x", 0, 0, 8).Bytes(), "data section would start at offset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.data)
			if err == nil {
				t.Fatalf("parsed without error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
	// The same files, made valid, parse: the cases fail for the stated reason.
	ok := [][]byte{
		nr().header(0, 0).Bytes(),
		nr().header(1, 0).tensor("x", 8, 0, 32).padTo(32).zeros(34).Bytes(),
		nr().header(2, 0).tensor("x", 0, 0, 8).tensor("y", 0, 32, 8).padTo(32).zeros(64).Bytes(),
		nr().header(0, 1).str("general.alignment").u32(typeUint32).u32(64).Bytes(),
	}
	for i, d := range ok {
		if _, err := Parse(d); err != nil {
			t.Errorf("valid file %d: %v", i, err)
		}
	}
}

func TestAccessors(t *testing.T) {
	data, _, _ := buildSample(t, 0)
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := f.String("utf8"); err != nil || s != "héllo ▁世界" {
		t.Errorf("String = %q, %v", s, err)
	}
	if u, err := f.Uint("u64"); err != nil || u != 1<<63 {
		t.Errorf("Uint(u64) = %d, %v", u, err)
	}
	if u, err := f.Uint("u8"); err != nil || u != 200 {
		t.Errorf("Uint(u8) = %d, %v", u, err)
	}
	if n, err := f.Int("i32"); err != nil || n != -2000000000 {
		t.Errorf("Int(i32) = %d, %v", n, err)
	}
	if n, err := f.Int("u32"); err != nil || n != 4000000000 {
		t.Errorf("Int(u32) = %d, %v", n, err)
	}
	if x, err := f.Float("f32"); err != nil || x != float64(float32(1.5e-6)) {
		t.Errorf("Float(f32) = %g, %v", x, err)
	}
	if x, err := f.Float("f64"); err != nil || x != math.Pi {
		t.Errorf("Float(f64) = %g, %v", x, err)
	}
	if b, err := f.Bool("yes"); err != nil || !b {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if s, err := f.Strings("a.str"); err != nil || !reflect.DeepEqual(s, []string{"a", "", "▁b"}) {
		t.Errorf("Strings = %q, %v", s, err)
	}
	if x, err := f.Floats("a.f64"); err != nil || !reflect.DeepEqual(x, []float32{float32(math.Inf(1))}) {
		t.Errorf("Floats(f64) = %v, %v", x, err)
	}
	if x, err := f.Ints("a.i32"); err != nil || !reflect.DeepEqual(x, []int{-7, 8, 9}) {
		t.Errorf("Ints = %v, %v", x, err)
	}
	if x, err := f.Bytes("a.i8"); err != nil || !bytes.Equal(x, []byte{0x80, 0, 0x7f}) {
		t.Errorf("Bytes(i8) = %v, %v", x, err)
	}
	if x, err := f.Bytes("a.u8"); err != nil || !bytes.Equal(x, []byte{0, 1, 255}) {
		t.Errorf("Bytes(u8) = %v, %v", x, err)
	}
	errs := []struct {
		err  error
		want string
	}{
		{second(f.String("nope")), `missing metadata key "nope"`},
		{second(f.String("u8")), `key "u8" is uint8, want string`},
		{second(f.Uint("i8")), `key "i8" is -100, want a non-negative integer`},
		{second(f.Uint("f32")), `key "f32" is float32, want an unsigned integer`},
		{second(f.Int("u64")), `key "u64" is 9223372036854775808, beyond int`},
		{second(f.Int("utf8")), `key "utf8" is string, want an integer`},
		{second(f.Float("u8")), `key "u8" is uint8, want a float`},
		{second(f.Bool("u8")), `key "u8" is uint8, want bool`},
		{second(f.Strings("a.u8")), `key "a.u8" is array of uint8, want array of string`},
		{second(f.Floats("a.nested")), `key "a.nested" is array of array, want array of float32`},
		{second(f.Ints("a.u64")), `key "a.u64": element 0 is 18446744073709551615, beyond int`},
		{second(f.Ints("a.str")), `key "a.str" is array of string, want array of integers`},
		{second(f.Bytes("a.u16")), `key "a.u16" is array of uint16, want array of uint8`},
		{second(f.Tensor("v.blk.0.attn_q.weight")), `missing tensor "v.blk.0.attn_q.weight"`},
	}
	for _, e := range errs {
		if e.err == nil || e.err.Error() != e.want {
			t.Errorf("error %v, want %q", e.err, e.want)
		}
	}
	for _, key := range []string{"nope", "u8"} {
		if _, err := f.Uint(key); key == "nope" && err == nil {
			t.Error("Uint of a missing key succeeded")
		}
	}

	q, _ := f.Tensor("c.q8_0")
	m, err := q.Matrix()
	if err != nil || m.Rows != 3 || m.Cols != 64 || m.Type != neon.Q8_0 || len(m.Data) != 3*2*34 {
		t.Errorf("Matrix = %+v, %v", m, err)
	}
	if err := q.Expect(64, 64); err == nil || err.Error() != "tensor c.q8_0 has shape [64 3], want [64 64]" {
		t.Errorf("Expect: %v", err)
	}
	if err := q.Expect(64); err == nil {
		t.Error("Expect with fewer dims succeeded")
	}
	v, _ := f.Tensor("b.f16")
	if _, err := v.Matrix(); err == nil || err.Error() != "tensor b.f16 has shape [7], want a matrix" {
		t.Errorf("Matrix of a vector: %v", err)
	}
	d4, _ := f.Tensor("d.q4_0")
	if _, err := d4.Matrix(); err == nil {
		t.Error("Matrix of [32 2 1 2] succeeded")
	}
}

func second[T any](_ T, err error) error { return err }

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	good := make([]byte, 32*4)
	if err := w.AddTensor("x", neon.F32, []uint64{32}, good); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		err  error
		want string
	}{
		{w.AddTensor("x", neon.F32, []uint64{32}, good), `duplicate tensor "x"`},
		{w.AddTensor("", neon.F32, []uint64{32}, good), "empty name"},
		{w.AddTensor(strings.Repeat("a", 64), neon.F32, []uint64{32}, good), "name longer than 63 bytes"},
		{w.AddTensor("y", neon.DType(13), []uint64{32}, good), `tensor "y": unknown ggml type 13`},
		{w.AddTensor("y", neon.F32, nil, good), "0 dimensions"},
		{w.AddTensor("y", neon.F32, []uint64{1, 1, 1, 1, 1}, good), "5 dimensions"},
		{w.AddTensor("y", neon.F32, []uint64{31}, good), "128 bytes of data, want 124 for f32 [31]"},
		{w.AddTensor("y", neon.F32, []uint64{1 << 40, 1 << 40}, good), "overflow"},
		{w.AddTensor("y", neon.Q4_0, []uint64{16}, good), "row of 16 elements is not a multiple of the q4_0 block size 32"},
		{w.AddTensorFunc("y", neon.F32, []uint64{1 << 62}, nil), "overflow"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("error %v, want %q", c.err, c.want)
		}
	}
	w.Add("bad", struct{}{})
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `key "bad": unsupported value type struct {}`) {
		t.Errorf("unsupported value: %v", err)
	}
	w = NewWriter()
	w.Add("nested", []any{"not an array"})
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "an array of arrays holds string") {
		t.Errorf("bad nested array: %v", err)
	}
	w = NewWriter()
	w.Add("general.alignment", uint32(24))
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Errorf("bad alignment: %v", err)
	}
	w = NewWriter()
	w.AddTensorFunc("z", neon.F32, []uint64{8}, func([]byte) error { return os.ErrInvalid })
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `tensor "z": invalid argument`) {
		t.Errorf("failing fill: %v", err)
	}
	dir := t.TempDir()
	if err := w.WriteFile(filepath.Join(dir, "z.gguf")); err == nil {
		t.Error("WriteFile with a failing tensor succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed WriteFile left %d files", len(ents))
	}
	if err := w.WriteFile(filepath.Join(dir, "no", "such", "dir.gguf")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

func TestWriterReplaceAndInts(t *testing.T) {
	w := NewWriter()
	w.Add("a", 1)
	w.Add("b", []int{1, -2})
	w.Add("a", uint(5))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []KV{{"a", uint64(5)}, {"b", []int64{1, -2}}}
	if !reflect.DeepEqual(f.KVs, want) {
		t.Errorf("KVs %#v, want %#v", f.KVs, want)
	}
}
