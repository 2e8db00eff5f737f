package main

import (
	"fmt"

	"github.com/palid/palid/capture/synth"
)

func init() {
	register("synth", "write scenes or clips of the synthetic world with questions", runSynth)
}

// runSynth implements palid synth --seed N [--count K] [--clips] [--size PX] --out DIR.
func runSynth(args []string) error {
	fs := newFlags("synth", "")
	seed := fs.Int64("seed", -1, "dataset seed (required, >= 0); item i uses scene seed N*1000000+i")
	count := fs.Int("count", 100, "number of scenes (or clips)")
	clips := fs.Bool("clips", false, "write 16-frame clips, one folder each, instead of still scenes")
	size := fs.Int("size", synth.ImageSize, "image side in pixels")
	out := fs.String("out", "", "output directory (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return badInputf("unexpected argument %q", fs.Arg(0))
	case *seed < 0:
		return badInputf("--seed is required and must be >= 0")
	case *seed > 9_000_000:
		return badInputf("--seed %d too large (at most 9000000)", *seed)
	case *out == "":
		return badInputf("--out is required")
	case *count < 0 || *count >= 1_000_000:
		return badInputf("--count %d out of range [0, 999999]", *count)
	case *size < 8 || *size > 4096:
		return badInputf("--size %d out of range [8, 4096]", *size)
	}
	if err := synth.WriteDatasetSize(*out, *seed, *count, *clips, *size); err != nil {
		return err
	}
	kind := "scenes"
	if *clips {
		kind = "clips"
	}
	fmt.Printf("wrote %d %s to %s\n", *count, kind, *out)
	return nil
}
