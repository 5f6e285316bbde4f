package testutil

import "net"

// LANAddress reports whether this machine has an address another device
// on its network could reach (neither loopback nor link-local), found
// independently of the code under test: a test that checks LAN URLs skips
// only when there is none.
func LANAddress() bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() && !n.IP.IsUnspecified() {
			return true
		}
	}
	return false
}
