package synth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDeterministic(t *testing.T) {
	for _, seed := range []int64{0, 1, 42, 9_000_007} {
		a, b := NewScene(seed), NewScene(seed)
		if !bytes.Equal(a.Render(64).Pix, b.Render(64).Pix) {
			t.Errorf("seed %d: two renders differ", seed)
		}
		if !slices.Equal(a.Questions(), b.Questions()) {
			t.Errorf("seed %d: questions differ", seed)
		}
		ca, cb := NewClip(seed).Frames(64), NewClip(seed).Frames(64)
		for i := range ca {
			if !bytes.Equal(ca[i].Pix, cb[i].Pix) {
				t.Errorf("seed %d: clip frame %d differs", seed, i)
			}
		}
	}
	if bytes.Equal(NewScene(1).Render(64).Pix, NewScene(2).Render(64).Pix) {
		t.Error("seeds 1 and 2 render the same picture")
	}
}

// TestGolden pins the pixels of one scene so that a change to the renderer
// (which would invalidate the bundled model's training data) is noticed.
func TestGolden(t *testing.T) {
	img := NewScene(1_000_000).Render(64)
	var sum uint64
	for i, p := range img.Pix {
		sum = sum*1099511628211 + uint64(p) + uint64(i&3)
	}
	const want = "a purple square, a red star and a sign reading 2NV"
	if got := NewScene(1_000_000).Caption(); got != want {
		t.Errorf("caption = %q, want %q", got, want)
	}
	if sum != 16409885552450816676 {
		t.Errorf("pixel hash %d: the renderer changed; retrain the bundled model (train/) and update this hash", sum)
	}
}

// colorAt returns the mean colour of the 3x3 pixels around normalized (x, y).
func colorAt(img *image.RGBA, x, y float64) [3]float64 {
	n := img.Bounds().Dx()
	cx, cy := int(x*float64(n)), int(y*float64(n))
	var c [3]float64
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			i := img.PixOffset(cx+dx, cy+dy)
			for k := range c {
				c[k] += float64(img.Pix[i+k]) / 9
			}
		}
	}
	return c
}

// nearestColor names the object colour closest to c.
func nearestColor(c [3]float64) Color {
	best, bd := Color(0), math.Inf(1)
	for k := Color(0); k < numColors; k++ {
		var d float64
		for i := range c {
			d += (c[i] - colorRGB[k][i]) * (c[i] - colorRGB[k][i])
		}
		if d < bd {
			best, bd = k, d
		}
	}
	return best
}

// TestAnswersMatchPixels checks each scene's answers against what the
// picture shows: the colour at each object's centre, the sign's glyphs read
// back from the pixels with the font, and counts, places and "is there"
// answers against the objects.
func TestAnswersMatchPixels(t *testing.T) {
	for seed := int64(5_000_000); seed < 5_000_300; seed++ {
		s := NewScene(seed)
		img := s.Render(64)
		for _, o := range s.Objects {
			y := o.Y
			if o.Shape == Triangle {
				y += 0.2 * o.Size // the centroid of the triangle sits below the box centre
			}
			if got := nearestColor(colorAt(img, o.X, y)); got != o.Color {
				t.Fatalf("seed %d: %v %v at (%.2f, %.2f) looks %v", seed, o.Color, o.Shape, o.X, o.Y, got)
			}
		}
		if s.Sign != nil {
			if got := readSign(img, s.Sign); got != s.Sign.Text {
				t.Fatalf("seed %d: sign reads %q from the pixels, want %q", seed, got, s.Sign.Text)
			}
		}
		for _, q := range s.Questions() {
			checkSceneQA(t, s, q)
		}
	}
}

// readSign recovers the code from the picture: each character cell is
// compared with every glyph of the font by the darkness of its font pixels.
func readSign(img *image.RGBA, g *Sign) string {
	n := float64(img.Bounds().Dx())
	var out []byte
	for ch := 0; ch < len(g.Text); ch++ {
		var ink [glyphH][glyphW]bool
		for row := 0; row < glyphH; row++ {
			for col := 0; col < glyphW; col++ {
				x := g.X + (1.5+float64(ch*(glyphW+1)+col)+0.5)*signUnit
				y := g.Y + (1.5+float64(row)+0.5)*signUnit
				i := img.PixOffset(int(x*n), int(y*n))
				ink[row][col] = img.Pix[i] < 128
			}
		}
		best, bestErr := byte('?'), glyphW*glyphH+1
		for _, c := range []byte(CodeAlphabet) {
			e := 0
			for row := 0; row < glyphH; row++ {
				for col := 0; col < glyphW; col++ {
					if ink[row][col] != inked(c, col, row) {
						e++
					}
				}
			}
			if e < bestErr {
				best, bestErr = c, e
			}
		}
		out = append(out, best)
	}
	return string(out)
}

