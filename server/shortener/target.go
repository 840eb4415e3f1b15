package shortener

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"github.com/mtibben/confusables"
)

// # Target hosts
//
// A short link is followed by browsers, link-preview crawlers and our own
// users' tools, so a target inside a network (a router, a cloud metadata
// service) or back at us (a redirect loop between two aliases) must be
// refused however its host is spelled. Hosts are therefore parsed the way
// browsers parse them (the WHATWG URL standard: "127.1", "0x7f000001" and
// "2130706433" are all 127.0.0.1) before any check, IPv6 forms that embed
// an IPv4 address are checked as that address, and names are compared in
// their ASCII (punycode) form.

// hostClass is why a target host is refused ("" when it is not).
type hostClass string

const (
	hostOK       hostClass = ""
	hostLoopback hostClass = "loopback"
	hostUnspec   hostClass = "unspecified"
	hostLinkLoc  hostClass = "link-local"
	hostMetadata hostClass = "cloud metadata"
	hostPrivate  hostClass = "private network"
	hostSpecial  hostClass = "multicast or reserved"
)

// metadataAddrs are cloud instance-metadata endpoints (AWS, GCP and Azure
// share 169.254.169.254; AWS's IPv6 one; Alibaba's).
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true,
	netip.MustParseAddr("fd00:ec2::254"):   true,
	netip.MustParseAddr("100.100.100.200"): true,
}

