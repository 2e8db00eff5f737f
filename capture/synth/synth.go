// Package synth is palid's synthetic visual world: seeded scenes of coloured
// shapes and a sign with a printed code, clips of moving shapes, and
// questions about them with exact answers in PaLI prompt form.
//
// Everything is a pure function of the seed: the same seed gives the same
// scene, the same pixels and the same questions on every machine. It serves
// the training and evaluation of the bundled demo model (palid synth) and
// palid serve's synthetic camera.
package synth

import (
	"image"
	"math"
	"math/rand/v2"
)

// Shape is the kind of an object.
type Shape int

// The shapes of the synthetic world.
const (
	Circle Shape = iota
	Square
	Triangle
	Star
	numShapes
)

var shapeNames = [numShapes]string{"circle", "square", "triangle", "star"}

// String returns the shape's English name ("circle").
func (s Shape) String() string {
	if s < 0 || s >= numShapes {
		return "shape"
	}
	return shapeNames[s]
}

// Plural returns the English plural ("circles").
func (s Shape) Plural() string { return s.String() + "s" }

// Color is the named colour of an object.
type Color int

// The named colours of the synthetic world.
const (
	Red Color = iota
	Green
	Blue
	Yellow
	Purple
	Orange
	numColors
)

var colorNames = [numColors]string{"red", "green", "blue", "yellow", "purple", "orange"}

var colorRGB = [numColors][3]float64{
	{215, 35, 35},
	{40, 175, 60},
	{40, 75, 225},
	{240, 220, 35},
	{150, 55, 200},
	{250, 140, 20},
}

// String returns the colour's English name ("red").
func (c Color) String() string {
	if c < 0 || c >= numColors {
		return "colour"
	}
	return colorNames[c]
}

// Object is one shape in normalized image coordinates: X, Y are its centre
// in [0, 1] (y down), Size its half extent.
type Object struct {
	Shape Shape
	Color Color
	X, Y  float64
	Size  float64
}

// Sign is a light panel with a short printed code. X, Y is its top-left
// corner in normalized coordinates.
type Sign struct {
	Text string
	X, Y float64
}

// signUnit is the side of one font pixel, in normalized coordinates
// (2 pixels at 64 px).
const signUnit = 1.0 / 32

// CodeLength is the number of characters on a sign.
const CodeLength = 3

// Size returns the sign's width and height in normalized coordinates.
func (g Sign) Size() (w, h float64) {
	n := len(g.Text)
	return float64(n*(glyphW+1)-1+3) * signUnit, float64(glyphH+3) * signUnit
}

// background describes the backdrop: a base colour with a linear gradient
// and uniform per-pixel noise.
type background struct {
	Base  [3]float64
	GradX float64
	GradY float64
	Noise float64
}

// Scene is one still picture of the synthetic world.
type Scene struct {
	Seed    int64
	Objects []Object
	Sign    *Sign // nil: no sign
	bg      background
}

// Clip is a sequence of frames in which objects move with constant
// velocity; some enter the picture, some leave it.
type Clip struct {
	Seed    int64
	Objects []Moving
	N       int // number of frames
	bg      background
}

// Motion says how a moving object relates to the frame over a clip.
type Motion int

// Motions of clip objects.
const (
	Stays  Motion = iota // inside the picture throughout
	Enters               // outside in the first frame, wholly inside in the last
	Leaves               // wholly inside in the first frame, outside in the last
)

// Moving is an object of a clip: its position in frame 0 and its velocity
// in normalized units per frame.
type Moving struct {
	Object
	VX, VY float64
	Motion Motion
}

// ClipFrames is the number of frames of a clip.
const ClipFrames = 16

// At returns the object as it is in frame t.
func (m Moving) At(t int) Object {
	o := m.Object
	o.X += m.VX * float64(t)
	o.Y += m.VY * float64(t)
	return o
}

// Direction returns "left", "right", "up" or "down": the main axis of motion.
func (m Moving) Direction() string {
	if math.Abs(m.VX) >= math.Abs(m.VY) {
		if m.VX < 0 {
			return "left"
		}
		return "right"
	}
	if m.VY < 0 {
		return "up"
	}
	return "down"
}

// newRand returns the generator for stream of seed.
func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15^stream))
}

func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

var neutrals = [][3]float64{
	{70, 70, 70}, {105, 100, 95}, {140, 140, 140}, {175, 170, 160},
	{90, 100, 110}, {120, 110, 90}, {60, 70, 65}, {160, 165, 175},
}

