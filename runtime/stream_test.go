package runtime

import (
	"context"
	"strings"
	"testing"
)

// TestOnTokenStreamsTheAnswer checks that the pieces given to OnToken add
// up to the answer, arriving one step at a time for greedy decoding.
func TestOnTokenStreamsTheAnswer(t *testing.T) {
	c := tinyConfig()
	m, _ := loadTiny(t, c, 11)
	img := randomImage(c.image, 4)
	for _, beam := range []int{1, 3} {
		var pieces []string
		res, err := m.Generate(context.Background(), Request{
			Frames: []Image{img}, Prompt: "caption en", MaxTokens: 9, Beam: beam,
			OnToken: func(p string) { pieces = append(pieces, p) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(pieces, ""); got != res.Text {
			t.Errorf("beam %d: streamed %q, answer %q", beam, got, res.Text)
		}
		if beam == 1 && res.Text != "" && len(res.Tokens) > 2 && len(pieces) < 2 {
			t.Errorf("greedy answer of %d tokens came in %d piece(s); want it streamed", len(res.Tokens), len(pieces))
		}
	}
}
