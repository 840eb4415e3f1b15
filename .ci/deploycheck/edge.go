package main

import (
	"fmt"
	"net/netip"
	"strings"
)

// Safe defaults of the edge (issue "The HTTP edge holds against hostile and
// real-world clients", item 10), shared by the compose and Kubernetes
// checks.

// secretSettings are settings whose value must never be written into a
// deploy file or a command line: a gateway secret anyone can read lets a
// direct gRPC client spoof client addresses, and argv shows in `ps`.
var secretSettings = []string{"GATEWAY_SECRET", "ADMIN_PASSWORD"}

// secretFlags are the command-line spellings of the same settings.
var secretFlags = []string{"--gateway-secret", "--admin-password", "-gateway-secret", "-admin-password"}

// argSecrets lists the secret flags found in a command line.
func argSecrets(args []string) []string {
	var out []string
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		for _, f := range secretFlags {
			if name == f {
				out = append(out, name)
			}
		}
	}
	return out
}

// privateRanges are whole private or internal ranges: trusting one of them
// for X-Forwarded-For trusts every pod and node in the network, not the
// load balancer.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"),
}

// checkTrustedProxies checks a TRUSTED_PROXIES value: each entry a CIDR,
// none covering a whole private range or more than a /16 (IPv6: /32),
// which is a network, not a balancer.
func checkTrustedProxies(value string) []string {
	var out []string
	for _, s := range splitList(value) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			out = append(out, fmt.Sprintf("TRUSTED_PROXIES entry %q is not a CIDR", s))
			continue
		}
		p = p.Masked()
		for _, r := range privateRanges {
			if p.Bits() <= r.Bits() && p.Contains(r.Addr()) {
				out = append(out, fmt.Sprintf("TRUSTED_PROXIES trusts %s, all of the private range %s: narrow it to the load balancer's range", p, r))
				break
			}
		}
		if p.Addr().Is4() && p.Bits() < 16 || p.Addr().Is6() && p.Bits() < 32 {
			out = append(out, fmt.Sprintf("TRUSTED_PROXIES trusts %s, wider than any load balancer's range", p))
		}
	}
	return out
}
