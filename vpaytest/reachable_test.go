package vpaytest

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReachablePrefersALANIPv4(t *testing.T) {
	ips := func(s ...string) []net.IP {
		var out []net.IP
		for _, a := range s {
			out = append(out, net.ParseIP(a))
		}
		return out
	}
	for _, tt := range []struct {
		name string
		ips  []net.IP
		want string
	}{
		{"IPv4 over an earlier IPv6", ips("127.0.0.1", "::1", "fe80::1", "fd00::2", "192.168.1.5", "10.0.0.9"), "192.168.1.5"},
		{"the first IPv6 when there is no IPv4", ips("127.0.0.1", "fe80::1", "fd00::2", "fd00::3"), "fd00::2"},
		{"never loopback, link-local, unspecified or multicast", ips("127.0.0.1", "::1", "169.254.1.1", "fe80::1", "0.0.0.0", "224.0.0.1"), "<nil>"},
	} {
		assert.Equal(t, tt.want, reachable(tt.ips).String(), tt.name)
	}
}