func checkSceneQA(t *testing.T, s Scene, q QA) {
	t.Helper()
	p := strings.TrimPrefix(q.Prompt, "answer en ")
	switch q.Task() {
	case "caption":
		n := strings.Count(q.Answer, ", ") + strings.Count(q.Answer, " and ") + 1
		want := len(s.Objects)
		if s.Sign != nil {
			want++
		}
		if n != want {
			t.Errorf("seed %d: caption %q names %d things, want %d", s.Seed, q.Answer, n, want)
		}
	case "color":
		sh := shapeByName(t, strings.TrimSuffix(strings.TrimPrefix(p, "what color is the "), "?"))
		n, o := count(s.Objects, sh)
		if n != 1 || o.Color.String() != q.Answer {
			t.Errorf("seed %d: %q -> %q, but %d such shapes (last %v)", s.Seed, q.Prompt, q.Answer, n, o.Color)
		}
	case "count":
		sh := shapeByName(t, strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(p, "how many "), " are there?"), "s"))
		n, _ := count(s.Objects, sh)
		if strconv.Itoa(n) != q.Answer {
			t.Errorf("seed %d: %q -> %q, want %d", s.Seed, q.Prompt, q.Answer, n)
		}
	case "exists":
		words := strings.Fields(strings.TrimSuffix(p, "?"))
		c, sh := words[len(words)-2], shapeByName(t, words[len(words)-1])
		has := slices.ContainsFunc(s.Objects, func(o Object) bool { return o.Color.String() == c && o.Shape == sh })
		if (q.Answer == "yes") != has {
			t.Errorf("seed %d: %q -> %q, but present = %v", s.Seed, q.Prompt, q.Answer, has)
		}
	case "where":
		sh := shapeByName(t, strings.TrimSuffix(strings.TrimPrefix(p, "where is the "), "?"))
		n, o := count(s.Objects, sh)
		ok := n == 1
		switch q.Answer {
		case "left":
			ok = ok && o.X < 0.5-0.12 && math.Abs(o.Y-0.5) < 0.5-o.X
		case "right":
			ok = ok && o.X > 0.5+0.12 && math.Abs(o.Y-0.5) < o.X-0.5
		case "top":
			ok = ok && o.Y < 0.5-0.12 && math.Abs(o.X-0.5) < 0.5-o.Y
		case "bottom":
			ok = ok && o.Y > 0.5+0.12 && math.Abs(o.X-0.5) < o.Y-0.5
		default:
			ok = false
		}
		if !ok {
			t.Errorf("seed %d: %q -> %q, but object at (%.2f, %.2f)", s.Seed, q.Prompt, q.Answer, o.X, o.Y)
		}
	case "ocr":
		if s.Sign == nil || q.Answer != s.Sign.Text || len(q.Answer) != CodeLength {
			t.Errorf("seed %d: ocr -> %q", s.Seed, q.Answer)
		}
	default:
		t.Errorf("seed %d: unexpected scene question %q", s.Seed, q.Prompt)
	}
}

func shapeByName(t *testing.T, name string) Shape {
	t.Helper()
	for sh := Shape(0); sh < numShapes; sh++ {
		if sh.String() == name {
			return sh
		}
	}
	t.Fatalf("unknown shape %q", name)
	return 0
}

