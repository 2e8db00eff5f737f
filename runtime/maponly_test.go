package runtime

import (
	"context"
	"testing"

	"github.com/palid/palid/neon"
)

// TestMapOnlyMatchesPacked checks that a model used straight from the
// mapped file (no copy at start-up) answers exactly as the packed one.
func TestMapOnlyMatchesPacked(t *testing.T) {
	c := tinyConfig()
	c.quant = neon.Q8_0
	dir := tinyModelDir(t, c, 21)
	img := randomImage(c.image, 3)
	var answers [2]Result
	for i, mapOnly := range []bool{false, true} {
		m, err := Load(dir, Options{Threads: 2, MapOnly: mapOnly})
		if err != nil {
			t.Fatal(err)
		}
		if packed := m.txt.enc[0].q.Packed(); packed == mapOnly {
			t.Fatalf("MapOnly %v but the weights packed = %v", mapOnly, packed)
		}
		answers[i], err = m.Generate(context.Background(), Request{Frames: []Image{img}, Prompt: "caption en", MaxTokens: 8})
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if !equalInts(answers[0].Tokens, answers[1].Tokens) {
		t.Errorf("packed %v, map-only %v", answers[0].Tokens, answers[1].Tokens)
	}
}
