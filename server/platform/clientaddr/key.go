package clientaddr

import "net/netip"

// Key names a client for per-address limits: the IPv4 address (IPv4-mapped
// IPv6 included), or the IPv6 /64, because one subscriber usually holds a
// whole /64 and could otherwise take a fresh address for every attempt.
// Every per-address limit uses it, so no limit is easier to dodge than
// another. An unknown address is "unknown": one shared bucket.
func Key(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
