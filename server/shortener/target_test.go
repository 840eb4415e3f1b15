package shortener

import (
	"strings"
	"testing"
)

// Every spelling of an address inside the network, or of our own host, is
// refused; public hosts in any spelling pass, normalised.
func TestTargetHosts(t *testing.T) {
	rules := targetRules{own: ownHosts("https://sho.rt", "http://203.0.113.9:8080")}
	for _, c := range []struct{ in, why string }{
		{"http://127.1/", "loopback"},
		{"http://0x7f000001/", "loopback"},
		{"http://2130706433/", "loopback"},
		{"http://0177.0.0.1/", "loopback"},
		{"http://127.0.0.1./", "loopback"},
		{"http://[::ffff:127.0.0.1]/", "loopback"},
		{"http://[::ffff:7f00:1]/", "loopback"},
		{"http://[::1]/", "loopback"},
		{"http://[0:0:0:0:0:0:0:1]:8080/", "loopback"},
		{"http://0.0.0.0/", "unspecified"},
		{"http://0/", "unspecified"},
		{"http://[::]/", "unspecified"},
		{"http://localhost:8080/", "loopback"},
		{"http://LOCALHOST./", "loopback"},
		{"http://api.localhost/", "loopback"},
		{"http://169.254.169.254/latest/meta-data/", "metadata"},
		{"http://0xa9fea9fe/", "metadata"},
		{"http://[fd00:ec2::254]/", "metadata"},
		{"http://metadata.google.internal/", "metadata"},
		{"http://169.254.1.1/", "link-local"},
		{"http://[fe80::1]/", "link-local"},
		{"http://10.0.0.1/", "private"},
		{"http://10.1/", "private"},
		{"http://172.16.5.4/", "private"},
		{"http://192.168.1.1/", "private"},
		{"http://100.64.0.1/", "private"},
		{"http://[fc00::1]/", "private"},
		{"http://[64:ff9b::a00:1]/", "private"},
		{"http://[2002:7f00:1::]/", "loopback"},
		{"http://router/", "private"},
		{"http://nas.local/", "private"},
		{"http://239.1.2.3/", "reserved"},
		{"http://255.255.255.255/", "reserved"},
		{"http://256.0.0.1/", "invalid"},
		{"http://1.2.3.4.5/", "invalid"},
		{"http://99999999999/", "invalid"},
		{"http://[fe80::1%25eth0]/", "invalid"},
		{"https://sho.rt:8443/abc", "loop"},
		{"https://SHO.RT./abc", "loop"},
		{"http://203.0.113.9/x", "loop"},
		{"http://0xcb007109/x", "loop"},
		{"https://аррӏе.com/", "look"},
		{"https://xn--80ak6aa92e.com/", "look"},
		{"https://pаypal.com/", "scripts"},
		{"https://gооgle.com/", "scripts"},
	} {
		got, problem := rules.normalize(c.in)
		if problem == "" || !strings.Contains(problem, c.why) {
			t.Errorf("normalize(%q) = %q, %q; want refused (%s)", c.in, got, problem, c.why)
		}
	}
	for in, want := range map[string]string{
		"http://8.8.8.8/":           "http://8.8.8.8/",
		"http://0x08080808/":        "http://8.8.8.8/",
		"http://134744072/":         "http://8.8.8.8/",
		"http://[2606:4700::1111]/": "http://[2606:4700::1111]/",
		"https://пример.рф/":        "https://xn--e1afmkfd.xn--p1ai/",
		"https://日本語.jp/":           "https://xn--wgv71a119e.jp/",
		"https://example.com/":      "https://example.com/",
		"https://sho.rt.example/":   "https://sho.rt.example/",
	} {
		if got, problem := rules.normalize(in); problem != "" || got != want {
			t.Errorf("normalize(%q) = %q, %q; want %q", in, got, problem, want)
		}
	}
	intranet := targetRules{allowPrivate: true}
	if _, problem := intranet.normalize("http://10.0.0.1/wiki"); problem != "" {
		t.Errorf("private target refused with allowPrivate: %s", problem)
	}
	if _, problem := intranet.normalize("http://169.254.169.254/"); problem == "" {
		t.Error("metadata target allowed with allowPrivate")
	}
}
