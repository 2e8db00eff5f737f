//go:build unix

package gguf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/palid/palid/neon"
)

// TestOpenDoesNotCopy shows that tensor data is the file's mapping, not a
// copy: bytes written to the file after Open show through Tensor.Data.
func TestOpenDoesNotCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	w := NewWriter()
	w.AddTensor("w", neon.F32, []uint64{8}, make([]byte, 32))
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteAt([]byte{0xab}, int64(f.DataOffset())); err != nil {
		t.Fatal(err)
	}
	fd.Close()
	tt, _ := f.Tensor("w")
	if tt.Data[0] != 0xab {
		t.Fatal("tensor data does not reflect the file: it was copied, not mapped")
	}
}

// BenchmarkOpen opens a 64 MiB model file: the cost is parsing the header,
// independent of the weights' size.
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.gguf")
	w := NewWriter()
	for i := 0; i < 16; i++ {
		w.AddTensorFunc(string(rune('a'+i))+".weight", neon.Q8_0, []uint64{4096, 1024}, func([]byte) error { return nil })
	}
	if err := w.WriteFile(path); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
