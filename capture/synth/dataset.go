package synth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
)

// ImageSize is the side, in pixels, of the pictures WriteDataset writes.
const ImageSize = 64

// ItemSeed returns the scene or clip seed of item i of the dataset of seed:
// seed*1e6 + i. Datasets of different seeds (with fewer than a million items)
// never share an item, so a held-out seed gives held-out scenes, and
// `palid ask --synthetic ItemSeed(seed, i)` shows item i again.
func ItemSeed(seed int64, i int) int64 { return seed*1_000_000 + int64(i) }

// Record is one line of questions.jsonl.
type Record struct {
	Images []string `json:"images"` // paths relative to the dataset directory
	Prompt string   `json:"prompt"`
	Answer string   `json:"answer"`
	Task   string   `json:"task"` // QA.Task
	Seed   int64    `json:"seed"` // the scene or clip seed
}

// SceneRecord is one line of scenes.jsonl: what a scene holds, and where.
type SceneRecord struct {
	Image  string `json:"image"`  // the picture, relative to the dataset directory
	Labels string `json:"labels"` // its label map (Scene.Labels) as an 8-bit grey PNG
	// Objects lists the scene's objects in order: label 1+i is Objects[i].
	Objects []SceneObject `json:"objects"`
	Sign    string        `json:"sign,omitempty"` // the sign's code (label 255); empty: no sign
	Seed    int64         `json:"seed"`
}

// SceneObject is an object of a SceneRecord.
type SceneObject struct {
	Shape string `json:"shape"`
	Color string `json:"color"`
}

// ClipRecord is one line of clips.jsonl: a clip's frames and how each of
// its objects moves, so that training can tell what every patch of every
// frame shows (an object is at X+VX*t, Y+VY*t in frame t).
type ClipRecord struct {
	Frames  []string     `json:"frames"` // relative to the dataset directory, in order
	Objects []ClipObject `json:"objects"`
	Seed    int64        `json:"seed"`
}

// ClipObject is a moving object of a ClipRecord, in normalized units
// (the picture is [0,1] x [0,1], y down): its centre in frame 0, its
// velocity per frame and its size (Object.Size).
type ClipObject struct {
	Shape     string  `json:"shape"`
	Color     string  `json:"color"`
	X         float64 `json:"x"`
	Y         float64 `json:"y"`
	VX        float64 `json:"vx"`
	VY        float64 `json:"vy"`
	Size      float64 `json:"size"`
	Motion    string  `json:"motion"`    // "stays", "enters" or "leaves"
	Direction string  `json:"direction"` // Moving.Direction
}

// String returns "stays", "enters" or "leaves".
func (m Motion) String() string {
	switch m {
	case Enters:
		return "enters"
	case Leaves:
		return "leaves"
	}
	return "stays"
}

// WriteDataset writes count scenes (or, with clips, count clips) of the
// dataset of seed into dir at ImageSize pixels: scene-NNNNNN.png files, or
// clip-NNNNNN/frame-NN.png folders, and questions.jsonl with one Record per
// question. For clips it also writes clips.jsonl, one ClipRecord per clip.
// For scenes it also writes each scene's label map,
// scene-NNNNNN.labels.png, and scenes.jsonl with one SceneRecord per scene.
func WriteDataset(dir string, seed int64, count int, clips bool) error {
	return WriteDatasetSize(dir, seed, count, clips, ImageSize)
}

// WriteDatasetSize is WriteDataset at size x size pixels.
func WriteDatasetSize(dir string, seed int64, count int, clips bool, size int) error {
	if count < 0 || count >= 1_000_000 {
		return fmt.Errorf("synth: count %d out of range [0, 999999]", count)
	}
	if size < 8 || size > 4096 {
		return fmt.Errorf("synth: image size %d out of range [8, 4096]", size)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "questions.jsonl"))
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// The per-item index: scenes.jsonl or clips.jsonl.
	index := "scenes.jsonl"
	if clips {
		index = "clips.jsonl"
	}
	sf, err := os.Create(filepath.Join(dir, index))
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	defer sf.Close()
	sw := bufio.NewWriter(sf)
	senc := json.NewEncoder(sw)
	senc.SetEscapeHTML(false)
	for i := 0; i < count; i++ {
		s := ItemSeed(seed, i)
		var images []string
		var qs []QA
		if clips {
			c := NewClip(s)
			name := fmt.Sprintf("clip-%06d", i)
			if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
				return fmt.Errorf("synth: %w", err)
			}
			for t, img := range c.Frames(size) {
				p := fmt.Sprintf("%s/frame-%02d.png", name, t)
				if err := writePNG(filepath.Join(dir, p), img); err != nil {
					return err
				}
				images = append(images, p)
			}
			qs = c.Questions()
			rec := ClipRecord{Frames: images, Seed: s}
			for _, m := range c.Objects {
				rec.Objects = append(rec.Objects, ClipObject{
					Shape: m.Shape.String(), Color: m.Color.String(), X: m.X, Y: m.Y, VX: m.VX, VY: m.VY,
					Size: m.Size, Motion: m.Motion.String(), Direction: m.Direction()})
			}
			if err := senc.Encode(rec); err != nil {
				return fmt.Errorf("synth: %w", err)
			}
		} else {
			sc := NewScene(s)
			p := fmt.Sprintf("scene-%06d.png", i)
			if err := writePNG(filepath.Join(dir, p), sc.Render(size)); err != nil {
				return err
			}
			images = []string{p}
			qs = sc.Questions()
			lp := fmt.Sprintf("scene-%06d.labels.png", i)
			if err := writePNG(filepath.Join(dir, lp), sc.Labels(size)); err != nil {
				return err
			}
			rec := SceneRecord{Image: p, Labels: lp, Seed: s}
			for _, o := range sc.Objects {
				rec.Objects = append(rec.Objects, SceneObject{Shape: o.Shape.String(), Color: o.Color.String()})
			}
			if sc.Sign != nil {
				rec.Sign = sc.Sign.Text
			}
			if err := senc.Encode(rec); err != nil {
				return fmt.Errorf("synth: %w", err)
			}
		}
		for _, q := range qs {
			if err := enc.Encode(Record{Images: images, Prompt: q.Prompt, Answer: q.Answer, Task: q.Task(), Seed: s}); err != nil {
				return fmt.Errorf("synth: %w", err)
			}
		}
	}
	for _, out := range []struct {
		w *bufio.Writer
		f *os.File
	}{{w, f}, {sw, sf}} {
		if err := out.w.Flush(); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		if err := out.f.Close(); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("synth: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}
