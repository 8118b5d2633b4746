package senderauth

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// countingResolver answers TXT lookups from a table and counts them:
// names in txt have records, names in temp fail temporarily, the rest do
// not exist.
type countingResolver struct {
	txt   map[string][]string
	temp  map[string]bool
	asked map[string]int
}

func (r *countingResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	r.asked[name]++
	if r.temp[name] {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	if v, ok := r.txt[name]; ok {
		return append([]string(nil), v...), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}
func (r *countingResolver) LookupMX(context.Context, string) ([]*net.MX, error) {
	return []*net.MX{{Host: "mx.contoso.com.", Pref: 10}}, nil
}
func (r *countingResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return []net.IPAddr{{IP: net.IPv4(192, 0, 2, 1)}}, nil
}
func (r *countingResolver) LookupAddr(context.Context, string) ([]string, error) {
	return []string{"mx.contoso.com."}, nil
}

func TestDNSCache(t *testing.T) {
	tests := []struct {
		name      string
		lookup    string
		advance   time.Duration // between the two lookups
		wantAsked int
		wantErr   string // "" none, "notfound", "temporary"
	}{
		{name: "records are kept", lookup: "contoso.com", wantAsked: 1},
		{name: "no such name is kept too", lookup: "nowhere.example", wantAsked: 1, wantErr: "notfound"},
		{name: "a temporary failure is not kept", lookup: "broken.example", wantAsked: 2, wantErr: "temporary"},
		{name: "an answer older than the lifetime is asked again", lookup: "contoso.com", advance: cacheTTL, wantAsked: 2},
		{name: "within the lifetime it is not", lookup: "contoso.com", advance: cacheTTL - time.Second, wantAsked: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingResolver{txt: map[string][]string{"contoso.com": {"v=spf1 -all"}},
				temp: map[string]bool{"broken.example": true}, asked: map[string]int{}}
			c := newDNSCache(r)
			now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
			c.now = func() time.Time { return now }
			for i := range 2 {
				v, err := c.LookupTXT(context.Background(), tt.lookup)
				var dnsErr *net.DNSError
				switch {
				case tt.wantErr == "" && (err != nil || len(v) != 1 || v[0] != "v=spf1 -all"):
					t.Fatalf("lookup %d: %q, %v", i, v, err)
				case tt.wantErr == "notfound" && !(asDNSError(err, &dnsErr) && dnsErr.IsNotFound):
					t.Fatalf("lookup %d: %v, want not found", i, err)
				case tt.wantErr == "temporary" && !(asDNSError(err, &dnsErr) && dnsErr.IsTemporary):
					t.Fatalf("lookup %d: %v, want a temporary failure", i, err)
				}
				if v != nil {
					v[0] = "changed by the caller" // must not reach the next caller
				}
				now = now.Add(tt.advance)
			}
			if got := r.asked[tt.lookup]; got != tt.wantAsked {
				t.Errorf("asked the server %d times, want %d", got, tt.wantAsked)
			}
		})
	}
}

func asDNSError(err error, target **net.DNSError) bool {
	e, ok := err.(*net.DNSError)
	*target = e
	return ok
}

// TestDNSCacheBounded: names chosen by senders cannot grow the cache
// beyond cacheMax.
func TestDNSCacheBounded(t *testing.T) {
	r := &countingResolver{asked: map[string]int{}}
	c := newDNSCache(r)
	for i := range cacheMax + 500 {
		c.LookupTXT(context.Background(), fmt.Sprintf("n%d.example", i))
		if len(c.entries) > cacheMax {
			t.Fatalf("%d entries after %d names", len(c.entries), i+1)
		}
	}
	if _, err := c.LookupMX(context.Background(), "contoso.com"); err != nil {
		t.Fatal(err)
	}
	mx, _ := c.LookupMX(context.Background(), "contoso.com")
	mx[0].Host = "changed"
	if again, _ := c.LookupMX(context.Background(), "contoso.com"); again[0].Host != "mx.contoso.com." {
		t.Fatalf("a caller's change reached the cache: %q", again[0].Host)
	}
}
