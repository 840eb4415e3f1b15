package shortener

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxURLBytes bounds a target URL, as given and as stored.
const MaxURLBytes = 2048

// targetRules checks target URLs; own are the hosts of this shortener
// (in canonicalHost form), which a target may not point at: the link would
// loop; allowPrivate lets targets inside private networks through (for
// intranet deployments; see target.go).
type targetRules struct {
	own          map[string]bool
	allowPrivate bool
	// allowHosts are host names let through whatever they resolve to (a
	// developer's machine whose links point at localhost services).
	allowHosts map[string]bool
}

// idnaProfile converts international host names to their ASCII form
// (punycode), refusing what browsers refuse to resolve.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule(), idna.StrictDomainName(false), idna.VerifyDNSLength(true))

// normalize validates a target URL and returns the form stored and sent in
// Location: scheme and host lower-cased, the host in ASCII, the rest as
// given (percent-encoded where it had to be). The description says what is
// wrong, for a BadRequest field violation.
func (tr targetRules) normalize(raw string) (string, string) {
	switch {
	case raw == "":
		return "", "is required"
	case len(raw) > MaxURLBytes:
		return "", "must be at most 2048 bytes"
	case !utf8.ValidString(raw):
		return "", "must be valid UTF-8"
	}
	for _, r := range raw {
		// Control characters would split the Location header; spaces and
		// backslashes are parsed differently by browsers and by us.
		if r < 0x20 || r == 0x7f || r == ' ' || r == '\\' || (r >= 0x80 && r <= 0x9f) {
			return "", "must not contain spaces, control characters or backslashes"
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "is not a valid URL"
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", "must be an http or https URL"
	}
	if u.Opaque != "" || u.Host == "" {
		return "", "must be an absolute URL with a host (http://host/...)"
	}
	if u.User != nil {
		return "", "must not contain a user name or password"
	}
	host := u.Hostname()
	if host == "" {
		return "", "must be an absolute URL with a host (http://host/...)"
	}
	if port := u.Port(); port != "" && !validPort(port) {
		return "", "has an invalid port"
	}
	host, problem := tr.host(host)
	if problem != "" {
		return "", problem
	}
	u.Scheme = scheme
	if p := u.Port(); p != "" {
		u.Host = net.JoinHostPort(host, p)
	} else if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	} else {
		u.Host = host
	}
	out := u.String()
	if len(out) > MaxURLBytes {
		return "", "must be at most 2048 bytes once normalised"
	}
	return out, ""
}

func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// ownHosts returns the lower-cased host names (no port) of the given URLs
// and bare host names.
func ownHosts(names ...string) map[string]bool {
	out := map[string]bool{}
	for _, n := range names {
		if n == "" {
			continue
		}
		if u, err := url.Parse(n); err == nil && u.Host != "" {
			n = u.Hostname()
		} else if h, _, err := net.SplitHostPort(n); err == nil {
			n = h
		}
		out[canonicalHost(n)] = true
	}
	return out
}

// # Custom aliases
//
// 3 to 32 characters of ASCII letters, digits, '-' and '_'. Aliases are
// case-sensitive like generated codes ("Sale" and "sale" are two links),
// but a reserved word is refused in any case ("API", "Healthz"), so that no
// alias can shadow a path the gateway serves itself or may serve later.
var aliasRE = regexp.MustCompile(`^[0-9A-Za-z_-]{3,32}$`)

// codeRE is what any code (generated or alias) looks like; anything else is
// not a link (404), whatever the database holds.
var codeRE = regexp.MustCompile(`^[0-9A-Za-z_-]{1,32}$`)

// reservedWords are first path segments the platform uses or keeps for
// itself. Generated codes are checked too: a code equal to one (7 letters,
// like "healthz") is skipped.
var reservedWords = map[string]bool{
	"api": true, "s": true, "healthz": true, "readyz": true, "livez": true, "metrics": true,
	"canvas": true, "static": true, "assets": true, "ui": true, "app": true, "web": true,
	"www": true, "admin": true, "login": true, "logout": true, "register": true,
	"auth": true, "account": true, "settings": true, "docs": true, "doc": true,
	"help": true, "about": true, "swagger": true, "openapi": true, "favicon": true,
	"robots": true, "sitemap": true, "debug": true, "shorten": true, "urls": true,
	"stats": true, "qr": true, "well-known": true, "_": true,
}

func reserved(code string) bool { return reservedWords[strings.ToLower(code)] }

// aliasProblem describes what is wrong with an alias, or "".
func aliasProblem(a string) string {
	switch {
	case !aliasRE.MatchString(a):
		return "must be 3 to 32 characters of letters, digits, '-' and '_'"
	case reserved(a):
		return "is a reserved word"
	}
	return ""
}
