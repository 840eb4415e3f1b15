package color

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/mazznoer/csscolorparser"
)

var accepted = []struct {
	in    string
	hex   string
	space Space
	value string
}{
	// hex
	{"#f00", "#FF0000", SpaceHex, "#FF0000"},
	{"#ABC", "#AABBCC", SpaceHex, "#AABBCC"},
	{"#ff8800", "#FF8800", SpaceHex, "#FF8800"},
	{"#FF8800", "#FF8800", SpaceHex, "#FF8800"},
	{"#aBcDeF", "#ABCDEF", SpaceHex, "#ABCDEF"},
	{"  #fff \t\n", "#FFFFFF", SpaceHex, "#FFFFFF"},
	// rgb
	{"rgb(255,0,0)", "#FF0000", SpaceRGB, "rgb(255, 0, 0)"},
	{"rgb(255, 128, 0)", "#FF8000", SpaceRGB, "rgb(255, 128, 0)"},
	{"RGB( 0 , 128 , 255 )", "#0080FF", SpaceRGB, "rgb(0, 128, 255)"},
	{"rgb(255 0 0)", "#FF0000", SpaceRGB, "rgb(255, 0, 0)"},
	{"rgb(  1   2   3 )", "#010203", SpaceRGB, "rgb(1, 2, 3)"},
	{"rgb(+1, 2.0, 003)", "#010203", SpaceRGB, "rgb(1, 2, 3)"},
	{"rgb(100%, 0%, 0%)", "#FF0000", SpaceRGB, "rgb(100%, 0%, 0%)"},
	{"rgb(50% 25% 10%)", "#80401A", SpaceRGB, "rgb(50%, 25%, 10%)"}, // 127.5, 63.75, 25.5
	{"rgb(33.333%, 0.5%, 100.0%)", "#5501FF", SpaceRGB, "rgb(33.33%, 0.5%, 100%)"},
	{"\trgb(1,2,3)\n", "#010203", SpaceRGB, "rgb(1, 2, 3)"},
	// hsl
	{"hsl(0, 100%, 50%)", "#FF0000", SpaceHSL, "hsl(0, 100%, 50%)"},
	{"hsl(120, 100%, 25%)", "#008000", SpaceHSL, "hsl(120, 100%, 25%)"},
	{"hsl(120deg 100% 25%)", "#008000", SpaceHSL, "hsl(120, 100%, 25%)"},
	{"HSL(240DEG, 100%, 50%)", "#0000FF", SpaceHSL, "hsl(240, 100%, 50%)"},
	{"hsl(360, 100%, 50%)", "#FF0000", SpaceHSL, "hsl(0, 100%, 50%)"},
	{"hsl(-120, 100%, 50%)", "#0000FF", SpaceHSL, "hsl(240, 100%, 50%)"},
	{"hsl(-120deg 100% 50%)", "#0000FF", SpaceHSL, "hsl(240, 100%, 50%)"},
	{"hsl(480, 100%, 50%)", "#00FF00", SpaceHSL, "hsl(120, 100%, 50%)"},
	{"hsl(-0.001, 100%, 50%)", "#FF0000", SpaceHSL, "hsl(0, 100%, 50%)"},
	{"hsl(.5, 100%, 50%)", "#FF0200", SpaceHSL, "hsl(0.5, 100%, 50%)"},
	{"hsl(0, 50%, 20%)", "#4D1A1A", SpaceHSL, "hsl(0, 50%, 20%)"}, // 25.5 rounds up
	{"hsl(210, 50%, 40%)", "#336699", SpaceHSL, "hsl(210, 50%, 40%)"},
	{"hsl(0 0% 100%)", "#FFFFFF", SpaceHSL, "hsl(0, 0%, 100%)"},
	{"hsl(0, -0%, 0%)", "#000000", SpaceHSL, "hsl(0, 0%, 0%)"},
	// names
	{"red", "#FF0000", SpaceName, "red"},
	{"RebeccaPurple", "#663399", SpaceName, "rebeccapurple"},
	{"LightGoldenRodYellow", "#FAFAD2", SpaceName, "lightgoldenrodyellow"},
	{"grey", "#808080", SpaceName, "grey"},
	{"  Navy\t\n", "#000080", SpaceName, "navy"},
	// exactly MaxInputLen bytes
	{strings.Repeat(" ", MaxInputLen-3) + "red", "#FF0000", SpaceName, "red"},
}

