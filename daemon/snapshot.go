package daemon

import (
	"bytes"
	"image"
	"image/draw"
	"image/jpeg"
	"math"
)

// ContactSheet returns the JPEG of the analysed frame, or for a window a
// grid of its frames in order (left to right, top to bottom), each cell
// at most 320 pixels wide.
func ContactSheet(imgs []image.Image) []byte {
	if len(imgs) == 0 {
		return nil
	}
	var out image.Image
	if len(imgs) == 1 {
		out = imgs[0]
	} else {
		cols := int(math.Ceil(math.Sqrt(float64(len(imgs)))))
		rows := (len(imgs) + cols - 1) / cols
		b0 := imgs[0].Bounds()
		cw := min(320, b0.Dx())
		ch := max(1, cw*b0.Dy()/max(1, b0.Dx()))
		sheet := image.NewRGBA(image.Rect(0, 0, cols*cw, rows*ch))
		draw.Draw(sheet, sheet.Bounds(), image.Black, image.Point{}, draw.Src)
		for i, img := range imgs {
			r := image.Rect((i%cols)*cw, (i/cols)*ch, (i%cols+1)*cw, (i/cols+1)*ch)
			scaleNearest(sheet, r, img)
		}
		out = sheet
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, out, &jpeg.Options{Quality: 85}); err != nil {
		return nil
	}
	return b.Bytes()
}

// scaleNearest draws src into the rectangle r of dst, nearest neighbour.
func scaleNearest(dst *image.RGBA, r image.Rectangle, src image.Image) {
	sb := src.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		sy := sb.Min.Y + (y-r.Min.Y)*sb.Dy()/r.Dy()
		for x := r.Min.X; x < r.Max.X; x++ {
			sx := sb.Min.X + (x-r.Min.X)*sb.Dx()/r.Dx()
			dst.Set(x, y, src.At(sx, sy))
		}
	}
}
