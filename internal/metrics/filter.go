package metrics

import "github.com/prometheus/client_golang/prometheus"

// The outbound spam policy, connection filtering and source throttling
// (issue 15).
var (
	// OutboundSpamThreshold counts submissions that took a sender past an
	// outbound spam policy limit, by the policy's action and by what
	// happened (alert: accepted and alerted; blocked: refused and the
	// sender restricted).
	OutboundSpamThreshold = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_outbound_spam_threshold_total",
		Help: "Submissions past an outbound spam policy limit, by ActionWhenThresholdReached and outcome (alert, blocked)."}, []string{"action", "outcome"})
	// ConnectionFiltered counts anonymous recipients refused because the
	// client's address is on the organization's IP Block List (5.7.606).
	ConnectionFiltered = prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_connection_filter_blocked_total",
		Help: "Anonymous recipients refused by an organization's IP Block List (550 5.7.606)."})
	// SourceThrottled counts anonymous recipients refused because their
	// source sent its hour's share of Direct Send or relay mail.
	SourceThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_source_throttled_total",
		Help: "Anonymous recipients refused by source throttling (451 4.7.500), by class (direct_send, relay)."}, []string{"class"})
)

func init() {
	Registry.MustRegister(OutboundSpamThreshold, ConnectionFiltered, SourceThrottled)
}