// privatePrefixes beyond netip's IsPrivate (RFC 1918, fc00::/7): carrier-
// grade NAT space and "this network".
var (
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// classifyAddr says what kind of address a is.
func classifyAddr(a netip.Addr) hostClass {
	a = embeddedIPv4(a)
	switch {
	case metadataAddrs[a]:
		return hostMetadata
	case a.IsLoopback():
		return hostLoopback
	case a.IsUnspecified(), thisNetwork.Contains(a):
		return hostUnspec
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return hostLinkLoc
	case a.IsPrivate(), cgnat.Contains(a):
		return hostPrivate
	case a.IsMulticast(), a.IsInterfaceLocalMulticast(), reserved4.Contains(a), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return hostSpecial
	}
	return hostOK
}

// embeddedIPv4 returns the IPv4 address an IPv6 address stands for
// (IPv4-mapped, IPv4-compatible, NAT64, 6to4), or a itself.
func embeddedIPv4(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
	case isZero(b[:12]) && !isZero(b[12:14]):
		// ::a.b.c.d (IPv4-compatible, deprecated but still parsed); ::1
		// and :: are left as they are.
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	return a
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// classifyName says what kind of host a (lower-case ASCII) name is:
// "localhost" and its subdomains resolve to loopback (RFC 6761); .local
// (mDNS) and .internal (reserved for private use) name hosts inside a
// network; GCP's metadata server has a name too.
func classifyName(name string) hostClass {
	switch {
	case name == "localhost", strings.HasSuffix(name, ".localhost"):
		return hostLoopback
	case name == "metadata.google.internal", name == "metadata":
		return hostMetadata
	case strings.HasSuffix(name, ".local"), strings.HasSuffix(name, ".internal"), !strings.Contains(name, "."):
		// A dotless name resolves through the local search domain.
		return hostPrivate
	}
	return hostOK
}

// parseHost parses a URL host (without port or brackets) the way browsers
// do. It returns an address for IP hosts, or ok=false for names. A host
// whose last label is a number but is not a valid IPv4 address is bad.
func parseHost(host string) (addr netip.Addr, isIP, bad bool) {
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, true, true
		}
		return a, true, false
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if !looksNumeric(labels[len(labels)-1]) {
		return netip.Addr{}, false, false
	}
	a, ok := whatwgIPv4(labels)
	return a, true, !ok
}

// whatwgIPv4 is the WHATWG URL standard's IPv4 parser: up to four parts,
// each decimal, octal (leading 0) or hex (0x); the last part fills the
// remaining bytes ("127.1" is 127.0.0.1, "2130706433" is 127.0.0.1).
func whatwgIPv4(labels []string) (netip.Addr, bool) {
	if len(labels) > 4 {
		return netip.Addr{}, false
	}
	var n uint64
	for i, l := range labels {
		v, ok := ipv4Part(l)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(labels)-1 {
			if v > 255 {
				return netip.Addr{}, false
			}
			n |= v << (8 * (3 - i))
			continue
		}
		if v >= 1<<(8*(5-len(labels))) {
			return netip.Addr{}, false
		}
		n |= v
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// looksNumeric is the standard's "ends in a number" test of the last label:
// digits only, or 0x and hex digits.
func looksNumeric(l string) bool {
	if l == "" {
		return false
	}
	if len(l) >= 2 && (l[:2] == "0x" || l[:2] == "0X") {
		l = l[2:]
		return strings.Trim(l, "0123456789abcdefABCDEF") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

func ipv4Part(s string) (uint64, bool) {
	base := 10
	switch {
	case s == "":
		return 0, false
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
		if s == "" {
			return 0, true
		}
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil || v > 0xffffffff {
		return 0, false
	}
	return v, true
}

// homograph reports why an international (punycode) label mixes up
// scripts: characters of two scripts that are not written together
// (Latin "apple" with one Cyrillic letter), or a label wholly in another
// script that is made of look-alikes of Latin letters only (Cyrillic
// "аррӏе" looks like "apple"). The script sets are Unicode's (Go's unicode
// tables), the look-alikes Unicode's confusables data (UTS #39 skeletons).
func homograph(unicodeLabel string) string {
	scripts := map[string]bool{}
	for _, r := range unicodeLabel {
		if s := scriptOf(r); s != "" {
			scripts[s] = true
		}
	}
	if len(scripts) > 1 && !allowedMix(scripts) {
		return "mixes letters of different scripts (a look-alike of another name)"
	}
	if len(scripts) == 1 && !scripts["Latin"] && !scripts["Han"] {
		sk := confusables.Skeleton(unicodeLabel)
		if sk != unicodeLabel && isASCII(sk) {
			return "is made of letters that look like Latin ones (a look-alike of " + strconv.Quote(sk) + ")"
		}
	}
	return ""
}

// candidateScripts are the scripts a host label is checked against.
var candidateScripts = []string{"Latin", "Cyrillic", "Greek", "Armenian", "Han", "Hiragana", "Katakana", "Hangul",
	"Bopomofo", "Arabic", "Hebrew", "Thai", "Devanagari", "Georgian", "Cherokee", "Coptic", "Ethiopic"}

func scriptOf(r rune) string {
	if r < 0x80 {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	for _, name := range candidateScripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	if unicode.In(r, unicode.Common, unicode.Inherited) {
		return ""
	}
	return "Other"
}

// allowedMix: Latin with the scripts of Chinese, Japanese and Korean, as
// UTS #39's "highly restrictive" level allows.
func allowedMix(scripts map[string]bool) bool {
	cjk := map[string]bool{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true, "Hangul": true, "Bopomofo": true}
	for s := range scripts {
		if !cjk[s] {
			return false
		}
	}
	return !(scripts["Hangul"] && (scripts["Hiragana"] || scripts["Katakana"]))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return s != ""
}

// host checks and normalises a target's host (as url.Hostname gives it):
// the canonical form of an IP address, or the lower-case ASCII form of a
// name; the problem says why it is refused.
func (tr targetRules) host(raw string) (string, string) {
	a, isIP, bad := parseHost(raw)
	var host string
	var class hostClass
	switch {
	case bad:
		return "", "has an invalid host (not a valid IP address)"
	case isIP:
		a = a.Unmap()
		host, class = a.String(), classifyAddr(a)
	default:
		ascii, err := idnaProfile.ToASCII(strings.TrimSuffix(raw, "."))
		if err != nil || ascii == "" || len(ascii) > 253 || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
			return "", "has an invalid host name"
		}
		host = strings.ToLower(ascii)
		class = classifyName(host)
		for _, label := range strings.Split(host, ".") {
			if !strings.HasPrefix(label, "xn--") {
				continue
			}
			u, err := idnaProfile.ToUnicode(label)
			if err != nil {
				return "", "has an invalid host name"
			}
			if why := homograph(u); why != "" {
				return "", "has a host name that " + why
			}
		}
	}
	if tr.own[host] {
		return "", "must not point at this shortener (the link would loop)"
	}
	switch {
	case class == hostOK, class == hostPrivate && tr.allowPrivate, tr.allowHosts[host]:
		return host, ""
	}
	return "", "must not point at a " + string(class) + " address (only public hosts can be link targets)"
}

// canonicalHost is the form own hosts are compared in (see host).
func canonicalHost(n string) string {
	n = strings.ToLower(strings.Trim(n, "[]"))
	if a, isIP, bad := parseHost(n); isIP && !bad {
		return a.Unmap().String()
	}
	if ascii, err := idnaProfile.ToASCII(strings.TrimSuffix(n, ".")); err == nil && ascii != "" {
		return strings.ToLower(ascii)
	}
	return n
}
