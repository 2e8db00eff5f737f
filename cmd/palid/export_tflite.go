package main

import (
	"context"
	"fmt"
	"image"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	"github.com/palid/palid/delegate"
	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

func init() {
	register("export-tflite", "export the vision tower as a fully int8 .tflite for NPUs", func(args []string) error {
		return exportTFLite(context.Background(), args, os.Stdout)
	})
}

// exportTFLite runs "palid export-tflite --model DIR --out FILE
// [--calib synthetic|DIR] [--calib-frames N] [--verify LIB]".
func exportTFLite(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("export-tflite", "")
	modelDir := fs.String("model", "", "palid model `DIR` (default: the bundled model)")
	out := fs.String("out", "", "output `FILE` (.tflite)")
	calib := fs.String("calib", "synthetic", "calibration frames: `synthetic` scenes or a DIR of PNG/JPEG/GIF images")
	frames := fs.Int("calib-frames", 64, "number of calibration frames (at most, for a directory)")
	verify := fs.String("verify", "", "TFLite C library `LIB`: run the exported model and print its agreement with the CPU path")
	threads := fs.Int("threads", 0, "CPU threads (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInputf("unexpected argument %q (usage: palid export-tflite --model DIR --out FILE [--calib synthetic|DIR])", fs.Arg(0))
	}
	if *out == "" {
		return badInputf("--out FILE is required (usage: palid export-tflite --model DIR --out FILE [--calib synthetic|DIR])")
	}
	if *frames <= 0 || *frames > 10000 {
		return badInputf("--calib-frames %d: want 1 to 10000", *frames)
	}
	dir := *modelDir
	if dir == "" {
		d, err := defaultModelDir()
		if err != nil {
			return badInput(err)
		}
		dir = d
	}
	pool := neon.NewPool(*threads)
	defer pool.Close()
	m, err := palirt.Load(dir, palirt.Options{Pool: pool})
	if err != nil {
		return badInput(err)
	}
	defer m.Close()
	size := m.ImageSize()
	cal, err := exportCalibration(*calib, *frames, size)
	if err != nil {
		return badInput(err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	data, rep, err := delegate.ExportVision(ctx, m.VisionTower(), delegate.ExportOptions{
		Calibration: cal,
		Pool:        pool,
		Description: "palid vision tower of " + filepath.Base(filepath.Clean(dir)) + ", int8, calibrated on " + *calib,
	})
	if err != nil {
		return err
	}
	if err := exportWriteFile(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes, %d operators (%s)\ninput %v int8 (NHWC, [-1, 1]), output %v int8, calibrated on %d frames (%s)\n",
		*out, rep.Bytes, rep.NumOps, rep.Ops, rep.Input, rep.Output, len(cal), *calib)
	if *verify == "" {
		return nil
	}
	b, err := delegate.NewTFLite(delegate.Config{Library: *verify, Model: *out, Threads: *threads})
	if err != nil {
		return err
	}
	defer b.Close()
	check := exportSynthetic(16, size, 1<<20) // seeds apart from calibration
	cos, err := delegate.SelfCheck(ctx, b, m, check)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "agreement with the CPU path on %d synthetic frames: mean token cosine %.4f (auto needs %.2f)\n",
		len(check), cos, delegate.DefaultMinCosine)
	return nil
}

// exportCalibration is n synthetic scenes, or up to n images of a
// directory (in name order), normalised to size.
func exportCalibration(spec string, n, size int) ([]palirt.Image, error) {
	if spec == "synthetic" {
		return exportSynthetic(n, size, 1), nil
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("--calib: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("--calib %s: want \"synthetic\" or a directory of images", spec)
	}
	names, err := capture.ImageFiles(spec)
	if err != nil {
		return nil, fmt.Errorf("--calib %s: no PNG, JPEG or GIF images (%w)", spec, err)
	}
	var out []palirt.Image
	for _, name := range names[:min(n, len(names))] {
		img, err := loadImage(name)
		if err != nil {
			return nil, fmt.Errorf("--calib: %w", err)
		}
		out = append(out, exportNormalized(img, size))
	}
	return out, nil
}

func exportSynthetic(n, size int, seed int64) []palirt.Image {
	out := make([]palirt.Image, n)
	for i := range out {
		out[i] = exportNormalized(synth.NewScene(seed+int64(i)).Render(size), size)
	}
	return out
}

func exportNormalized(img image.Image, size int) palirt.Image {
	return palirt.Image{Width: size, Height: size, Pix: capture.Normalize(img, size, size)}
}

// exportWriteFile writes data to path through a temporary file and a rename.
func exportWriteFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp"+strconv.Itoa(os.Getpid()))
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
