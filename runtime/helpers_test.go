package runtime

import "testing"

// tinyModelDir writes a tiny random model into a test temp dir.
func tinyModelDir(t testing.TB, c randomConfig, seed uint64) string {
	dir := t.TempDir()
	if err := writeRandomModel(dir, c, seed); err != nil {
		t.Fatal(err)
	}
	return dir
}