var rejected = []struct {
	in     string
	reason string // expected Reason, or a prefix of it
}{
	{"#12", "hex colour must have 3 or 6 hex digits"},
	{"#", "hex colour must have 3 or 6 hex digits"},
	{"#GGGGGG", "hex colour must contain only hex digits"},
	{"#FF000080", reasonAlpha},
	{"#F008", reasonAlpha},
	{"ff0000", "hex colour must start with #"},
	{"rgb(300,0,0)", "rgb channel 1 is 300, must be 0-255"},
	{"rgb(-1,0,0)", "rgb channel 1 is -1, must be 0-255"},
	{"rgb(0,0,255.5)", "rgb channel 3 is 255.5, must be 0-255"},
	{"rgb(1.5,0,0)", "rgb channel 1 is 1.5, must be a whole number"},
	{"rgb(101%,0%,0%)", "rgb channel 1 is 101%, must be 0%-100%"},
	{"rgb(255, 0%, 0)", "rgb() values must be all numbers or all percentages"},
	{"rgb(1e2,0,0)", "rgb channel 1 must be a number"},
	{"rgb(0x10,0,0)", "rgb channel 1 must be a number"},
	{"rgb(inf,0,0)", "rgb channel 1 must be a number"},
	{"rgb(1.,0,0)", "rgb channel 1 must be a number"},
	{"rgb(1,2)", "rgb() needs 3 values, got 2"},
	{"rgb()", "rgb() needs 3 values, got 0"},
	{"rgb(1,2,3,4)", reasonAlpha},
	{"rgb(1 2 3 / 0.5)", reasonAlpha},
	{"rgba(1,2,3,0.5)", reasonAlpha},
	{"rgba(1,2,3)", reasonAlpha},
	{"rgb(1, 2 3)", "rgb() values must be separated by commas or by spaces, not both"},
	{"rgb(1,2,)", "rgb() has an empty value"},
	{"rgb(1,2,3", reasonUnsupported},
	{"rgb (1,2,3)", reasonUnsupported},
	{"hsl(0,101%,50%)", "hsl saturation is 101%, must be 0%-100%"},
	{"hsl(0,50%,-1%)", "hsl lightness is -1%, must be 0%-100%"},
	{"hsl(0, 100, 50%)", "hsl saturation must be a percentage"},
	{"hsl(1rad, 100%, 50%)", "hsl hue must be a number of degrees"},
	{"hsl(nan, 1%, 1%)", "hsl hue must be a number of degrees"},
	{"hsl(0 100% 50% / 1)", reasonAlpha},
	{"hsla(0, 100%, 50%, 1)", reasonAlpha},
	{"hwb(0 0% 0%)", reasonUnsupported},
	{"lab(50% 0 0)", reasonUnsupported},
	{"transparent", reasonAlpha},
	{"notacolour", "unknown colour name"},
	{"currentcolor", "unknown colour name"},
	{"bad", "unknown colour name"},                          // csscolorparser would read it as #BBAADD
	{"blac\u212a", "colour contains a non-ASCII character"}, // Kelvin sign lower-cases to k
	{"", "colour is empty"},
	{"   \t\n", "colour is empty"},
	{"\x00", "colour contains a control character"},
	{"red\x00", "colour contains a control character"},
	{"re\td", "colour contains a control character"},
	{strings.Repeat(" ", MaxInputLen-2) + "red", "colour is longer than 64 bytes"},
	{strings.Repeat("junk\x00\xff", 10000/6), "colour is longer than 64 bytes"},
}

func TestParse(t *testing.T) {
	for _, tc := range accepted {
		got, err := Parse(tc.in)
		want := Color{Hex: tc.hex, Space: tc.space, Value: tc.value}
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, want)
		}
	}
	for _, tc := range rejected {
		got, err := Parse(tc.in)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Reason == "" {
			t.Errorf("Parse(%.20q) = %+v, %v; want a *ParseError", tc.in, got, err)
			continue
		}
		if !strings.HasPrefix(pe.Reason, tc.reason) || err.Error() != pe.Reason {
			t.Errorf("Parse(%.20q) error %q, want %q", tc.in, err, tc.reason)
		}
		if got != (Color{}) {
			t.Errorf("Parse(%.20q) returned %+v with an error", tc.in, got)
		}
		if len(pe.Input) > MaxInputLen || !strings.HasPrefix(tc.in, pe.Input) {
			t.Errorf("Parse(%.20q) error Input is %q", tc.in, pe.Input)
		}
	}
}

// TestHSLAgainstLibrary cross-checks our integer hsl() arithmetic against
// csscolorparser's floats: they may differ by one where the exact value is a
// .5 tie, which the library's float error rounds down.
func TestHSLAgainstLibrary(t *testing.T) {
	for h := -360; h <= 720; h += 7 {
		for s := 0; s <= 100; s += 3 {
			for l := 0; l <= 100; l += 3 {
				in := fmt.Sprintf("hsl(%d, %d%%, %d%%)", h, s, l)
				checkAgainstLibrary(t, in)
			}
		}
	}
}

var hexRE = regexp.MustCompile(`^#[0-9A-F]{6}$`)

func FuzzParse(f *testing.F) {
	for _, tc := range accepted {
		f.Add(tc.in)
	}
	for _, tc := range rejected {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("Parse(%q) error %#v is not a *ParseError with a Reason", s, err)
			}
			if len(err.Error()) >= 200 || len(pe.Input) > MaxInputLen || !strings.HasPrefix(s, pe.Input) {
				t.Fatalf("Parse(%q) error too long or Input not cut: %q, Input %q", s, err, pe.Input)
			}
			return
		}
		if !hexRE.MatchString(c.Hex) {
			t.Fatalf("Parse(%q).Hex = %q", s, c.Hex)
		}
		switch c.Space {
		case SpaceHex, SpaceRGB, SpaceHSL, SpaceName:
		default:
			t.Fatalf("Parse(%q).Space = %q", s, c.Space)
		}
		if again, err := Parse(c.Value); err != nil || again != c {
			t.Fatalf("Parse(%q) = %+v, but Parse(Value) = %+v, %v", s, c, again, err)
		}
		checkAgainstLibrary(t, s)
	})
}

// checkAgainstLibrary checks that csscolorparser, which accepts a superset
// of our notations, agrees with Parse(in) to within one per channel.
func checkAgainstLibrary(t *testing.T, in string) {
	t.Helper()
	c, err := Parse(in)
	if err != nil {
		t.Fatalf("Parse(%q): %v", in, err)
	}
	lc, err := csscolorparser.Parse(in)
	if err != nil {
		t.Fatalf("Parse(%q) = %+v, but csscolorparser rejects it: %v", in, c, err)
	}
	r, g, b, a := lc.RGBA255()
	ours, _ := hex.DecodeString(c.Hex[1:])
	for i, v := range [3]uint8{r, g, b} {
		if d := int(ours[i]) - int(v); d < -1 || d > 1 || a != 255 {
			t.Fatalf("Parse(%q) = %s, csscolorparser gives %v", in, c.Hex, [4]uint8{r, g, b, a})
		}
	}
}
