package delegate

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palid/palid/neon"
)

// testDelegateC is a TFLite delegate plugin built by the tests: it logs the
// options it gets and its destruction to the file named by option "log",
// refuses to be created with mode=create-fails, and fails Prepare (as a
// vendor delegate does on a graph it cannot take) with mode=prepare-fails.
// With mode=ok it claims no node, so the model runs on TFLite's kernels.
const testDelegateC = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensorflow/lite/c/common.h"

static TfLiteStatus prepare_ok(TfLiteContext* ctx, TfLiteDelegate* d) {
	TfLiteIntArray* plan;
	/* Look at the graph as a real delegate would. */
	if (ctx->GetExecutionPlan(ctx, &plan) != kTfLiteOk) return kTfLiteError;
	const char* log = (const char*)d->data_;
	if (log) { FILE* f = fopen(log, "a"); if (f) { fprintf(f, "prepare nodes=%d\n", plan->size); fclose(f); } }
	return kTfLiteOk;
}

static TfLiteStatus prepare_fail(TfLiteContext* ctx, TfLiteDelegate* d) {
	ctx->ReportError(ctx, "test delegate: prepare fails on demand");
	return kTfLiteError;
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
                                              void (*report_error)(const char*)) {
	const char* mode = "ok";
	const char* log = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(keys[i], "mode") == 0) mode = values[i];
		if (strcmp(keys[i], "log") == 0) log = values[i];
	}
	if (log) {
		FILE* f = fopen(log, "a");
		if (f) { for (size_t i = 0; i < n; i++) fprintf(f, "%s=%s\n", keys[i], values[i]); fclose(f); }
	}
	if (strcmp(mode, "create-fails") == 0) {
		report_error("test delegate: creation refused on demand");
		return NULL;
	}
	TfLiteDelegate* d = calloc(1, sizeof *d);
	d->data_ = log ? strdup(log) : NULL;
	d->Prepare = strcmp(mode, "prepare-fails") == 0 ? prepare_fail : prepare_ok;
	d->flags = kTfLiteDelegateFlagsNone;
	return d;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* d) {
	if (d->data_) {
		FILE* f = fopen((const char*)d->data_, "a");
		if (f) { fprintf(f, "destroyed\n"); fclose(f); }
		free(d->data_);
	}
	free(d);
}
`

func buildTestDelegate(t *testing.T) string {
	return buildC(t, "testdelegate", testDelegateC, tfliteHeaders(t))
}

func TestExternalDelegate(t *testing.T) {
	lib := tfliteLib(t)
	so := buildTestDelegate(t)
	m := tinyModel(t, "pali3_tiny_a", neon.Q8_0)
	model := exportTiny(t, m, 8)
	img := synthFrames(1, 77, m.ImageSize())[0]

	plain, err := NewTFLite(Config{Library: lib, Model: model, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, err := plain.EncodeImage(context.Background(), img)
	plain.Close()
	if err != nil {
		t.Fatal(err)
	}

	log := filepath.Join(t.TempDir(), "delegate.log")
	b, err := NewTFLite(Config{Library: lib, Model: model, Threads: 1, Delegate: so,
		DelegateOptions: map[string]string{"mode": "ok", "log": log, "cache": "/var/cache/npu"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "tflite+libtestdelegate.so" {
		t.Errorf("Name() = %q", b.Name())
	}
	got, err := b.EncodeImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("token value %d: %v with the (pass-through) delegate, %v without", i, got[i], want[i])
		}
	}
	raw, _ := os.ReadFile(log)
	// Options arrive sorted by key; Prepare saw the whole graph; Close
	// destroyed the delegate.
	wantLog := "cache=/var/cache/npu\nlog=" + log + "\nmode=ok\nprepare nodes=99\ndestroyed\n"
	if string(raw) != wantLog {
		t.Errorf("delegate log:\n%s\nwant:\n%s", raw, wantLog)
	}
}

func TestExternalDelegateErrors(t *testing.T) {
	lib := tfliteLib(t)
	so := buildTestDelegate(t)
	m := tinyModel(t, "pali3_tiny_a", neon.Q8_0)
	model := exportTiny(t, m, 4)
	dir := t.TempDir()
	noDestroy := buildC(t, "halfplugin", `void* tflite_plugin_create_delegate(char** k, char** v, unsigned long n, void* r) { return 0; }`)
	notLib := filepath.Join(dir, "libnot.so")
	os.WriteFile(notLib, []byte("text"), 0o644)

	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"create fails", Config{Delegate: so, DelegateOptions: map[string]string{"mode": "create-fails"}},
			"returned no delegate (options map[mode:create-fails]): test delegate: creation refused on demand"},
		{"prepare fails", Config{Delegate: so, DelegateOptions: map[string]string{"mode": "prepare-fails"}},
			"test delegate: prepare fails on demand"},
		{"missing symbol", Config{Delegate: noDestroy}, "missing symbol tflite_plugin_destroy_delegate"},
		{"not a library", Config{Delegate: notLib}, "cannot load " + notLib},
		{"absent", Config{Delegate: filepath.Join(dir, "absent.so")}, "no such file"},
		{"absent model", Config{Model: filepath.Join(dir, "absent.tflite")}, "no such file"},
		{"no model", Config{Model: "-"}, "no vision model"},
		{"wrong library", Config{Library: noDestroy}, "missing symbol TfLiteVersion"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			if cfg.Library == "" {
				cfg.Library = lib
			}
			switch cfg.Model {
			case "":
				cfg.Model = model
			case "-":
				cfg.Model = ""
			}
			b, err := NewTFLite(cfg)
			if err == nil {
				b.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
			// tflite must fail the same way; auto falls back to the CPU
			// and logs the reason.
			cfg.Backend = BackendTFLite
			if _, err := Select(context.Background(), cfg, m, nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Select(tflite) error %v, want %q", err, c.want)
			}
			cfg.Backend = BackendAuto
			var logs bytes.Buffer
			vb, err := Select(context.Background(), cfg, m, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer vb.Close()
			if vb.Name() != BackendCPU || !strings.Contains(logs.String(), "using the CPU") || !strings.Contains(logs.String(), c.want) {
				t.Fatalf("auto chose %s, logged %q", vb.Name(), logs.String())
			}
		})
	}
}

func TestSelectAuto(t *testing.T) {
	lib := tfliteLib(t)
	m := tinyModel(t, "pali3_tiny_a", neon.Q8_0)
	model := exportTiny(t, m, 16)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b, err := Select(context.Background(), Config{Backend: BackendAuto, Library: lib, Model: model}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != BackendTFLite {
		t.Fatalf("auto chose %s: %s", b.Name(), logs.String())
	}
	t.Logf("%s", strings.TrimSpace(logs.String()))

	// A model exported from another palid model does not pass the check.
	other := tinyModel(t, "pali3_tiny_b", neon.Q8_0)
	logs.Reset()
	b2, err := Select(context.Background(), Config{Backend: BackendAuto, Library: lib, Model: exportTiny(t, other, 4)}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.Name() != BackendCPU || !strings.Contains(logs.String(), "export it again") {
		t.Fatalf("auto with a foreign model chose %s, logged %q", b2.Name(), logs.String())
	}
	// An impossible threshold falls back, naming the figure.
	logs.Reset()
	b3, err := Select(context.Background(), Config{Backend: BackendAuto, Library: lib, Model: model, MinCosine: 1.5}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	if b3.Name() != BackendCPU || !strings.Contains(logs.String(), "below 1.5000") {
		t.Fatalf("auto with threshold 1.5 chose %s, logged %q", b3.Name(), logs.String())
	}
	if _, err := Select(context.Background(), Config{Backend: "gpu"}, m, log); err == nil || !strings.Contains(err.Error(), `"gpu"`) {
		t.Fatalf("Select(gpu) = %v", err)
	}
	// The CPU backend is the model itself.
	c, _ := Select(context.Background(), Config{}, m, log)
	img := synthFrames(1, 3, m.ImageSize())[0]
	got, _ := c.EncodeImage(context.Background(), img)
	want, _ := m.EncodeImage(context.Background(), img)
	if c.Name() != BackendCPU || len(got) != len(want) || got[0] != want[0] {
		t.Fatal("cpu backend differs from the model")
	}
}
