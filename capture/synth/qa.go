package synth

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// QA is one question in PaLI prompt form with its exact answer.
type QA struct{ Prompt, Answer string }

// Task returns the kind of question: "caption", "color", "count", "exists",
// "where", "ocr", "direction", "enter" or "leave".
func (q QA) Task() string {
	p := q.Prompt
	switch {
	case strings.HasPrefix(p, "caption"):
		return "caption"
	case p == "ocr":
		return "ocr"
	case strings.HasPrefix(p, "answer en what color"):
		return "color"
	case strings.HasPrefix(p, "answer en how many"):
		return "count"
	case strings.HasPrefix(p, "answer en is there"):
		return "exists"
	case strings.HasPrefix(p, "answer en where"):
		return "where"
	case strings.HasPrefix(p, "answer en which way"):
		return "direction"
	case strings.HasPrefix(p, "answer en did anything enter"):
		return "enter"
	case strings.HasPrefix(p, "answer en did anything leave"):
		return "leave"
	}
	return "other"
}

// Caption describes the scene: its objects from left to right, then the
// sign ("a red circle, a blue star and a sign reading K7R").
func (s Scene) Caption() string {
	objs := slices.Clone(s.Objects)
	slices.SortStableFunc(objs, func(a, b Object) int {
		switch {
		case a.X < b.X:
			return -1
		case a.X > b.X:
			return 1
		}
		return 0
	})
	var parts []string
	for _, o := range objs {
		parts = append(parts, article(o.Color.String())+" "+o.Color.String()+" "+o.Shape.String())
	}
	if s.Sign != nil {
		parts = append(parts, "a sign reading "+s.Sign.Text)
	}
	switch len(parts) {
	case 0:
		return "nothing"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// Where returns "left", "right", "top" or "bottom" for an object clearly
// off the centre along one axis, and "" when its place is not clear-cut.
func Where(o Object) string {
	dx, dy := o.X-0.5, o.Y-0.5
	ax, ay := math.Abs(dx), math.Abs(dy)
	if math.Max(ax, ay) < 0.12 || math.Abs(ax-ay) < 0.06 {
		return ""
	}
	if ax > ay {
		if dx < 0 {
			return "left"
		}
		return "right"
	}
	if dy < 0 {
		return "top"
	}
	return "bottom"
}

// count returns how many objects have shape sh, and the last of them.
func count(objs []Object, sh Shape) (int, Object) {
	n, last := 0, Object{}
	for _, o := range objs {
		if o.Shape == sh {
			n, last = n+1, o
		}
	}
	return n, last
}

// Questions returns the scene's questions, every one answerable without
// ambiguity: the caption; the colour and the place of each shape present
// exactly once; the count of each shape present and of one absent shape;
// one "is there" question answered yes and one answered no; and the sign's
// code when there is a sign.
func (s Scene) Questions() []QA {
	r := newRand(s.Seed, 3)
	qs := []QA{{"caption en", s.Caption()}}
	var absent []Shape
	for sh := Shape(0); sh < numShapes; sh++ {
		n, o := count(s.Objects, sh)
		if n == 0 {
			absent = append(absent, sh)
			continue
		}
		if n == 1 {
			qs = append(qs, QA{"answer en what color is the " + sh.String() + "?", o.Color.String()})
			if w := Where(o); w != "" {
				qs = append(qs, QA{"answer en where is the " + sh.String() + "?", w})
			}
		}
		qs = append(qs, QA{"answer en how many " + sh.Plural() + " are there?", strconv.Itoa(n)})
	}
	if len(absent) > 0 {
		sh := absent[r.IntN(len(absent))]
		qs = append(qs, QA{"answer en how many " + sh.Plural() + " are there?", "0"})
	}
	if len(s.Objects) > 0 {
		o := s.Objects[r.IntN(len(s.Objects))]
		qs = append(qs, QA{"answer en is there " + article(o.Color.String()) + " " + o.Color.String() + " " + o.Shape.String() + "?", "yes"})
	}
	for {
		c, sh := Color(r.IntN(int(numColors))), Shape(r.IntN(int(numShapes)))
		if !slices.ContainsFunc(s.Objects, func(o Object) bool { return o.Color == c && o.Shape == sh }) {
			qs = append(qs, QA{"answer en is there " + article(c.String()) + " " + c.String() + " " + sh.String() + "?", "no"})
			break
		}
	}
	if s.Sign != nil {
		qs = append(qs, QA{"ocr", s.Sign.Text})
	}
	return qs
}

// Questions returns the clip's questions: the direction of motion of each
// object (each has a colour and shape of its own), whether anything entered
// and whether anything left the picture.
func (c Clip) Questions() []QA {
	var qs []QA
	enter, leave := "no", "no"
	for _, m := range c.Objects {
		qs = append(qs, QA{"answer en which way is the " + m.Color.String() + " " + m.Shape.String() + " moving?", m.Direction()})
		switch m.Motion {
		case Enters:
			enter = "yes"
		case Leaves:
			leave = "yes"
		}
	}
	qs = append(qs,
		QA{"answer en did anything enter the scene?", enter},
		QA{"answer en did anything leave the scene?", leave})
	return qs
}

// article returns "an" before a vowel, else "a".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}
