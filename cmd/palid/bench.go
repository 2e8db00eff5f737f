package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

// benchReport is the output of palid bench; the model figures (image
// encode ms, tokens/s, peak RSS) are added to it next to the kernels.
type benchReport struct {
	GOARCH  string              `json:"goarch"`
	CPUs    int                 `json:"cpus"`
	Threads int                 `json:"threads"`
	Path    string              `json:"kernel_path"`
	Kernels []string            `json:"kernels"`
	Results []neon.KernelResult `json:"kernel_results"`
	Models  []modelResult       `json:"models,omitempty"`
}

func init() {
	register("bench", "measure kernels (GFLOP/s, assembly vs Go twin) and models (encode ms, tokens/s, RSS)", func(args []string) error {
		fs := newFlags("bench", "")
		threads := fs.Int("threads", 0, "worker threads (0: all CPUs)")
		asJSON := fs.Bool("json", false, "write JSON instead of a table")
		per := fs.Duration("time", time.Second, "measuring time per case")
		twin := fs.Bool("twin", true, "also measure the Go twin")
		shapes := fs.String("shapes", "", "comma-separated shape names to run (default all: "+shapeNames()+")")
		modelDir := fs.String("model", "", "model directory to measure (default: the bundled model)")
		models := fs.Bool("models", true, "measure the models too (image encode, prefill, decode, a video question, peak RSS)")
		base := fs.Bool("base", true, "include a ViT-B/16 + T5-base shaped model with random Q8_0 weights")
		video := fs.Int("video-frames", 16, "frames of the end-to-end video question (0: skip)")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return badInputf("unexpected argument %q", fs.Arg(0))
		}
		if *threads < 0 {
			return badInputf("--threads must be >= 0, got %d", *threads)
		}
		if *per <= 0 {
			return badInputf("--time must be positive, got %v", *per)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		sel, err := selectShapes(*shapes)
		if err != nil {
			return err
		}
		if *video < 0 || *video > palirt.MaxFrames {
			return badInputf("--video-frames must be 0 to %d, got %d", palirt.MaxFrames, *video)
		}
		rep, err := kernelBench(ctx, *threads, *per, *twin, sel)
		if err != nil {
			return err
		}
		if *models {
			rep.Models, err = benchModels(ctx, *modelDir, *threads, *video, *base, os.Stderr)
			if err != nil {
				return err
			}
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		if err := writeBenchTable(os.Stdout, rep); err != nil {
			return err
		}
		return writeModelTable(os.Stdout, rep.Models)
	})
}

// kernelBench runs the kernel part of palid bench.
func kernelBench(ctx context.Context, threads int, per time.Duration, twin bool, shapes []neon.BenchShape) (benchReport, error) {
	p := neon.NewPool(threads)
	defer p.Close()
	res, err := neon.BenchmarkShapes(ctx, p, per, twin, shapes)
	if err != nil {
		return benchReport{}, err
	}
	return benchReport{
		GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), Threads: p.Threads(),
		Path: neon.KernelPath(), Kernels: neon.Kernels(), Results: res,
	}, nil
}

func writeBenchTable(w io.Writer, rep benchReport) error {
	fmt.Fprintf(w, "kernels: %s path (%v), %d threads, %s\n\n", rep.Path, rep.Kernels, rep.Threads, rep.GOARCH)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shape\tm x n x k\ttype\tkernel\tpath\tms/op\tGFLOP/s\tGB/s weights\tvs copy (1 thread / all)\t")
	for _, r := range rep.Results {
		shape := r.Shape
		if r.Cold {
			shape += " (cold)"
		}
		gf := fmt.Sprintf("%.1f", r.GFLOPS)
		if r.Kernel == "copy" {
			gf = "-"
		}
		ratio := ""
		if r.CopyRatio > 0 {
			ratio = fmt.Sprintf("%.0f%% / %.0f%%", 100*r.CopyRatio, 100*r.ParallelCopyRatio)
		}
		fmt.Fprintf(tw, "%s\t%dx%dx%d\t%s\t%s\t%s\t%.3f\t%s\t%.1f\t%s\t\n",
			shape, r.Rows, r.Tokens, r.Cols, r.Type, r.Kernel, r.Path, r.NsPerOp/1e6, gf, r.GBps, ratio)
	}
	return tw.Flush()
}

func shapeNames() string {
	var names []string
	for _, s := range neon.BenchShapes {
		names = append(names, s.Name)
	}
	return strings.Join(names, ",")
}

// selectShapes parses --shapes; empty means all.
func selectShapes(list string) ([]neon.BenchShape, error) {
	if list == "" {
		return neon.BenchShapes, nil
	}
	var sel []neon.BenchShape
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, s := range neon.BenchShapes {
			if s.Name == strings.TrimSpace(name) {
				sel = append(sel, s)
				found = true
			}
		}
		if !found {
			return nil, badInputf("unknown shape %q in --shapes (known: %s)", name, shapeNames())
		}
	}
	return sel, nil
}
