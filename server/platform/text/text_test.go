package text

import (
	"strings"
	"testing"
)

func TestProblems(t *testing.T) {
	for _, s := range []string{"", "plain", "Grüße, 世界", "emoji 🎨", "a\u200fb (RLM)"} {
		if p := DisplayProblem(s); p != "" {
			t.Errorf("DisplayProblem(%q) = %q, want none", s, p)
		}
	}
	for s, want := range map[string]string{
		"nul\x00":       "control",
		"tab\t":         "control",
		"line\nbreak":   "control",
		"del\x7f":       "control",
		"c1\u0085":      "control",
		"bad\xff":       "UTF-8",
		"\u202Eevil":    "bidirectional",
		"\u2066isolate": "bidirectional",
		"\u202Aembed":   "bidirectional",
		"pop\u2069":     "bidirectional",
	} {
		if p := DisplayProblem(s); !strings.Contains(p, want) {
			t.Errorf("DisplayProblem(%q) = %q, want %q", s, p, want)
		}
	}
	if p := Problem("\u202Eevil"); p != "" {
		t.Errorf("Problem refuses bidi controls (%q): only display text does", p)
	}
	if Display("   ", 10) == "" || Display("", 10) == "" || Display("elevenchars", 10) == "" || Display("fine", 10) != "" {
		t.Error("Display: blank, empty, too long or fine misjudged")
	}
}