// TestClipAnswers checks clip answers against the geometry of every frame:
// entering objects are wholly outside in frame 0 and wholly inside at the
// end, leaving ones the reverse, and the named direction is the main
// direction of the object's displacement in the picture.
func TestClipAnswers(t *testing.T) {
	enters := 0
	for seed := int64(6_000_000); seed < 6_000_200; seed++ {
		c := NewClip(seed)
		if len(c.Objects) == 0 {
			t.Fatalf("seed %d: empty clip", seed)
		}
		frames := c.Frames(64)
		if len(frames) != ClipFrames {
			t.Fatalf("seed %d: %d frames", seed, len(frames))
		}
		anyEnter, anyLeave := false, false
		for _, m := range c.Objects {
			first, last := m.At(0), m.At(c.N-1)
			switch m.Motion {
			case Enters:
				anyEnter = true
				if !outside(first) || !within(last) {
					t.Errorf("seed %d: entering object not outside then inside: %+v %+v", seed, first, last)
				}
				if got := nearestColor(colorAt(frames[c.N-1], last.X, last.Y+0.1*last.Size)); got != m.Color {
					t.Errorf("seed %d: entered %v object looks %v in the last frame", seed, m.Color, got)
				}
			case Leaves:
				anyLeave = true
				if !within(first) || !outside(last) {
					t.Errorf("seed %d: leaving object not inside then outside", seed)
				}
			case Stays:
				for f := 0; f < c.N; f++ {
					if !within(m.At(f)) {
						t.Errorf("seed %d: staying object leaves the frame at %d", seed, f)
					}
				}
			}
			dx, dy := last.X-first.X, last.Y-first.Y
			want := map[bool]string{true: "right", false: "left"}[dx > 0]
			if math.Abs(dy) > math.Abs(dx) {
				want = map[bool]string{true: "down", false: "up"}[dy > 0]
			}
			if math.Max(math.Abs(dx), math.Abs(dy)) < 0.15 {
				t.Errorf("seed %d: object moves only %.2f", seed, math.Max(math.Abs(dx), math.Abs(dy)))
			}
			if m.Direction() != want {
				t.Errorf("seed %d: direction %s, displacement (%.2f, %.2f)", seed, m.Direction(), dx, dy)
			}
		}
		if anyEnter {
			enters++
		}
		for _, q := range c.Questions() {
			switch q.Task() {
			case "enter":
				if (q.Answer == "yes") != anyEnter {
					t.Errorf("seed %d: enter -> %s", seed, q.Answer)
				}
			case "leave":
				if (q.Answer == "yes") != anyLeave {
					t.Errorf("seed %d: leave -> %s", seed, q.Answer)
				}
			case "direction":
			default:
				t.Errorf("seed %d: unexpected clip question %q", seed, q.Prompt)
			}
		}
	}
	if enters < 70 || enters > 130 {
		t.Errorf("%d of 200 clips have an entering object, want about half", enters)
	}
}

func within(o Object) bool {
	return o.X-o.Size >= 0 && o.X+o.Size <= 1 && o.Y-o.Size >= 0 && o.Y+o.Size <= 1
}

func outside(o Object) bool {
	return o.X+o.Size <= 0 || o.X-o.Size >= 1 || o.Y+o.Size <= 0 || o.Y-o.Size >= 1
}

func TestWriteDataset(t *testing.T) {
	for _, clips := range []bool{false, true} {
		dir := t.TempDir()
		if err := WriteDataset(dir, 3, 5, clips); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(dir, "questions.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		items := map[int64]bool{}
		lines := 0
		for sc.Scan() {
			lines++
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("line %d: %v", lines, err)
			}
			items[r.Seed] = true
			want := 1
			if clips {
				want = ClipFrames
			}
			if len(r.Images) != want || !slices.IsSorted(r.Images) {
				t.Fatalf("line %d: images %v", lines, r.Images)
			}
			for _, p := range r.Images {
				data, err := os.ReadFile(filepath.Join(dir, p))
				if err != nil {
					t.Fatal(err)
				}
				img, err := png.Decode(bytes.NewReader(data))
				if err != nil || img.Bounds().Dx() != ImageSize || img.Bounds().Dy() != ImageSize {
					t.Fatalf("%s: %v %v", p, err, img.Bounds())
				}
			}
			if r.Prompt == "" || r.Answer == "" || r.Task == "other" {
				t.Fatalf("line %d: %+v", lines, r)
			}
		}
		f.Close()
		if len(items) != 5 || !items[ItemSeed(3, 0)] || !items[ItemSeed(3, 4)] {
			t.Errorf("clips=%v: items %v", clips, items)
		}
		if clips {
			ents, _ := os.ReadDir(filepath.Join(dir, "clip-000002"))
			if len(ents) != ClipFrames {
				t.Errorf("clip folder holds %d files", len(ents))
			}
			if _, err := os.Stat(filepath.Join(dir, "scenes.jsonl")); err == nil {
				t.Error("scenes.jsonl written for clips")
			}
			checkClipRecords(t, dir, 3, 5)
		} else {
			checkSceneRecords(t, dir, 3, 5)
		}
	}
	if err := WriteDataset(t.TempDir(), 1, -1, false); err == nil {
		t.Error("negative count accepted")
	}
}

