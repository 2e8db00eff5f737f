package delegate

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/palid/palid/internal/tflitetest"
)

// tfliteLib returns the TFLite C library the tests run (tflitetest.Library).
func tfliteLib(t testing.TB) string { return tflitetest.Library(t) }

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
