package delegate

import (
	"context"
	"errors"
	"fmt"

	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

// ExportOptions configures ExportVision.
type ExportOptions struct {
	// Calibration frames at the model's resolution (ImageSize square,
	// CHW in [-1, 1] like runtime.Image): the int8 ranges of every
	// activation are their extremes over these frames. At least one.
	Calibration []palirt.Image
	// Description is written into the model's description field.
	Description string
	// Pool runs the float graph's matrix products during calibration; nil
	// makes one for the call.
	Pool *neon.Pool
}

// ExportReport describes an exported model.
type ExportReport struct {
	Ops     string // operator counts, e.g. "ADD x9, CONV_2D x1, ..."
	NumOps  int
	Tensors int
	Bytes   int
	Input   []int // [1, S, S, 3] int8
	Output  []int // [tokens, ProjDim] int8
}

// ExportVision writes the SigLIP tower and projector of vt as a fully int8
// quantized .tflite (static shapes; int8 input [1, S, S, 3] NHWC holding the
// frame in [-1, 1], int8 output [tokens, text width] holding the projected
// visual tokens), calibrated on opts.Calibration. See buildViT for the
// operators.
func ExportVision(ctx context.Context, vt palirt.VisionTower, opts ExportOptions) ([]byte, ExportReport, error) {
	var rep ExportReport
	if len(opts.Calibration) == 0 {
		return nil, rep, errors.New("export: no calibration frames")
	}
	g, err := buildViT(vt)
	if err != nil {
		return nil, rep, err
	}
	pool := opts.Pool
	if pool == nil {
		pool = neon.NewPool(0)
		defer pool.Close()
	}
	for i, img := range opts.Calibration {
		if err := ctx.Err(); err != nil {
			return nil, rep, err
		}
		x, err := frameHWC(img, vt.ImageSize)
		if err != nil {
			return nil, rep, fmt.Errorf("export: calibration frame %d: %w", i, err)
		}
		v, err := g.eval(pool, x)
		if err != nil {
			return nil, rep, fmt.Errorf("export: calibration frame %d: %w", i, err)
		}
		g.observe(v)
	}
	if err := g.quantize(); err != nil {
		return nil, rep, fmt.Errorf("export: %w", err)
	}
	desc := opts.Description
	if desc == "" {
		desc = "palid SigLIP vision tower and projector, int8"
	}
	data, err := g.marshal(desc)
	if err != nil {
		return nil, rep, fmt.Errorf("export: %w", err)
	}
	rep = ExportReport{
		Ops: g.opSummary(), NumOps: len(g.ops), Tensors: len(g.t), Bytes: len(data),
		Input: g.t[g.inputs[0]].shape, Output: g.t[g.outputs[0]].shape,
	}
	return data, rep, nil
}

// frameHWC checks a frame against the model size and lays it out NHWC.
func frameHWC(img palirt.Image, size int) ([]float32, error) {
	if img.Width != size || img.Height != size {
		return nil, fmt.Errorf("frame is %dx%d, the exported model takes %dx%d", img.Width, img.Height, size, size)
	}
	if len(img.Pix) != 3*size*size {
		return nil, fmt.Errorf("frame %dx%d has %d values, want %d", size, size, len(img.Pix), 3*size*size)
	}
	plane := size * size
	out := make([]float32, 3*plane)
	for i := 0; i < plane; i++ {
		out[3*i] = img.Pix[i]
		out[3*i+1] = img.Pix[plane+i]
		out[3*i+2] = img.Pix[2*plane+i]
	}
	return out, nil
}