func TestSizes(t *testing.T) {
	for _, n := range []int{1, 17, 224} {
		if got := NewScene(7).Render(n).Bounds().Dx(); got != max(n, 1) {
			t.Errorf("Render(%d) is %d wide", n, got)
		}
	}
}

func BenchmarkRender64(b *testing.B) {
	s := NewScene(1)
	for b.Loop() {
		s.Render(64)
	}
}

// TestLabels checks each scene's label map against its picture: every
// object and every sign gets labelled pixels; the pixels of object i whose
// four neighbours carry the same label show, on average, object i's colour
// (within the per-pixel noise); the sign's pixels are its panel's area.
func TestLabels(t *testing.T) {
	for seed := int64(0); seed < 300; seed++ {
		s := NewScene(seed)
		img, lab := s.Render(ImageSize), s.Labels(ImageSize)
		if lab.Bounds() != img.Bounds() {
			t.Fatalf("seed %d: labels %v, picture %v", seed, lab.Bounds(), img.Bounds())
		}
		at := func(x, y int) uint8 { return lab.GrayAt(x, y).Y }
		var sum [256][3]float64
		var n, all [256]int
		for y := 0; y < ImageSize; y++ {
			for x := 0; x < ImageSize; x++ {
				l := at(x, y)
				all[l]++
				if l != LabelBackground && l != LabelSign && int(l) > len(s.Objects) && (s.Sign == nil || int(l) < LabelGlyph || int(l) >= LabelGlyph+len(s.Sign.Text)) {
					t.Fatalf("seed %d: label %d at (%d, %d) with %d objects", seed, l, x, y, len(s.Objects))
				}
				if x == 0 || y == 0 || x == ImageSize-1 || y == ImageSize-1 ||
					at(x-1, y) != l || at(x+1, y) != l || at(x, y-1) != l || at(x, y+1) != l {
					continue
				}
				c := img.RGBAAt(x, y)
				sum[l][0] += float64(c.R)
				sum[l][1] += float64(c.G)
				sum[l][2] += float64(c.B)
				n[l]++
			}
		}
		for i, o := range s.Objects {
			l := 1 + i
			if all[l] == 0 {
				t.Fatalf("seed %d: object %d (%s %s) has no labelled pixel", seed, i, o.Color, o.Shape)
			}
			if n[l] == 0 {
				continue // a thin shape with no interior pixel
			}
			for k := range 3 {
				if d := math.Abs(sum[l][k]/float64(n[l]) - colorRGB[o.Color][k]); d > 8 {
					t.Fatalf("seed %d: object %d (%s %s): interior channel %d averages %.1f, colour %.0f",
						seed, i, o.Color, o.Shape, k, sum[l][k]/float64(n[l]), colorRGB[o.Color][k])
				}
			}
		}
		if s.Sign != nil {
			w, h := s.Sign.Size()
			area := w * h * ImageSize * ImageSize
			got := all[LabelSign]
			// Each character's box: glyphW x glyphH font pixels, left to
			// right; its pixels hold the ink, the rest of the panel none.
			const side = signUnit * ImageSize
			lastX := -1.0
			for i := range len(s.Sign.Text) {
				l := uint8(LabelGlyph + i)
				got += all[l]
				box := glyphW * glyphH * side * side
				if math.Abs(float64(all[l])-box) > (glyphW+glyphH)*side+2 { // a row and a column at most
					t.Fatalf("seed %d: character %d has %d pixels, its box %.0f", seed, i, all[l], box)
				}
				var sx, dark float64
				for y := 0; y < ImageSize; y++ {
					for x := 0; x < ImageSize; x++ {
						if at(x, y) == l {
							sx += float64(x)
							if img.RGBAAt(x, y).R < 100 {
								dark++
							}
						}
					}
				}
				if cx := sx / float64(all[l]); cx <= lastX {
					t.Fatalf("seed %d: character %d's box centre x %.1f is not right of the one before (%.1f)", seed, i, cx, lastX)
				} else {
					lastX = cx
				}
				if dark < 0.2*float64(all[l]) {
					t.Fatalf("seed %d: character %d's box has %v dark pixels of %d", seed, i, dark, all[l])
				}
			}
			if math.Abs(float64(got)-area) > 2*(w+h)*ImageSize {
				t.Fatalf("seed %d: %v sign pixels, panel area %.0f", seed, got, area)
			}
			if n[LabelSign] > 0 && sum[LabelSign][0]/float64(n[LabelSign]) < 200 {
				t.Fatalf("seed %d: the panel outside the character boxes averages red %.0f: ink outside the boxes?", seed, sum[LabelSign][0]/float64(n[LabelSign]))
			}
		} else if all[LabelSign] != 0 {
			t.Fatalf("seed %d: %d sign pixels without a sign", seed, all[LabelSign])
		}
	}
}

