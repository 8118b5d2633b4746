package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"

	"postern.dev/postern/internal/directory"
)

// Route is where mail for one recipient domain goes: through an outbound
// connector's smart hosts, or by the domain's MX records (possibly under a
// connector's TLS settings).
type Route struct {
	// Key groups deliveries that can share connections.
	Key string
	// Domain is the recipient domain (for MX routes).
	Domain    string
	Connector *directory.OutboundConnector // nil for plain MX delivery
}

// NextHop names the route as Get-Queue's NextHopDomain does: the
// connector's name for smart-host routes, the recipient domain otherwise.
func (r Route) NextHop() string {
	if r.Connector != nil && !r.Connector.UseMXRecord {
		return r.Connector.Name
	}
	return r.Domain
}

// DeliveryType is Exchange's name for the kind of queue.
func (r Route) DeliveryType() string {
	if r.Connector != nil && !r.Connector.UseMXRecord {
		return "SmartHostConnectorDelivery"
	}
	return "DnsConnectorDelivery"
}

// RouteFor decides the route of a recipient domain: the most specific
// enabled outbound connector of the organization, else MX.
func RouteFor(snap *directory.Snapshot, org int64, domain string) Route {
	domain = strings.ToLower(domain)
	oc := snap.OutboundConnectorFor(org, domain)
	switch {
	case oc == nil:
		return Route{Key: "mx:" + domain, Domain: domain}
	case oc.UseMXRecord:
		return Route{Key: fmt.Sprintf("connector:%d:%s", oc.ID, domain), Domain: domain, Connector: oc}
	}
	return Route{Key: fmt.Sprintf("connector:%d", oc.ID), Domain: domain, Connector: oc}
}

// target is one server to try: a host name (for TLS and messages) and the
// address to dial.
type target struct {
	Host string
	Addr string // ip:port
}

// resolveError is a lookup failure; permanent when the domain cannot
// receive mail at all (no such domain, null MX), temporary otherwise.
type resolveError struct {
	permanent bool
	status    string // enhanced status code for a permanent failure
	msg       string
}

func (e *resolveError) Error() string { return e.msg }

// targets lists the servers for a route in the order to try them.
func (q *Queue) targets(ctx context.Context, r Route) ([]target, error) {
	if r.Connector != nil && !r.Connector.UseMXRecord {
		var hosts []hostPort
		for _, h := range r.Connector.SmartHosts {
			host, port := splitHostPort(h, 25)
			hosts = append(hosts, hostPort{host, port})
		}
		// Exchange balances across a connector's smart hosts.
		rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
		return q.addresses(ctx, hosts)
	}
	mxs, err := q.tuning().Resolver.LookupMX(ctx, r.Domain)
	var dnsErr *net.DNSError
	switch {
	case err == nil && len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == ""):
		// RFC 7505 §3: a null MX says the domain accepts no mail.
		return nil, &resolveError{permanent: true, status: "5.1.10",
			msg: fmt.Sprintf("550 5.1.10 the domain %s accepts no mail (null MX, RFC 7505)", r.Domain)}
	case err == nil && len(mxs) > 0:
		// RFC 5321 §5.1: lowest preference first, equal preferences in
		// random order.
		rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
		sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
		var hosts []hostPort
		for _, mx := range mxs {
			hosts = append(hosts, hostPort{strings.TrimSuffix(mx.Host, "."), q.tuning().MXPort})
		}
		return q.addresses(ctx, hosts)
	case err == nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound):
		// No MX: the domain itself is the implicit MX (RFC 5321 §5.1),
		// if it has addresses at all.
		ts, aerr := q.addresses(ctx, []hostPort{{r.Domain, q.tuning().MXPort}})
		if errors.As(aerr, &dnsErr) && dnsErr.IsNotFound {
			return nil, &resolveError{permanent: true, status: "5.1.2",
				msg: fmt.Sprintf("550 5.1.2 the domain %s has no MX or address records", r.Domain)}
		}
		return ts, aerr
	}
	return nil, &resolveError{msg: fmt.Sprintf("451 4.4.3 DNS lookup of MX for %s failed: %v", r.Domain, lookupReason(err))}
}

type hostPort struct {
	host string
	port int
}

// addresses resolves host names to addresses, keeping order; a host that
// does not resolve is skipped unless none does.
func (q *Queue) addresses(ctx context.Context, hosts []hostPort) ([]target, error) {
	var out []target
	var firstErr error
	for _, h := range hosts {
		if ip := net.ParseIP(strings.Trim(h.host, "[]")); ip != nil {
			out = append(out, target{Host: h.host, Addr: net.JoinHostPort(ip.String(), strconv.Itoa(h.port))})
			continue
		}
		ips, err := q.tuning().Resolver.LookupIPAddr(ctx, h.host)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, ip := range ips {
			out = append(out, target{Host: h.host, Addr: net.JoinHostPort(ip.IP.String(), strconv.Itoa(h.port))})
		}
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = errors.New("no addresses")
		}
		var dnsErr *net.DNSError
		if errors.As(firstErr, &dnsErr) && dnsErr.IsNotFound {
			return nil, firstErr
		}
		return nil, &resolveError{msg: "451 4.4.3 DNS lookup of the next hop failed: " + lookupReason(firstErr)}
	}
	return out, nil
}

func lookupReason(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return dnsErr.Name + ": timeout"
		}
		return dnsErr.Name + ": " + dnsErr.Err
	}
	return err.Error()
}

// splitHostPort reads "host", "host:port", "1.2.3.4", "[::1]:25" or "::1".
func splitHostPort(s string, def int) (string, int) {
	if host, port, err := net.SplitHostPort(s); err == nil {
		if p, err := strconv.Atoi(port); err == nil {
			return host, p
		}
	}
	return strings.Trim(s, "[]"), def
}
