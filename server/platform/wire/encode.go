package wire

import (
	"net/http"
	"net/url"
	"strings"
)

// Encode makes an HTTP header value safe as gRPC metadata, which allows
// printable ASCII only: '%' and every byte outside 0x20-0x7E become %XX,
// so that any client's header (a phone browser's UTF-8 User-Agent, a
// hostile NUL) is forwarded instead of failing the call. Decode reverses it
// exactly.
func Encode(v string) string {
	if !needsEncoding(v) {
		return v
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(v) + 8)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '%' || c < 0x20 || c > 0x7e {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEncoding(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '%' || c < 0x20 || c > 0x7e {
			return true
		}
	}
	return false
}

// Decode reverses Encode; a value Encode did not write comes back as is.
func Decode(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return v
	}
	return d
}

// SafeHeaders encodes, in place, every value of the request headers a
// gateway forwards (see Encode), so that none can fail a call. names are
// canonical header names.
func SafeHeaders(h http.Header, names ...string) {
	for _, name := range names {
		for i, v := range h[name] {
			h[name][i] = Encode(v)
		}
	}
}
