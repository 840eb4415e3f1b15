// Package color parses a colour as a user types it and normalises it.
//
// github.com/mazznoer/csscolorparser supplies the CSS Color Module Level 4
// table of 148 named colours, so we don't keep our own copy. We don't give it
// anything else, because its Parse is much looser than we want:
//   - it clamps out-of-range values (rgb(300,0,0) becomes red), accepts alpha
//     (rgba(), #RGBA, "/ a", transparent), hwb()/hsv()/oklab()/oklch(), rad/turn
//     hues, hex without '#' (so "bad" is #BBAADD), any number strconv.ParseFloat
//     takes ("1e2", "0x1p3", "Inf"), and Unicode case folding ("blac\u212A" is black);
//   - its float error often rounds exact .5 ties down: hsl(0, 50%, 20%) gives
//     green 25 where the exact 25.5 rounds to 26.
//
// So we check the length, the characters (ASCII, no controls), the grammar of
// each notation and every range ourselves; only a word made of letters that is
// not "transparent" and not bare hex reaches the library. rgb() percentages and
// hsl() are converted with exact integer arithmetic. Percentages and hues are
// kept to 0.01 and Hex is computed from those canonical values, so
// Parse(c.Value) always gives back c.
package color

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mazznoer/csscolorparser"
)

// Space is the notation the user gave the colour in.
type Space string

// The notations Parse accepts.
const (
	SpaceHex  Space = "hex"
	SpaceRGB  Space = "rgb"
	SpaceHSL  Space = "hsl"
	SpaceName Space = "name"
)

// Color is a parsed colour.
type Color struct {
	Hex   string // normalised, always "#RRGGBB" upper-case
	Space Space  // the notation the input was written in
	Value string // the input's value in canonical form for its space, e.g. "rgb(255, 0, 0)", "hsl(0, 100%, 50%)", "red", "#FF0000"
}

// MaxInputLen bounds what Parse will look at (bytes).
const MaxInputLen = 64

// ParseError is the error Parse returns.
type ParseError struct {
	Input  string // the input, cut to at most MaxInputLen bytes
	Reason string // a short sentence, safe to show to API clients
}

func (e *ParseError) Error() string { return e.Reason }

const (
	reasonAlpha       = "alpha is not supported; colours are stored opaque"
	reasonUnsupported = "unsupported colour notation; use #RRGGBB, rgb(), hsl() or a CSS name"
)

// Parse parses s: "#RGB", "#RRGGBB", "rgb(r, g, b)" (0-255 or all
// percentages), "hsl(h, s%, l%)" (h in degrees, optional "deg"), each function
// with commas or with spaces, or a CSS colour name. It ignores case and
// surrounding whitespace. Errors are *ParseError.
func Parse(s string) (Color, error) {
	if len(s) > MaxInputLen {
		return Color{}, newError(s, fmt.Sprintf("colour is longer than %d bytes", MaxInputLen))
	}
	c, reason := parse(strings.TrimSpace(s))
	if reason != "" {
		return Color{}, newError(s, reason)
	}
	return c, nil
}

func newError(s, reason string) *ParseError {
	if len(s) > MaxInputLen {
		n := MaxInputLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return &ParseError{Input: s, Reason: reason}
}

// parse returns the colour, or a reason why s is not one.
func parse(s string) (Color, string) {
	if s == "" {
		return Color{}, "colour is empty"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return Color{}, "colour contains a control character"
		case c >= utf8.RuneSelf:
			return Color{}, "colour contains a non-ASCII character"
		}
	}
	s = strings.ToLower(s) // ASCII only from here on
	if s[0] == '#' {
		return parseHex(s[1:])
	}
	if isLetters(s) {
		return parseName(s)
	}
	if fn, rest, ok := strings.Cut(s, "("); ok && isLetters(fn) && strings.HasSuffix(rest, ")") {
		return parseFunc(fn, rest[:len(rest)-1])
	}
	if isHex(s) && (len(s) == 3 || len(s) == 6) {
		return Color{}, "hex colour must start with #"
	}
	return Color{}, reasonUnsupported
}

func parseHex(digits string) (Color, string) {
	if !isHex(digits) {
		return Color{}, "hex colour must contain only hex digits 0-9 and A-F"
	}
	switch len(digits) {
	case 3:
		digits = string([]byte{digits[0], digits[0], digits[1], digits[1], digits[2], digits[2]})
	case 6:
	case 4, 8:
		return Color{}, reasonAlpha
	default:
		return Color{}, "hex colour must have 3 or 6 hex digits"
	}
	b, _ := hex.DecodeString(digits) // checked by isHex
	return newColor(SpaceHex, "", b[0], b[1], b[2]), ""
}

func parseName(name string) (Color, string) {
	if name == "transparent" {
		return Color{}, reasonAlpha
	}
	// The library reads bare hex too ("bad", "decade"); no CSS name is all a-f.
	if strings.Trim(name, "abcdef") == "" {
		return Color{}, "unknown colour name"
	}
	c, err := csscolorparser.Parse(name)
	if err != nil {
		return Color{}, "unknown colour name"
	}
	r, g, b, _ := c.RGBA255()
	return newColor(SpaceName, name, r, g, b), ""
}