func newBackground(r *rand.Rand) background {
	b := neutrals[r.IntN(len(neutrals))]
	for i := range b {
		b[i] += uniform(r, -12, 12)
	}
	return background{
		Base:  b,
		GradX: uniform(r, -30, 30),
		GradY: uniform(r, -30, 30),
		Noise: uniform(r, 0, 18),
	}
}

// NewScene returns the scene of seed: one to four shapes, or a sign with a
// code and up to two shapes, none overlapping.
func NewScene(seed int64) Scene {
	r := newRand(seed, 1)
	s := Scene{Seed: seed, bg: newBackground(r)}
	n := 1 + r.IntN(4)
	if r.Float64() < 0.4 {
		code := make([]byte, CodeLength)
		for i := range code {
			code[i] = CodeAlphabet[r.IntN(len(CodeAlphabet))]
		}
		g := Sign{Text: string(code)}
		w, h := g.Size()
		// Snap to a 64th so the font pixels land on whole pixels at 64 px.
		g.X = math.Round(uniform(r, 0.02, 0.98-w)*64) / 64
		g.Y = math.Round(uniform(r, 0.02, 0.98-h)*64) / 64
		s.Sign = &g
		n = r.IntN(3)
	}
	for i := 0; i < n; i++ {
		for try := 0; try < 50; try++ {
			o := Object{
				Shape: Shape(r.IntN(int(numShapes))),
				Color: Color(r.IntN(int(numColors))),
				Size:  uniform(r, 0.085, 0.14),
			}
			o.X = uniform(r, o.Size+0.01, 1-o.Size-0.01)
			o.Y = uniform(r, o.Size+0.01, 1-o.Size-0.01)
			if s.fits(o) {
				s.Objects = append(s.Objects, o)
				break
			}
		}
	}
	if len(s.Objects) == 0 && s.Sign == nil {
		// Unreachable in practice (the first object always fits), kept so
		// that a scene is never empty.
		s.Objects = append(s.Objects, Object{Shape: Circle, Color: Red, X: 0.5, Y: 0.5, Size: 0.1})
	}
	return s
}

// fits reports whether o keeps clear of the scene's objects and sign.
func (s *Scene) fits(o Object) bool {
	for _, p := range s.Objects {
		if math.Hypot(o.X-p.X, o.Y-p.Y) < o.Size+p.Size+0.03 {
			return false
		}
	}
	if s.Sign != nil {
		w, h := s.Sign.Size()
		m := o.Size + 0.02
		if o.X > s.Sign.X-m && o.X < s.Sign.X+w+m && o.Y > s.Sign.Y-m && o.Y < s.Sign.Y+h+m {
			return false
		}
	}
	return true
}

// NewClip returns the clip of seed: ClipFrames frames with one to three
// moving objects of distinct colour and shape. About half the clips have an
// object entering the picture and about two in five one leaving it.
func NewClip(seed int64) Clip {
	r := newRand(seed, 2)
	c := Clip{Seed: seed, N: ClipFrames, bg: newBackground(r)}
	n := 1 + r.IntN(3)
	enter := r.Float64() < 0.5
	leave := r.Float64() < 0.4
	used := map[[2]int]bool{}
	for i := 0; i < n; i++ {
		motion := Stays
		switch {
		case i == 0 && enter:
			motion = Enters
		case leave && (i == 1 || (i == 0 && !enter)):
			motion = Leaves
		}
		for try := 0; try < 100; try++ {
			m := newMoving(r, motion, c.N)
			key := [2]int{int(m.Shape), int(m.Color)}
			if used[key] || !c.clear(m) {
				continue
			}
			used[key] = true
			c.Objects = append(c.Objects, m)
			break
		}
	}
	return c
}

// newMoving draws a moving object whose motion relative to the frame over
// n frames is motion.
func newMoving(r *rand.Rand, motion Motion, n int) Moving {
	o := Object{
		Shape: Shape(r.IntN(int(numShapes))),
		Color: Color(r.IntN(int(numColors))),
		Size:  uniform(r, 0.08, 0.12),
	}
	sz := o.Size
	last := float64(n - 1)
	var a0, a1 float64 // along the axis of motion, increasing direction
	switch motion {
	case Stays:
		a0 = uniform(r, sz+0.01, 1-sz-0.01-0.2)
		a1 = uniform(r, a0+0.2, 1-sz-0.01)
	case Enters:
		a0 = uniform(r, -sz-0.12, -sz-0.01)
		a1 = uniform(r, sz+0.05, 1-sz-0.01)
	case Leaves:
		a0 = uniform(r, sz+0.01, 1-sz-0.01)
		a1 = uniform(r, 1+sz+0.01, 1+sz+0.12)
	}
	// Across the axis: a small drift that keeps the object inside.
	p0 := uniform(r, sz+0.01, 1-sz-0.01)
	d := (a1 - a0) * uniform(r, -0.3, 0.3)
	p1 := math.Min(math.Max(p0+d, sz+0.01), 1-sz-0.01)
	va, vp := (a1-a0)/last, (p1-p0)/last
	dir := r.IntN(4) // 0 right, 1 left, 2 down, 3 up
	m := Moving{Object: o, Motion: motion}
	switch dir {
	case 0:
		m.X, m.Y, m.VX, m.VY = a0, p0, va, vp
	case 1:
		m.X, m.Y, m.VX, m.VY = 1-a0, p0, -va, vp
	case 2:
		m.X, m.Y, m.VX, m.VY = p0, a0, vp, va
	case 3:
		m.X, m.Y, m.VX, m.VY = p0, 1-a0, vp, -va
	}
	return m
}

