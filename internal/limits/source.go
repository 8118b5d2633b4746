package limits

import "net/netip"

// Source is the unit that per-address limits count: an IPv4 address, or the
// /64 an IPv6 client sits in (one subscriber usually holds a whole /64, so
// counting single IPv6 addresses would let one client have 2^64 budgets).
// IPv4-mapped IPv6 addresses count as their IPv4 address.
func Source(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