// checkClipRecords checks clips.jsonl of a clip dataset: one record per
// clip, in order, whose frames are the clip's files and whose objects move
// as the clip's do.
func checkClipRecords(t *testing.T, dir string, seed int64, count int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "clips.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != count {
		t.Fatalf("clips.jsonl has %d lines, want %d", len(lines), count)
	}
	motions := map[Motion]string{Stays: "stays", Enters: "enters", Leaves: "leaves"}
	for i, l := range lines {
		var r ClipRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("clips.jsonl line %d: %v", i+1, err)
		}
		c := NewClip(ItemSeed(seed, i))
		if r.Seed != c.Seed || len(r.Frames) != ClipFrames || len(r.Objects) != len(c.Objects) {
			t.Fatalf("clips.jsonl line %d: %+v, clip %+v", i+1, r, c)
		}
		for f, p := range r.Frames {
			if p != fmt.Sprintf("clip-%06d/frame-%02d.png", i, f) {
				t.Fatalf("clips.jsonl line %d: frame %d is %q", i+1, f, p)
			}
		}
		for j, m := range c.Objects {
			want := ClipObject{Shape: m.Shape.String(), Color: m.Color.String(), X: m.X, Y: m.Y, VX: m.VX, VY: m.VY,
				Size: m.Size, Motion: motions[m.Motion], Direction: m.Direction()}
			if r.Objects[j] != want {
				t.Fatalf("clips.jsonl line %d: object %d is %+v, want %+v", i+1, j, r.Objects[j], want)
			}
			// The record alone places the object in the last frame as the clip does.
			last := m.At(ClipFrames - 1)
			if x := r.Objects[j].X + r.Objects[j].VX*(ClipFrames-1); math.Abs(x-last.X) > 1e-9 {
				t.Fatalf("clips.jsonl line %d: object %d ends at x %v, clip at %v", i+1, j, x, last.X)
			}
		}
	}
}

// checkSceneRecords checks scenes.jsonl of a scene dataset: one record per
// scene, in order, whose objects, sign and label map are the scene's own.
func checkSceneRecords(t *testing.T, dir string, seed int64, count int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != count {
		t.Fatalf("scenes.jsonl has %d lines, want %d", len(lines), count)
	}
	for i, l := range lines {
		var r SceneRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("scenes.jsonl line %d: %v", i+1, err)
		}
		s := NewScene(ItemSeed(seed, i))
		if r.Seed != s.Seed || r.Image != fmt.Sprintf("scene-%06d.png", i) || len(r.Objects) != len(s.Objects) {
			t.Fatalf("scenes.jsonl line %d: %+v, scene %+v", i+1, r, s)
		}
		for j, o := range s.Objects {
			if r.Objects[j] != (SceneObject{Shape: o.Shape.String(), Color: o.Color.String()}) {
				t.Fatalf("scenes.jsonl line %d: object %d is %+v, scene has %s %s", i+1, j, r.Objects[j], o.Color, o.Shape)
			}
		}
		want := ""
		if s.Sign != nil {
			want = s.Sign.Text
		}
		if r.Sign != want {
			t.Fatalf("scenes.jsonl line %d: sign %q", i+1, r.Sign)
		}
		f, err := os.Open(filepath.Join(dir, r.Labels))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", r.Labels, err)
		}
		g, ok := img.(*image.Gray)
		if !ok || !bytes.Equal(g.Pix, s.Labels(ImageSize).Pix) {
			t.Fatalf("%s: not the scene's label map (%T)", r.Labels, img)
		}
	}
}
