package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/palid/palid/neon"
	"github.com/palid/palid/runtime/convert"
)

func init() {
	register("convert", "convert a Hugging Face checkpoint to a palid model directory", func(args []string) error {
		return runConvert(context.Background(), args)
	})
}

// runConvert runs "palid convert --out DIR [--quant TYPE] SOURCE...".
// Interrupting it leaves the output directory as it was.
func runConvert(ctx context.Context, args []string) error {
	fs := newFlags("convert", "SOURCE...")
	out := fs.String("out", "", "output model `DIR` (receives model.gguf and mmproj.gguf)")
	quant := fs.String("quant", "q8_0", "type of the linear weights: q8_0, q4_0, f16 or f32")
	quiet := fs.Bool("quiet", false, "print no progress")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return badInputf("--out DIR is required (usage: palid convert --out DIR [--quant q8_0|q4_0|f16|f32] SOURCE...)")
	}
	if fs.NArg() == 0 {
		return badInputf("missing SOURCE: a Hugging Face checkpoint directory (config.json, *.safetensors, spiece.model)")
	}
	q, err := neon.ParseDType(*quant)
	if err != nil {
		return badInputf("--quant: %v", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := convert.Options{Sources: fs.Args(), OutDir: *out, Quant: q, Progress: os.Stderr}
	if *quiet {
		opts.Progress = nil
	}
	err = convert.Convert(ctx, opts)
	if errors.Is(err, convert.ErrInput) {
		return badInput(err)
	}
	return err
}
