package capture

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"
)

// Pump is the capture loop: it reads frames from src into ring and
// hands each to fn (which may be nil; it must not block, e.g.
// TokenCache.Offer) until ctx ends, the source ends (io.EOF) or is
// closed. A frame that cannot be read (a broken file in a dir: source)
// is logged and skipped. It returns ctx's error, io.EOF or ErrClosed.
func Pump(ctx context.Context, src Source, ring *Ring, fn func(Frame), logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	for {
		f, err := src.Next(ctx)
		switch {
		case err == nil:
			ring.Add(f)
			if fn != nil {
				fn(f)
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, io.EOF), errors.Is(err, ErrClosed):
			return err
		}
		logger.Warn("capture: frame skipped", "err", err)
		select {
		case <-time.After(50 * time.Millisecond): // no busy loop on a source that keeps failing
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
