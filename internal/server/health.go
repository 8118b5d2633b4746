package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/metrics"
)

// registerHealth adds the operations endpoints to the admin listener:
//
//   - GET /metrics: Prometheus metrics, for the holder of metrics_token
//     only (Authorization: Bearer). Metrics are server-wide, so no
//     organization's API key or admin session reads them; with no token
//     configured the page does not exist (404).
//   - GET /healthz: 200 "ok" while the process serves HTTP (liveness); no
//     authentication, reveals nothing.
//   - GET /readyz: 200 "ready" when every configured listener is up and
//     the store takes a write and reads it back; 503 with the failing check
//     otherwise (readiness); no authentication, reveals no detail beyond
//     which check failed.
func (s *Server) registerHealth(mux *http.ServeMux) {
	mux.Handle("GET /metrics", metrics.Handler(func() string { return s.live.Load().MetricsToken }))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !s.ready.Load() {
			http.Error(w, "not ready: listeners are not up", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.store.Probe(ctx); err != nil {
			s.log.Warn("readiness probe: store not writable", "err", err)
			http.Error(w, "not ready: store not writable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
}

// queueHops is how many next hops postern_queue_depth names; the rest are
// summed as "other", so the series stay bounded whatever the queue holds.
const queueHops = 10

// setMetricSources points the scrape-time gauges at this server: the
// outbound queue per next hop, the password-verification gate, and the
// serving certificate's expiry.
func (s *Server) setMetricSources(tlsCfg *tls.Config, gate *auth.Gate) {
	metrics.SetSources(metrics.Sources{
		Queue: func() ([]metrics.Hop, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hs, err := s.store.QueueStats(ctx, queueHops)
			out := make([]metrics.Hop, 0, len(hs))
			for _, h := range hs {
				out = append(out, metrics.Hop{NextHop: h.NextHop, Depth: h.Depth, Oldest: h.Oldest})
			}
			return out, err
		},
		Gate:         gate.Load,
		CertNotAfter: func() time.Time { return certNotAfter(tlsCfg, s.cfg.Hostname) },
	})
}

// certNotAfter returns the notAfter of the certificate the server presents
// for hostname (through GetCertificate when certificates are chosen per
// handshake, e.g. after a reload), or zero when there is none.
func certNotAfter(cfg *tls.Config, hostname string) time.Time {
	if cfg == nil {
		return time.Time{}
	}
	var cert *tls.Certificate
	if cfg.GetCertificate != nil {
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: hostname})
		if err != nil {
			return time.Time{}
		}
		cert = c
	} else if len(cfg.Certificates) > 0 {
		cert = &cfg.Certificates[0]
	}
	if cert == nil {
		return time.Time{}
	}
	if cert.Leaf != nil {
		return cert.Leaf.NotAfter
	}
	if len(cert.Certificate) == 0 {
		return time.Time{}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return time.Time{}
	}
	return leaf.NotAfter
}