func parseFunc(fn, args string) (Color, string) {
	switch fn {
	case "rgb", "hsl":
	case "rgba", "hsla":
		return Color{}, reasonAlpha
	default:
		return Color{}, reasonUnsupported
	}
	if strings.Contains(args, "/") {
		return Color{}, reasonAlpha
	}
	var parts []string
	if strings.Contains(args, ",") {
		parts = strings.Split(args, ",")
	} else {
		parts = strings.Fields(args)
	}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return Color{}, fn + "() has an empty value"
		}
		if strings.Contains(p, " ") {
			return Color{}, fn + "() values must be separated by commas or by spaces, not both"
		}
		parts[i] = p
	}
	switch len(parts) {
	case 3:
	case 4:
		return Color{}, reasonAlpha
	default:
		return Color{}, fmt.Sprintf("%s() needs 3 values, got %d", fn, len(parts))
	}
	if fn == "rgb" {
		return parseRGB(parts)
	}
	return parseHSL(parts)
}

func parseRGB(args []string) (Color, string) {
	var ch [3]uint8
	var canon [3]string
	pct := strings.HasSuffix(args[0], "%")
	for i, a := range args {
		if strings.HasSuffix(a, "%") != pct {
			return Color{}, "rgb() values must be all numbers or all percentages"
		}
		if pct {
			p, reason := percent(a, fmt.Sprintf("rgb channel %d", i+1))
			if reason != "" {
				return Color{}, reason
			}
			ch[i] = uint8((p*255*2 + 10000) / 20000) // p/100% of 255, rounded half up
			canon[i] = centi(p) + "%"
			continue
		}
		f, ok := number(a)
		switch {
		case !ok:
			return Color{}, fmt.Sprintf("rgb channel %d must be a number 0-255 or a percentage", i+1)
		case f < 0 || f > 255:
			return Color{}, fmt.Sprintf("rgb channel %d is %s, must be 0-255", i+1, a)
		case f != math.Trunc(f):
			return Color{}, fmt.Sprintf("rgb channel %d is %s, must be a whole number", i+1, a)
		}
		ch[i] = uint8(f)
		canon[i] = strconv.Itoa(int(ch[i]))
	}
	value := "rgb(" + strings.Join(canon[:], ", ") + ")"
	return newColor(SpaceRGB, value, ch[0], ch[1], ch[2]), ""
}

func parseHSL(args []string) (Color, string) {
	f, ok := number(strings.TrimSuffix(args[0], "deg"))
	if !ok {
		return Color{}, "hsl hue must be a number of degrees"
	}
	f = math.Mod(f, 360)
	if f < 0 {
		f += 360
	}
	h := int64(math.Round(f*100)) % 36000 // hundredths of a degree
	s, reason := percent(args[1], "hsl saturation")
	if reason != "" {
		return Color{}, reason
	}
	l, reason := percent(args[2], "hsl lightness")
	if reason != "" {
		return Color{}, reason
	}
	// CSS Color 4 hslToRgb, in integers: h in 1/100 degree, s and l in
	// 1/10000, a in 1/1e8, m in 1/3000, v in 1/3e11.
	a := s * min(l, 10000-l)
	var ch [3]uint8
	for i, n := range [3]int64{0, 8, 4} {
		k := (n*3000 + h) % 36000
		m := max(-3000, min(k-9000, 27000-k, 3000))
		v := l*3e7 - a*m
		ch[i] = uint8((v*255*2 + 3e11) / 6e11) // v of 255, rounded half up
	}
	value := fmt.Sprintf("hsl(%s, %s%%, %s%%)", centi(h), centi(s), centi(l))
	return newColor(SpaceHSL, value, ch[0], ch[1], ch[2]), ""
}

// percent parses "N%" with 0 <= N <= 100 into hundredths of a percent.
func percent(a, what string) (int64, string) {
	num, ok := strings.CutSuffix(a, "%")
	if !ok {
		return 0, what + " must be a percentage"
	}
	f, ok := number(num)
	if !ok {
		return 0, what + " must be a percentage"
	}
	if f < 0 || f > 100 {
		return 0, fmt.Sprintf("%s is %s, must be 0%%-100%%", what, a)
	}
	return int64(math.Round(f * 100)), ""
}

// number parses a plain decimal: optional sign, digits, optional fraction.
// strconv.ParseFloat alone would also take exponents, hex, "_", Inf and NaN.
func number(s string) (float64, bool) {
	t := s
	if t != "" && (t[0] == '+' || t[0] == '-') {
		t = t[1:]
	}
	whole, frac, dot := strings.Cut(t, ".")
	if !isDigits(whole) || !isDigits(frac) || whole+frac == "" || dot && frac == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// centi formats n hundredths without trailing zeros: 5000 is "50", 3333 "33.33".
func centi(n int64) string {
	s := strconv.FormatInt(n/100, 10)
	if n%100 != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%02d", n%100), "0")
	}
	return s
}

func newColor(sp Space, value string, r, g, b uint8) Color {
	hex := fmt.Sprintf("#%02X%02X%02X", r, g, b)
	if value == "" {
		value = hex
	}
	return Color{Hex: hex, Space: sp, Value: value}
}

func isLetters(s string) bool { return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz") == "" }
func isHex(s string) bool     { return strings.Trim(s, "0123456789abcdef") == "" }
func isDigits(s string) bool  { return strings.Trim(s, "0123456789") == "" }
