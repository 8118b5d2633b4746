// Package metrics holds Postern's Prometheus metrics: one registry, the
// server's counters, gauges and histograms, and the /metrics handler.
//
// Every label takes its value from a small closed set (a listener role, an
// outcome, a reply from the one catalogue, a SASL mechanism Postern offers,
// the top few next hops), never from what a client sends: a client IP or an
// address as a label would let any client grow the server's memory and the
// monitoring system's series without bound.
//
// The metrics are package-level so that the packages that count (smtpd,
// queue, store, auth) need no plumbing; a process runs one server.
package metrics

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"postern.dev/postern/internal/reply"
)

// Registry is the server's registry (not the global default one, so that
// nothing another library registers leaks into /metrics).
var Registry = prometheus.NewRegistry()

var (
	// Sessions counts ended SMTP connections by listener role and outcome
	// (see the Outcome constants in package smtpserver).
	Sessions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_smtp_sessions_total",
		Help: "SMTP connections ended, by listener and outcome."}, []string{"listener", "outcome"})
	// OpenConnections is the SMTP connections open now, per listener.
	OpenConnections = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "postern_smtp_open_connections",
		Help: "SMTP connections open now, by listener."}, []string{"listener"})
	// Replies counts SMTP replies sent, by code and enhanced code. Every
	// reply comes from package reply's catalogue, so the set is closed.
	Replies = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_smtp_replies_total",
		Help: "SMTP replies sent, by reply code and enhanced status code (RFC 3463)."}, []string{"code", "enhanced"})
	// AuthAttempts counts SMTP AUTH exchanges by mechanism and result.
	AuthAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_auth_attempts_total",
		Help: "SMTP AUTH attempts, by SASL mechanism and result (success, failure, throttled, locked_out, busy)."}, []string{"mechanism", "result"})
	// AuthThrottled counts AUTH attempts delayed or refused by the
	// per-address failure throttle.
	AuthThrottled = prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_auth_throttle_events_total",
		Help: "Sign-in attempts delayed or refused by the per-address failure throttle."})
	// AuthLockouts counts sign-ins refused because smart lockout holds the
	// account for an unfamiliar address.
	AuthLockouts = prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_auth_lockout_events_total",
		Help: "Sign-ins refused by smart lockout."})
	// GateRefused counts password verifications refused by the gate
	// (queue full, per-address share taken, waited too long).
	GateRefused = prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_auth_verify_refused_total",
		Help: "Password verifications refused by the verification gate (454 4.7.0)."})
	// MessagesAccepted and BytesAccepted count messages committed after
	// DATA/BDAT ("250 2.0.0"), by listener.
	MessagesAccepted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_messages_accepted_total",
		Help: "Messages accepted (durably committed), by listener."}, []string{"listener"})
	BytesAccepted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_message_bytes_accepted_total",
		Help: "Bytes of accepted messages, by listener."}, []string{"listener"})
	// Deliveries counts outbound delivery attempts' outcomes per recipient.
	Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_delivery_outcomes_total",
		Help: "Outbound delivery outcomes per recipient: sent, deferred, failed."}, []string{"outcome"})
	// DSNs counts delivery status notifications generated.
	DSNs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_dsn_total",
		Help: "Delivery status notifications generated, by kind (failure, delay)."}, []string{"kind"})
	// CommitSeconds is the latency of the store's group commits (one
	// transaction and fsync for a batch of messages).
	CommitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "postern_store_commit_seconds",
		Help:    "Latency of one group commit of the message store.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}})
	// CommitBatch is how many messages each group commit carried.
	CommitBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "postern_store_commit_batch_size",
		Help:    "Messages per group commit of the message store.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}})
	// ConfigReloads counts configuration reloads (SIGHUP) by result:
	// success (the file was valid and applied, maybe with keys that need a
	// restart) or failure (the file was refused; nothing changed).
	ConfigReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_config_reloads_total",
		Help: "Configuration reloads, by result (success, failure)."}, []string{"result"})
	// ConfigReloadSuccess is when the configuration was last applied
	// (start, or the last successful reload), as the Prometheus server's
	// own prometheus_config_last_reload_success_timestamp_seconds.
	ConfigReloadSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "postern_config_last_reload_success_timestamp_seconds",
		Help: "Unix time the configuration was last applied (start or successful reload)."})
)

func init() {
	Registry.MustRegister(Sessions, OpenConnections, Replies, AuthAttempts, AuthThrottled, AuthLockouts, GateRefused,
		MessagesAccepted, BytesAccepted, Deliveries, DSNs, CommitSeconds, CommitBatch, ConfigReloads, ConfigReloadSuccess,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Reply counts one SMTP reply sent. Codes outside 200–599 and malformed
// enhanced codes are folded into "other" so the label set stays closed
// even if a reply were built outside the catalogue.
func Reply(code int, class, subject, detail int) {
	c := "other"
	if code >= 200 && code <= 599 {
		c = strconv.Itoa(code)
	}
	e := ""
	if class > 0 {
		if class == 2 || class == 4 || class == 5 {
			if subject >= 0 && subject < 10 && detail >= 0 && detail < 100 {
				e = strconv.Itoa(class) + "." + strconv.Itoa(subject) + "." + strconv.Itoa(detail)
			} else {
				e = "other"
			}
		} else {
			e = "other"
		}
	}
	Replies.WithLabelValues(c, e).Inc()
}

// mechanisms are the SASL mechanisms Postern offers; anything else a
// client names is counted as "other".
var mechanisms = map[string]bool{"PLAIN": true, "LOGIN": true, "XOAUTH2": true, "OAUTHBEARER": true}

// Auth counts one AUTH attempt.
func Auth(mechanism, result string) {
	m := strings.ToUpper(mechanism)
	if !mechanisms[m] {
		m = "other"
	}
	AuthAttempts.WithLabelValues(m, result).Inc()
}

// Handler serves the registry at /metrics to holders of the token that
// currentToken returns at each request (as "Authorization: Bearer TOKEN"). Metrics are server-wide, so no
// organization's API key reads them: with no token configured the handler
// answers 404, as if there were no such page.
func Handler(currentToken func() string) http.Handler {
	inner := promhttp.HandlerFor(Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := currentToken() // per request: a reload may change it
		if token == "" {
			http.NotFound(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="postern-metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// Listener observes one SMTP listener's connections and replies (it
// implements smtpserver.Observer); its value is the listener's role.
type Listener string

// Opened counts an admitted connection as open.
func (l Listener) Opened() { OpenConnections.WithLabelValues(string(l)).Inc() }

// Closed counts an ended connection.
func (l Listener) Closed(outcome string) {
	OpenConnections.WithLabelValues(string(l)).Dec()
	Sessions.WithLabelValues(string(l), outcome).Inc()
}

// Refused counts a connection refused over a cap.
func (l Listener) Refused() { Sessions.WithLabelValues(string(l), "refused").Inc() }

// Replied counts a reply sent.
func (l Listener) Replied(r *reply.Reply) {
	ec := r.EnhancedCode
	switch {
	case ec == smtp.NoEnhancedCode:
		Reply(r.Code, 0, 0, 0)
	case ec == smtp.EnhancedCodeNotSet:
		Reply(r.Code, r.Code/100, 0, 0)
	default:
		Reply(r.Code, ec[0], ec[1], ec[2])
	}
}
