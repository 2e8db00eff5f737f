package capture

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Encoder turns a frame into its visual tokens (the ViT and projector
// in palid; capture does not know the model).
type Encoder func(ctx context.Context, f Frame) ([]float32, error)

// TokenCacheOptions configure a TokenCache.
type TokenCacheOptions struct {
	// Interval is the least time between two frames encoded ahead
	// (Offer); 0 encodes every frame offered while the encoder keeps up.
	Interval time.Duration
	// Budget bounds the bytes of tokens held (4 per float32); the
	// oldest entries go first. Default 64 MiB.
	Budget int64
	// Logger receives encode failures; nil means slog.Default().
	Logger *slog.Logger
}

// TokenCache holds visual tokens per frame Seq, filled ahead of time by
// a background encoder so that a video question pays only for the text
// side. It is safe for concurrent use.
type TokenCache struct {
	enc  Encoder
	opts TokenCacheOptions

	mu      sync.Mutex
	entries map[uint64][]float32
	order   []uint64 // insertion order, oldest first
	used    int64
	pending *Frame // newest frame offered and not yet taken
	lastAt  time.Time
	wake    chan struct{}
	stats   TokenStats
}

// TokenStats count the cache's work.
type TokenStats struct {
	Encoded  int // frames encoded ahead by Run
	Skipped  int // frames offered but not encoded (rate or busy encoder)
	Hits     int // frames Tokens found cached
	Misses   int // frames Tokens had to encode itself
	Failures int // encoder errors in Run
}

// NewTokenCache returns a cache that encodes with enc.
func NewTokenCache(enc Encoder, opts TokenCacheOptions) *TokenCache {
	if opts.Budget <= 0 {
		opts.Budget = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &TokenCache{enc: enc, opts: opts, entries: map[uint64][]float32{}, wake: make(chan struct{}, 1)}
}

// Offer proposes a newly captured frame for encoding ahead. It never
// blocks: a frame is dropped when one captured less than Interval before
// it was already taken, and a frame still waiting is replaced by a newer
// one.
func (c *TokenCache) Offer(f Frame) {
	c.mu.Lock()
	if _, ok := c.entries[f.Seq]; ok || (!c.lastAt.IsZero() && f.Time.Sub(c.lastAt) < c.opts.Interval) {
		c.stats.Skipped++
		c.mu.Unlock()
		return
	}
	if c.pending != nil {
		c.stats.Skipped++
	}
	c.pending = &f
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run encodes offered frames until ctx ends; run it in its own
// goroutine.
func (c *TokenCache) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.wake:
		}
		c.mu.Lock()
		p := c.pending
		c.pending = nil
		if p != nil {
			c.lastAt = p.Time
		}
		c.mu.Unlock()
		if p == nil {
			continue
		}
		tok, err := c.enc(ctx, *p)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.mu.Lock()
			c.stats.Failures++
			c.mu.Unlock()
			c.opts.Logger.Warn("capture: encoding frame ahead failed", "seq", p.Seq, "err", err)
			continue
		}
		c.mu.Lock()
		c.stats.Encoded++
		c.put(p.Seq, tok)
		c.mu.Unlock()
	}
}

// put stores tokens; c.mu is held.
func (c *TokenCache) put(seq uint64, tok []float32) {
	if _, ok := c.entries[seq]; ok {
		return
	}
	c.entries[seq] = tok
	c.order = append(c.order, seq)
	c.used += 4 * int64(len(tok))
	drop := 0
	for drop < len(c.order)-1 && c.used > c.opts.Budget {
		c.used -= 4 * int64(len(c.entries[c.order[drop]]))
		delete(c.entries, c.order[drop])
		drop++
	}
	if drop > 0 {
		k := copy(c.order, c.order[drop:])
		c.order = c.order[:k]
	}
}

// Has reports whether the tokens of frame seq are cached (for
// Ring.WindowPreferring).
func (c *TokenCache) Has(seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[seq]
	return ok
}

// Get returns the cached tokens of frame seq. The slice is shared: do
// not modify it.
func (c *TokenCache) Get(seq uint64) ([]float32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.entries[seq]
	return t, ok
}

// Tokens returns the tokens of each frame, in order: cached ones as they
// are, the others encoded now (and cached).
func (c *TokenCache) Tokens(ctx context.Context, frames []Frame) ([][]float32, error) {
	out := make([][]float32, len(frames))
	for i, f := range frames {
		c.mu.Lock()
		t, ok := c.entries[f.Seq]
		if ok {
			c.stats.Hits++
		} else {
			c.stats.Misses++
		}
		c.mu.Unlock()
		if !ok {
			var err error
			if t, err = c.enc(ctx, f); err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.put(f.Seq, t)
			c.mu.Unlock()
		}
		out[i] = t
	}
	return out, nil
}

// Stats returns the counters so far.
func (c *TokenCache) Stats() TokenStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Len returns the number of frames cached.
func (c *TokenCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
