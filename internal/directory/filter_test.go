package directory

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseIPRange(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" expects an error containing errText
		errText  string
		first    string
		last     string
	}{
		{in: "192.168.1.1", want: "192.168.1.1", first: "192.168.1.1", last: "192.168.1.1"},
		{in: " 192.168.0.1/25 ", want: "192.168.0.0/25", first: "192.168.0.0", last: "192.168.0.127"},
		{in: "192.168.0.1-192.168.0.254", want: "192.168.0.1-192.168.0.254", first: "192.168.0.1", last: "192.168.0.254"},
		{in: "10.0.0.0/24", want: "10.0.0.0/24", first: "10.0.0.0", last: "10.0.0.255"},
		{in: "10.0.0.0/32", want: "10.0.0.0/32", first: "10.0.0.0", last: "10.0.0.0"},
		{in: "::ffff:10.0.0.1", want: "10.0.0.1", first: "10.0.0.1", last: "10.0.0.1"},
		{in: "2001:db8::/48", want: "2001:db8::/48", first: "2001:db8::", last: "2001:db8:0:ffff:ffff:ffff:ffff:ffff"},
		{in: "2001:db8::1", want: "2001:db8::1", first: "2001:db8::1", last: "2001:db8::1"},
		{in: "10.0.0.0/23", errText: "/24 through /32"},
		{in: "2001:db8::/32", errText: "/48 through /128"},
		{in: "10.0.0.0-10.0.1.0", errText: "at most 256"},
		{in: "10.0.0.0-10.0.0.255", want: "10.0.0.0-10.0.0.255", first: "10.0.0.0", last: "10.0.0.255"},
		{in: "10.0.0.9-10.0.0.1", errText: "after its last"},
		{in: "10.0.0.1-2001:db8::1", errText: "both ends"},
		{in: "::ffff:10.0.0.0/120", errText: "IPv4 form"},
		{in: "fe80::1%eth0", errText: "single IP address"},
		{in: "contoso.com", errText: "single IP address"},
		{in: "10.0.0.0/", errText: "CIDR entry"},
		{in: "", errText: "empty"},
	} {
		r, err := ParseIPRange(tc.in)
		if tc.errText != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("%q: err %v, want one saying %q", tc.in, err, tc.errText)
			}
			continue
		}
		if err != nil || r.String() != tc.want || r.First.String() != tc.first || r.Last.String() != tc.last {
			t.Errorf("%q: got %q [%v, %v] %v; want %q [%s, %s]", tc.in, r, r.First, r.Last, err, tc.want, tc.first, tc.last)
		}
	}
}

func TestIPRangeContains(t *testing.T) {
	r, _ := ParseIPRange("192.0.2.0/24")
	for ip, want := range map[string]bool{"192.0.2.0": true, "192.0.2.255": true, "192.0.3.0": false, "::ffff:192.0.2.1": false, "2001:db8::1": false} {
		if got := r.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: %v, want %v", ip, got, want)
		}
	}
}

func TestRestrictedSenderState(t *testing.T) {
	now := time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC)
	if got := NextUTCDay(now); !got.Equal(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("NextUTCDay = %v", got)
	}
	r := &RestrictedSender{ReleasedAt: now.Add(-time.Hour)}
	if !r.ReleasedToday(now) || r.ReleasedToday(now.Add(2*time.Minute)) || r.Blocking(now) {
		t.Fatalf("released state wrong")
	}
}

// FuzzParseIPRange: any input is refused or gives an entry that parses
// back to itself and contains its ends, without panicking.
func FuzzParseIPRange(f *testing.F) {
	for _, s := range []string{"192.168.1.1", "192.168.0.1/25", "192.168.0.1-192.168.0.254", "2001:db8::/48", "::ffff:1.2.3.4", "1-2", "/", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseIPRange(s)
		if err != nil {
			return
		}
		again, err := ParseIPRange(r.String())
		if err != nil || again != r {
			t.Fatalf("%q -> %q does not round-trip: %v %v", s, r, again, err)
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) || r.Last.Less(r.First) {
			t.Fatalf("%q: bad range %v-%v", s, r.First, r.Last)
		}
	})
}
