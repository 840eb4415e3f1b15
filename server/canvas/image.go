package canvas

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

// PaletteColors are the 16 colours of the board (r/place 2017's), index 0
// white: a cleared or never-placed pixel.
type PaletteColors [16]color.RGBA

// Palette of every canvas.
var Palette = PaletteColors{
	{0xFF, 0xFF, 0xFF, 0xFF}, {0xE4, 0xE4, 0xE4, 0xFF}, {0x88, 0x88, 0x88, 0xFF}, {0x22, 0x22, 0x22, 0xFF},
	{0xFF, 0xA7, 0xD1, 0xFF}, {0xE5, 0x00, 0x00, 0xFF}, {0xE5, 0x95, 0x00, 0xFF}, {0xA0, 0x6A, 0x42, 0xFF},
	{0xE5, 0xD9, 0x00, 0xFF}, {0x94, 0xE0, 0x44, 0xFF}, {0x02, 0xBE, 0x01, 0xFF}, {0x00, 0xD3, 0xDD, 0xFF},
	{0x00, 0x83, 0xC7, 0xFF}, {0x00, 0x00, 0xEA, 0xFF}, {0xCF, 0x6E, 0xE4, 0xFF}, {0x82, 0x00, 0x80, 0xFF},
}

// Hex spells the palette as #RRGGBB strings.
func (p PaletteColors) Hex() []string {
	out := make([]string, len(p))
	for i, c := range p {
		out[i] = fmt.Sprintf("#%02X%02X%02X", c.R, c.G, c.B)
	}
	return out
}

// EncodePNG draws a packed w×h board as a paletted PNG (4 bits a pixel
// there too).
func EncodePNG(pixels []byte, w, h int) ([]byte, error) {
	pal := make(color.Palette, len(Palette))
	for i, c := range Palette {
		pal[i] = c
	}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for i := range w * h {
		img.Pix[i] = PixelAt(pixels, i)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
