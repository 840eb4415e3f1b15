package shortener

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

var testRules = targetRules{own: ownHosts("https://sho.rt", "Go.Example:8443", "xn--bcher-kva.example")}

func TestNormalizeTargets(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://example.com", "https://example.com"},
		{"HTTPS://Example.COM/Path?Q=1#Frag", "https://example.com/Path?Q=1#Frag"},
		{"http://example.com:8080/a%20b", "http://example.com:8080/a%20b"},
		{"https://münchen.example/straße", "https://xn--mnchen-3ya.example/stra%C3%9Fe"},
		{"http://[2001:db8::1]:80/", "http://[2001:db8::1]:80/"},
		{"http://192.0.2.7/x", "http://192.0.2.7/x"},
		{"https://example.com./", "https://example.com/"},
		{"https://sho.rt.evil.example/", "https://sho.rt.evil.example/"},
		{"https://example.com/" + strings.Repeat("a", 2028), "https://example.com/" + strings.Repeat("a", 2028)},
	} {
		got, problem := testRules.normalize(c.in)
		if problem != "" || got != c.want {
			t.Errorf("normalize(%.60q) = %q, %q; want %q", c.in, got, problem, c.want)
		}
	}
}

// Every class of target the API refuses, each with a reason.
func TestRefusedTargets(t *testing.T) {
	for _, c := range []struct{ name, in string }{
		{"empty", ""},
		{"too long", "https://example.com/" + strings.Repeat("a", 2029)},
		{"relative", "/just/a/path"},
		{"no scheme", "example.com/x"},
		{"ftp", "ftp://example.com/file"},
		{"javascript", "javascript:alert(1)"},
		{"data", "data:text/html,<script>alert(1)</script>"},
		{"file", "file:///etc/passwd"},
		{"mailto", "mailto:someone@example.com"},
		{"opaque http", "http:example.com"},
		{"no host", "http:///path"},
		{"credentials", "https://user:secret@example.com/"},
		{"user only", "https://user@example.com/"},
		{"own host", "https://sho.rt/abc1234"},
		{"own host other case and port", "http://SHO.RT:80/x"},
		{"own extra host", "https://go.example/x"},
		{"own host in unicode", "https://bücher.example/"},
		{"CRLF injection", "https://example.com/\r\nSet-Cookie: a=b"},
		{"tab", "https://exa\tmple.com/"},
		{"space", "https://example.com/a b"},
		{"backslash", "https://example.com\\@evil.example/"},
		{"NUL", "https://example.com/\x00"},
		{"bad port", "https://example.com:99999/"},
		{"port zero", "https://example.com:0/"},
		{"bad escape", "https://example.com/%zz"},
		{"invalid utf-8", "https://example.com/\xff"},
		{"bad host", "https://exa_mple..com/"},
	} {
		if got, problem := testRules.normalize(c.in); problem == "" {
			t.Errorf("%s: %q accepted as %q", c.name, c.in, got)
		}
	}
}

func TestAliasRules(t *testing.T) {
	for _, ok := range []string{"abc", "My-Link_2", strings.Repeat("x", 32), "APIs", "s1"[:1] + "ss"} {
		if p := aliasProblem(ok); p != "" {
			t.Errorf("alias %q refused: %s", ok, p)
		}
	}
	for _, bad := range []string{"ab", strings.Repeat("x", 33), "has space", "dot.ted", "slash/x", "ünï", "api", "API", "Healthz", "s", "canvas", "well-known", "<script>"} {
		if aliasProblem(bad) == "" {
			t.Errorf("alias %q accepted", bad)
		}
	}
}

// FuzzNormalize: whatever comes in, an accepted target is an absolute
// http(s) URL without credentials or control characters, within the size
// bound, not on our host, and normalising it again changes nothing.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"https://example.com/a?b#c", "http://[::1]:8080/", "https://münchen.example/", "HTTP://EXAMPLE.COM",
		"https://user:pw@x.example/", "javascript:alert(1)", "https://sho.rt/x", "http://a.example/%2F%zz",
		"https://example.com:65535", "https://e.example/\u2028", "http://0x7f.1/", "https://xn--/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, problem := testRules.normalize(in)
		if problem != "" {
			if out != "" {
				t.Fatalf("refused %q but returned %q", in, out)
			}
			return
		}
		if len(out) > MaxURLBytes || !utf8.ValidString(out) {
			t.Fatalf("accepted %q as %q: too long or not UTF-8", in, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || r == ' ' || r == '\\' {
				t.Fatalf("accepted %q as %q with a control character", in, out)
			}
		}
		u, err := url.Parse(out)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			t.Fatalf("accepted %q as %q: not an absolute http(s) URL without credentials", in, out)
		}
		if testRules.own[strings.ToLower(u.Hostname())] {
			t.Fatalf("accepted %q pointing at our own host", in)
		}
		again, problem := testRules.normalize(out)
		if problem != "" || again != out {
			t.Fatalf("normalize is not idempotent: %q -> %q -> %q (%s)", in, out, again, problem)
		}
	})
}
