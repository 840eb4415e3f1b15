package wire

import (
	"net/http"
	"testing"
)

// Whatever a client sends, the encoded value is valid gRPC metadata
// (printable ASCII) and decodes to exactly what was sent.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"", "plain", "Mozilla/5.0 (Linux; Android 13) 小米浏览器", "100%", "%41", "\x00\x1f\x7f\xff", "a%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		e := Encode(v)
		for i := 0; i < len(e); i++ {
			if e[i] < 0x20 || e[i] > 0x7e {
				t.Fatalf("Encode(%q) = %q holds byte %#x", v, e, e[i])
			}
		}
		if d := Decode(e); d != v {
			t.Fatalf("Decode(Encode(%q)) = %q", v, d)
		}
	})
}

func TestSafeHeadersEncodesOnlyTheNamedOnes(t *testing.T) {
	h := http.Header{"User-Agent": {"a é"}, "Cookie": {"x=é"}}
	SafeHeaders(h, "User-Agent", "Referer")
	if got := h.Get("User-Agent"); got != "a %C3%A9" {
		t.Errorf("User-Agent = %q", got)
	}
	if got := h.Get("Cookie"); got != "x=é" {
		t.Errorf("Cookie changed to %q", got)
	}
}
