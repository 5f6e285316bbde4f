package testutil

import "net"

// LANAddress reports whether this machine has an address another device
// on its network could reach (neither loopback nor link-local), found
// independently of the code under test: a test that checks LAN URLs skips
// only when there is none.
func LANAddress() bool { return LANIP() != nil }

// LANIP returns such an address (an IPv4 one when there is one, since
// that is what a sandbox is bound to most often), or nil when there is none.
func LANIP() net.IP {
	var v6 net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() || n.IP.IsUnspecified() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP
		}
		if v6 == nil {
			v6 = n.IP
		}
	}
	return v6
}
