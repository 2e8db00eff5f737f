package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/palid/palid/neon"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func sample() []Tensor {
	f16 := make([]byte, 6)
	for i, x := range []float32{1, -2.5, 65504} {
		binary.LittleEndian.PutUint16(f16[2*i:], neon.F32ToF16(x))
	}
	bf16 := []byte{0x80, 0x3f, 0x20, 0xc0} // 1.0, -2.5
	return []Tensor{
		{Name: "a.weight", DType: "F32", Shape: []int{2, 3}, Data: f32bytes(1, 2, 3, 4, 5, -6)},
		{Name: "b.half", DType: "F16", Shape: []int{3}, Data: f16},
		{Name: "c.bf16", DType: "BF16", Shape: []int{1, 2}, Data: bf16},
		{Name: "d.ids", DType: "I64", Shape: []int{2}, Data: make([]byte, 16)},
		{Name: "e.scalar", DType: "F32", Shape: []int{}, Data: f32bytes(7)},
		{Name: "f.empty", DType: "F32", Shape: []int{0, 4}, Data: []byte{}},
	}
}

func encode(t *testing.T, ts []Tensor, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, ts, md); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	md := map[string]string{"format": "pt"}
	if err := WriteFile(path, sample(), md); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Metadata(), md) {
		t.Errorf("metadata %v", f.Metadata())
	}
	want := []string{"a.weight", "b.half", "c.bf16", "d.ids", "e.scalar", "f.empty"}
	if !reflect.DeepEqual(f.Names(), want) {
		t.Errorf("Names %v, want %v", f.Names(), want)
	}
	for _, s := range sample() {
		got, err := f.Tensor(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != s.DType || !reflect.DeepEqual(got.Shape, s.Shape) || !bytes.Equal(got.Data, s.Data) {
			t.Errorf("tensor %s differs: %+v", s.Name, got)
		}
	}
	vals := map[string][]float32{
		"a.weight": {1, 2, 3, 4, 5, -6}, "b.half": {1, -2.5, 65504}, "c.bf16": {1, -2.5},
		"e.scalar": {7}, "f.empty": {},
	}
	for name, w := range vals {
		tt, _ := f.Tensor(name)
		got, err := tt.Float32s()
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("%s: Float32s = %v, %v; want %v", name, got, err, w)
		}
	}
	ids, _ := f.Tensor("d.ids")
	if _, err := ids.Float32s(); err == nil || err.Error() != `tensor "d.ids" has dtype I64, want F32, F16 or BF16` {
		t.Errorf("I64: %v", err)
	}
	if _, err := f.Tensor("nope"); err == nil || err.Error() != `missing tensor "nope"` {
		t.Errorf("missing: %v", err)
	}
	a, _ := f.Tensor("a.weight")
	if err := a.Decode(make([]float32, 5)); err == nil {
		t.Error("Decode into a short buffer succeeded")
	}
	f.Close()
	if _, err := f.Tensor("a.weight"); err == nil {
		t.Error("Tensor after Close succeeded")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("absent: %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	p := filepath.Join(dir, "t.safetensors")
	os.WriteFile(p, []byte{1, 2}, 0o644)
	if _, err := Open(p); err == nil || !strings.HasPrefix(err.Error(), p+": safetensors: ") {
		t.Errorf("short: %v", err)
	}
}

func rawFile(hdr string, body int) []byte {
	b := make([]byte, 8, 8+len(hdr)+body)
	binary.LittleEndian.PutUint64(b, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, body)...)
}

func TestCorrupt(t *testing.T) {
	good := encode(t, sample(), nil)
	for n := 0; n < len(good); n++ {
		if _, err := Parse(good[:n]); err == nil {
			t.Fatalf("file cut at %d of %d bytes parsed", n, len(good))
		}
	}
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<62)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1}, "too short for the header length"},
		{"hugeheader", huge, "exceeds the limit"},
		{"headerlen", rawFile("{}", 0)[:9], "header length 2, only 1 bytes follow"},
		{"notjson", rawFile("[1]", 0), "not a JSON object"},
		{"badjson", rawFile(`{"a":`, 0), "header: unexpected EOF"},
		{"trailing", rawFile(`{} {}`, 0), "data after the JSON object"},
		{"meta", rawFile(`{"__metadata__": {"a": 1}}`, 0), "__metadata__ is not a map of strings"},
		{"desc", rawFile(`{"x": 5}`, 0), `tensor "x": bad description`},
		{"field", rawFile(`{"x": {"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}`, 4), `tensor "x": bad description: json: unknown field "extra"`},
		{"dtype", rawFile(`{"x": {"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}`, 4), `tensor "x": unknown dtype "Q4"`},
		{"offsets", rawFile(`{"x": {"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4), "data_offsets has 1 values, want 2"},
		{"negdim", rawFile(`{"x": {"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "bad dimension -1"},
		{"overflow", rawFile(`{"x": {"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4), "overflows"},
		{"bounds", rawFile(`{"x": {"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 8), `data_offsets [4, 12] lie outside the 8 bytes of data`},
		{"reversed", rawFile(`{"x": {"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, 8), "lie outside"},
		{"size", rawFile(`{"x": {"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), `8 bytes of data, want 12 for F32 [3]`},
		{"overlap", rawFile(`{"x": {"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y": {"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlaps"},
	}
	for _, c := range cases {
		_, err := Parse(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "safetensors: ") {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, []Tensor{{Name: "x", DType: "F33"}}, nil); err == nil {
		t.Error("unknown dtype written")
	}
	if err := Write(&buf, []Tensor{{Name: "x", DType: "F32", Shape: []int{2}, Data: make([]byte, 4)}}, nil); err == nil {
		t.Error("short data written")
	}
	x := Tensor{Name: "x", DType: "F32", Shape: []int{1}, Data: make([]byte, 4)}
	if err := Write(&buf, []Tensor{x, x}, nil); err == nil {
		t.Error("duplicate written")
	}
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "f"), nil, nil); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

// FuzzParse: whatever Parse accepts is usable: every tensor's data has
// the size its shape says and decodes without panicking.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, sample(), map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(rawFile(`{"x": {"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, 4))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := Parse(data)
		if err != nil {
			return
		}
		for _, name := range sf.Names() {
			tt, err := sf.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.Data) != tt.Elements()*dtypeSizes[tt.DType] {
				t.Fatalf("tensor %q: %d bytes for shape %v", name, len(tt.Data), tt.Shape)
			}
			if tt.Elements() < 1<<16 {
				tt.Float32s()
			}
		}
	})
}