// clear reports whether m keeps clear of the clip's objects in every frame.
func (c *Clip) clear(m Moving) bool {
	for _, p := range c.Objects {
		for t := 0; t < c.N; t++ {
			a, b := m.At(t), p.At(t)
			if math.Hypot(a.X-b.X, a.Y-b.Y) < a.Size+b.Size+0.03 {
				return false
			}
		}
	}
	return true
}

// Render draws the scene as a size x size picture.
func (s Scene) Render(size int) *image.RGBA {
	return render(size, s.bg, s.Objects, s.Sign, newRand(s.Seed, 100+uint64(size)<<8))
}

// Label values of Scene.Labels besides 1+i for object i.
const (
	LabelBackground = 0   // neither an object nor the sign
	LabelSign       = 255 // the sign's panel outside the character cells
	// LabelGlyph+i marks the cell (the 5x7 font-pixel box) of the code's
	// character i on the sign's panel, for i < CodeLength.
	LabelGlyph = 240
)

// Labels returns what each pixel of Render(size) shows: 1+i where object
// i (Objects[i]) covers at least half of the pixel (the last such object,
// as Render draws later objects on top), LabelGlyph+i where the box of the
// code's character i does, LabelSign on the rest of the sign's panel
// (drawn last), LabelBackground elsewhere. It is for training that
// needs to know where each thing is, such as a dense head that teaches a
// vision tower the shapes.
func (s Scene) Labels(size int) *image.Gray {
	if size < 1 {
		size = 1
	}
	img := image.NewGray(image.Rect(0, 0, size, size))
	inv := 1 / float64(size)
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			label := uint8(LabelBackground)
			for i, o := range s.Objects {
				if objectCoverage(o, px, py, inv) >= 0.5 {
					label = uint8(1 + i)
				}
			}
			if g := s.Sign; g != nil && coverage(px, py, inv, g.onPanel) >= 0.5 {
				label = LabelSign
				for i := range len(g.Text) {
					if coverage(px, py, inv, func(x, y float64) bool { return g.glyphCell(x, y) == i }) >= 0.5 {
						label = uint8(LabelGlyph + i)
					}
				}
			}
			img.Pix[img.PixOffset(px, py)] = label
		}
	}
	return img
}

// Frames draws the clip's frames at size x size.
func (c Clip) Frames(size int) []*image.RGBA {
	out := make([]*image.RGBA, c.N)
	objs := make([]Object, len(c.Objects))
	for t := range out {
		for i, m := range c.Objects {
			objs[i] = m.At(t)
		}
		out[t] = render(size, c.bg, objs, nil, newRand(c.Seed, 100+uint64(size)<<8+uint64(t)<<32))
	}
	return out
}

// superSample is the number of sub-samples per pixel side.
const superSample = 4

// render draws a picture: background with noise, objects in order, the sign.
func render(size int, bg background, objs []Object, sign *Sign, noise *rand.Rand) *image.RGBA {
	if size < 1 {
		size = 1
	}
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	inv := 1 / float64(size)
	var signW, signH float64
	if sign != nil {
		signW, signH = sign.Size()
	}
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			cx, cy := (float64(px)+0.5)*inv, (float64(py)+0.5)*inv
			var rgb [3]float64
			for k := range rgb {
				rgb[k] = bg.Base[k] + bg.GradX*(cx-0.5) + bg.GradY*(cy-0.5)
			}
			for _, o := range objs {
				if cov := objectCoverage(o, px, py, inv); cov > 0 {
					for k := range rgb {
						rgb[k] = rgb[k]*(1-cov) + colorRGB[o.Color][k]*cov
					}
				}
			}
			if sign != nil && cx > sign.X-inv && cx < sign.X+signW+inv && cy > sign.Y-inv && cy < sign.Y+signH+inv {
				panel := coverage(px, py, inv, sign.onPanel)
				for k := range rgb {
					rgb[k] = rgb[k]*(1-panel) + 238*panel
				}
				ink := coverage(px, py, inv, func(x, y float64) bool { return signInk(sign, x, y) })
				for k := range rgb {
					rgb[k] = rgb[k]*(1-ink) + 20*ink
				}
			}
			n := (noise.Float64()*2 - 1) * bg.Noise
			i := img.PixOffset(px, py)
			for k := range rgb {
				img.Pix[i+k] = clamp8(rgb[k] + n)
			}
			img.Pix[i+3] = 255
		}
	}
	return img
}

