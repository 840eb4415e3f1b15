package shortener

import "testing"

// Device targets follow the User-Agent as the click stats parse it:
// tablets go with their OS, desktops by class, the rest to the default.
func TestDeviceTargetPick(t *testing.T) {
	d := &deviceTargets{Android: "A", IOS: "I", Desktop: "D"}
	c := newClassifier()
	for _, v := range []struct{ ua, want string }{
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", "A"},
		{"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "A"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "I"},
		{"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "I"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", "D"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "D"},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ""},
		{"", ""},
	} {
		if got := d.pick(c.describe(v.ua)); got != v.want {
			t.Errorf("%q: %q, want %q (%+v)", v.ua, got, v.want, c.describe(v.ua))
		}
	}
	// A class without its own target takes the default.
	if got := (&deviceTargets{IOS: "I"}).pick(c.describe("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0")); got != "" {
		t.Errorf("desktop without a target: %q", got)
	}
}
