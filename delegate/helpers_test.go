package delegate

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tfliteLib returns the TFLite C library the tests run: $PALID_TFLITE_LIB,
// else the copy scripts/tflite.sh caches in the repository. Without one the
// test skips, except under CI (CI=true), where it fails: `make test` fetches
// the library first.
func tfliteLib(t testing.TB) string {
	t.Helper()
	p := os.Getenv("PALID_TFLITE_LIB")
	if p == "" {
		p = filepath.Join("..", ".cache", "tflite", "node-tflite", "package", "tflite", "linux_x86_64", "libtensorflowlite_c.so")
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

// tfliteCache is the directory scripts/tflite.sh filled, found from the
// library's path (<cache>/node-tflite/package/tflite/linux_x86_64/lib).
func tfliteCache(t testing.TB) string {
	return filepath.Clean(filepath.Join(filepath.Dir(tfliteLib(t)), "..", "..", "..", ".."))
}

// tfliteHeaders is the include directory of the npm package.
func tfliteHeaders(t testing.TB) string {
	return filepath.Clean(filepath.Join(filepath.Dir(tfliteLib(t)), "..", "include"))
}

func openLib(t testing.TB) *Library {
	t.Helper()
	l, err := Open(tfliteLib(t))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// buildC compiles C source into a shared library in a temporary directory.
func buildC(t testing.TB, name, src string, include ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcc is needed to build the test libraries")
		}
		t.Skip("gcc absent: cannot build the test library")
	}
	dir := t.TempDir()
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	so := filepath.Join(dir, "lib"+name+".so")
	args := []string{"-shared", "-fPIC", "-O1", "-o", so, c}
	for _, d := range include {
		args = append(args, "-I", d)
	}
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, out)
	}
	return so
}
