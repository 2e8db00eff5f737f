// Package tflitetest finds the real TFLite C library for tests: the one
// `make test` fetches with scripts/tflite.sh.
package tflitetest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Library returns the absolute path of the TFLite C library:
// $PALID_TFLITE_LIB, else the copy scripts/tflite.sh caches in the
// repository (found from this file's place). Without one the test skips,
// except under CI (CI=true), where it fails.
func Library(t testing.TB) string {
	t.Helper()
	p := os.Getenv("PALID_TFLITE_LIB")
	if p == "" {
		_, self, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(self), "..", "..")
		p = filepath.Join(root, ".cache", "tflite", "node-tflite", "package", "tflite", "linux_x86_64", "libtensorflowlite_c.so")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("TFLite C library %s absent under CI: run scripts/tflite.sh and set PALID_TFLITE_LIB", p)
		}
		t.Skipf("TFLite C library %s absent (run scripts/tflite.sh and set PALID_TFLITE_LIB)", p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
