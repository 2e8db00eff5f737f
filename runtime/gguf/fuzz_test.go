package gguf

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Whatever it accepts must be
// fully usable (every tensor reachable and expandable) and must survive a
// round trip through the Writer unchanged.
func FuzzParse(f *testing.F) {
	data, _, _ := buildSample(f, 0)
	f.Add(data)
	data64, _, _ := buildSample(f, 64)
	f.Add(data64)
	f.Add(new(raw).header(0, 0).Bytes())
	f.Add(new(raw).header(2, 0).tensor("x", 0, 0, 8).tensor("y", 2, 32, 32).padTo(32).zeros(64).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			return
		}
		w := NewWriter()
		for _, kv := range g.KVs {
			w.Add(kv.Key, kv.Value)
		}
		for _, ti := range g.Tensors {
			tt, err := g.Tensor(ti.Name)
			if err != nil {
				t.Fatalf("listed tensor %q: %v", ti.Name, err)
			}
			if uint64(len(tt.Data)) != ti.Size() {
				t.Fatalf("tensor %q: %d bytes, want %d", ti.Name, len(tt.Data), ti.Size())
			}
			if len(tt.Data) <= 1<<16 {
				if _, err := tt.Float32s(); err != nil {
					t.Fatalf("tensor %q: %v", ti.Name, err)
				}
			}
			if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, tt.Data); err != nil {
				t.Fatalf("re-adding tensor: %v", err)
			}
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatalf("rewriting an accepted file: %v", err)
		}
		h, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if !reflect.DeepEqual(h.KVs, g.KVs) && !nanEqual(h.KVs, g.KVs) {
			t.Fatalf("metadata changed in the round trip")
		}
		for _, ti := range g.Tensors {
			a, _ := g.Tensor(ti.Name)
			b, err := h.Tensor(ti.Name)
			if err != nil || !bytes.Equal(a.Data, b.Data) || !reflect.DeepEqual(a.Dims, b.Dims) || a.Type != b.Type {
				t.Fatalf("tensor %q changed in the round trip", ti.Name)
			}
		}
	})
}

// nanEqual compares metadata by its encoding, so NaN values compare equal.
func nanEqual(a, b []KV) bool {
	enc := func(kvs []KV) []byte {
		w := NewWriter()
		for _, kv := range kvs {
			w.Add(kv.Key, kv.Value)
		}
		var buf bytes.Buffer
		w.WriteTo(&buf)
		return buf.Bytes()
	}
	return bytes.Equal(enc(a), enc(b))
}
