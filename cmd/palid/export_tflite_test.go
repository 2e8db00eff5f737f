package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

func TestExportTFLite(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	os.Mkdir(model, 0o755)
	if err := palirt.WriteRandomModel(model, "tiny", neon.Q8_0, 1); err != nil {
		t.Fatal(err)
	}
	images := filepath.Join(dir, "images")
	os.Mkdir(images, 0o755)
	writePNG(t, filepath.Join(images, "a.png"), 10)
	writePNG(t, filepath.Join(images, "b.png"), 200)
	os.WriteFile(filepath.Join(images, "notes.txt"), []byte("skipped"), 0o644)

	for _, calib := range []string{"synthetic", images} {
		out := filepath.Join(dir, "vision.tflite")
		var stdout bytes.Buffer
		args := []string{"--model", model, "--out", out, "--calib", calib, "--calib-frames", "4", "--threads", "2"}
		lib := os.Getenv("PALID_TFLITE_LIB")
		if lib != "" {
			args = append(args, "--verify", lib)
		}
		if err := exportTFLite(context.Background(), args, &stdout); err != nil {
			t.Fatalf("%s: %v", calib, err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 1000 || string(data[4:8]) != "TFL3" {
			t.Fatalf("%s: %d bytes, identifier %q", calib, len(data), data[4:8])
		}
		if !strings.Contains(stdout.String(), "FULLY_CONNECTED") || (lib != "" && !strings.Contains(stdout.String(), "mean token cosine")) {
			t.Fatalf("output %q", stdout.String())
		}
		t.Log(strings.TrimSpace(stdout.String()))
	}

	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", model}, "--out FILE is required"},
		{[]string{"--model", model, "--out", filepath.Join(dir, "x"), "--calib", empty}, "no PNG, JPEG or GIF"},
		{[]string{"--model", model, "--out", filepath.Join(dir, "x"), "--calib", filepath.Join(dir, "nope")}, "no such file"},
		{[]string{"--model", model, "--out", filepath.Join(dir, "x"), "--calib-frames", "0"}, "--calib-frames 0"},
		{[]string{"--model", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "x")}, "no such file"},
		{[]string{"--model", model, "--out", filepath.Join(dir, "x"), "extra"}, `unexpected argument "extra"`},
	} {
		err := exportTFLite(context.Background(), c.args, &bytes.Buffer{})
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
}
