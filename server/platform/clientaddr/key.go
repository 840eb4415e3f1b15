package clientaddr

import "net/netip"

// Key is the address a per-client limit counts against: an IPv4 (or
// IPv4-mapped) client by its address, an IPv6 client by its /64, which
// one subscriber line usually gets whole (counting single IPv6 addresses
// would let one home network open limits without end).
func Key(a netip.Addr) string {
	a = a.Unmap()
	if !a.IsValid() {
		return ""
	}
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