func clamp8(v float64) uint8 {
	v = math.Round(v)
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// coverage returns the fraction of pixel (px, py)'s sub-samples for which in holds.
func coverage(px, py int, inv float64, in func(x, y float64) bool) float64 {
	n := 0
	for sy := 0; sy < superSample; sy++ {
		for sx := 0; sx < superSample; sx++ {
			x := (float64(px) + (float64(sx)+0.5)/superSample) * inv
			y := (float64(py) + (float64(sy)+0.5)/superSample) * inv
			if in(x, y) {
				n++
			}
		}
	}
	return float64(n) / (superSample * superSample)
}

// objectCoverage returns the fraction of pixel (px, py) (side inv) that
// object o covers, 0 at once for pixels outside its bounding box.
func objectCoverage(o Object, px, py int, inv float64) float64 {
	cx, cy := (float64(px)+0.5)*inv, (float64(py)+0.5)*inv
	if math.Abs(cx-o.X) > o.Size+inv || math.Abs(cy-o.Y) > o.Size+inv {
		return 0
	}
	return coverage(px, py, inv, func(x, y float64) bool { return inside(o, x, y) })
}

// onPanel reports whether normalized point (x, y) lies on the sign's panel.
func (g *Sign) onPanel(x, y float64) bool {
	w, h := g.Size()
	return x >= g.X && x < g.X+w && y >= g.Y && y < g.Y+h
}

// signFont returns the font pixel of the sign under normalized point
// (x, y): the character's index, its column and row in the glyph; ch < 0
// off the code's area.
func signFont(g *Sign, x, y float64) (ch, col, row int) {
	fx := (x-g.X)/signUnit - 1.5
	fy := (y-g.Y)/signUnit - 1.5
	if fx < 0 || fy < 0 {
		return -1, 0, 0
	}
	c := int(fx)
	ch = c / (glyphW + 1)
	if ch >= len(g.Text) {
		return -1, 0, 0
	}
	return ch, c % (glyphW + 1), int(fy)
}

// signInk reports whether normalized point (x, y) is on an inked font pixel.
func signInk(g *Sign, x, y float64) bool {
	ch, col, row := signFont(g, x, y)
	return ch >= 0 && inked(g.Text[ch], col, row)
}

// glyphCell returns the index of the character whose glyph box (glyphW x
// glyphH font pixels) holds normalized point (x, y), or -1.
func (g *Sign) glyphCell(x, y float64) int {
	ch, col, row := signFont(g, x, y)
	if ch < 0 || col >= glyphW || row >= glyphH {
		return -1
	}
	return ch
}

// starPoly is a five-pointed star of outer radius 1, point up.
var starPoly = func() [10][2]float64 {
	var p [10][2]float64
	for i := range p {
		rad := 1.0
		if i%2 == 1 {
			rad = 0.45
		}
		a := -math.Pi/2 + float64(i)*math.Pi/5
		p[i] = [2]float64{rad * math.Cos(a), rad * math.Sin(a)}
	}
	return p
}()

// inside reports whether normalized point (x, y) lies on object o.
func inside(o Object, x, y float64) bool {
	dx, dy := (x-o.X)/o.Size, (y-o.Y)/o.Size
	switch o.Shape {
	case Circle:
		return dx*dx+dy*dy <= 1
	case Square:
		return math.Abs(dx) <= 0.85 && math.Abs(dy) <= 0.85
	case Triangle:
		// Point up: apex (0, -1), base y = 0.8 from x = -1 to 1.
		if dy > 0.8 || dy < -1 {
			return false
		}
		half := (dy + 1) / 1.8 // 0 at the apex, 1 at the base
		return math.Abs(dx) <= half
	case Star:
		in := false
		p := starPoly
		for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
			if (p[i][1] > dy) != (p[j][1] > dy) &&
				dx < (p[j][0]-p[i][0])*(dy-p[i][1])/(p[j][1]-p[i][1])+p[i][0] {
				in = !in
			}
		}
		return in
	}
	return false
}
