package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Hop is the outbound queue's backlog for one next hop.
type Hop struct {
	NextHop string
	Depth   int
	Oldest  time.Time
}

// Sources are what the gauges read at scrape time: the server sets them
// once it has started (SetSources). A nil function leaves its metrics out.
type Sources struct {
	// Queue returns the outbound backlog per next hop, already bounded
	// (the top few hops and "other").
	Queue func() ([]Hop, error)
	// Gate returns the password verifications running and waiting.
	Gate func() (inFlight, waiting int)
	// CertNotAfter returns the serving certificate's notAfter.
	CertNotAfter func() time.Time
	Now          func() time.Time
}

var (
	liveMu  sync.Mutex
	sources Sources
)

// SetSources sets what the scrape-time gauges read.
func SetSources(s Sources) {
	liveMu.Lock()
	defer liveMu.Unlock()
	if s.Now == nil {
		s.Now = time.Now
	}
	sources = s
}

var (
	queueDepthDesc = prometheus.NewDesc("postern_queue_depth",
		"Outbound recipients waiting in the queue, by next hop (the top 10 recipient domains, the rest as \"other\").", []string{"next_hop"}, nil)
	queueAgeDesc = prometheus.NewDesc("postern_queue_oldest_age_seconds",
		"Age of the oldest message waiting in the outbound queue, by next hop.", []string{"next_hop"}, nil)
	verifyInFlightDesc = prometheus.NewDesc("postern_auth_verify_in_flight",
		"Password verifications (argon2id) running now.", nil, nil)
	verifyQueuedDesc = prometheus.NewDesc("postern_auth_verify_queued",
		"Password verifications waiting for a turn.", nil, nil)
	certExpiryDesc = prometheus.NewDesc("postern_tls_certificate_expiry_seconds",
		"Seconds until the serving TLS certificate's notAfter (negative once expired).", nil, nil)
)

// live is the collector of the scrape-time gauges.
type live struct{}

func (live) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueDepthDesc, queueAgeDesc, verifyInFlightDesc, verifyQueuedDesc, certExpiryDesc} {
		ch <- d
	}
}

func (live) Collect(ch chan<- prometheus.Metric) {
	liveMu.Lock()
	s := sources
	liveMu.Unlock()
	if s.Queue != nil {
		if hops, err := s.Queue(); err == nil {
			now := s.Now()
			for _, h := range hops {
				ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(h.Depth), h.NextHop)
				ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, now.Sub(h.Oldest).Seconds(), h.NextHop)
			}
		} else {
			ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		}
	}
	if s.Gate != nil {
		inFlight, waiting := s.Gate()
		ch <- prometheus.MustNewConstMetric(verifyInFlightDesc, prometheus.GaugeValue, float64(inFlight))
		ch <- prometheus.MustNewConstMetric(verifyQueuedDesc, prometheus.GaugeValue, float64(waiting))
	}
	if s.CertNotAfter != nil {
		if t := s.CertNotAfter(); !t.IsZero() {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, t.Sub(s.Now()).Seconds())
		}
	}
}

func init() { Registry.MustRegister(live{}) }
