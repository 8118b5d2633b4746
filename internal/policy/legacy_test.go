package policy

import (
	"crypto/tls"
	"testing"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

func TestCheckLegacyEndpoint(t *testing.T) {
	on := &directory.Organization{AllowLegacyTLSClients: true}
	off := &directory.Organization{}
	for _, tt := range []struct {
		name    string
		org     *directory.Organization
		version uint16
		want    *reply.Reply
	}{
		{"opted in, TLS 1.0", on, tls.VersionTLS10, nil},
		{"opted in, TLS 1.1", on, tls.VersionTLS11, nil},
		{"opted in, TLS 1.2", on, tls.VersionTLS12, nil},
		{"opted in, TLS 1.3", on, tls.VersionTLS13, nil},
		{"not opted in, TLS 1.0", off, tls.VersionTLS10, reply.LegacyTLSRefused},
		{"not opted in, TLS 1.1", off, tls.VersionTLS11, reply.LegacyTLSRefused},
		{"not opted in, TLS 1.2: the endpoint is for opted-in organizations only", off, tls.VersionTLS12, reply.LegacyEndpointNotEnabled},
		{"not opted in, TLS 1.3", off, tls.VersionTLS13, reply.LegacyEndpointNotEnabled},
		{"no TLS at all", off, 0, reply.LegacyTLSRefused},
		{"organization removed meanwhile", nil, tls.VersionTLS12, reply.LegacyEndpointNotEnabled},
	} {
		if got := CheckLegacyEndpoint(tt.org, tt.version); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, describe(got), describe(tt.want))
		}
	}
}
