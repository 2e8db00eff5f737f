// Package capture provides palid's frames: sources (V4L2 cameras, still
// images, directories of images, MJPEG over HTTP, an ffmpeg subprocess and
// the synthetic scene renderer), pixel-format decoding (MJPEG, YUYV, NV12),
// resizing and normalisation for the model, a ring of recent frames with a
// window sampler, and a cache of per-frame visual tokens.
//
// It imports nothing else of palid's but capture/synth.
package capture

import (
	"context"
	"image"
	"time"
)

// Frame is one captured picture.
type Frame struct {
	// Image holds the decoded pixels (an *image.RGBA for raw camera
	// formats, an *image.YCbCr for MJPEG).
	Image image.Image
	// Time is when the frame was captured.
	Time time.Time
	// Seq numbers the frames of one source from 1, increasing by one per
	// frame delivered.
	Seq uint64
}

// Source delivers frames.
type Source interface {
	// Next blocks until the next frame or ctx ends.
	Next(ctx context.Context) (Frame, error)
	// Close releases the source. Next returns ErrClosed afterwards.
	Close() error
}
