package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"postern.dev/postern/internal/reply"
)

// TestReplyLabelsBounded: whatever code a reply carries, the labels come
// from a closed set.
func TestReplyLabelsBounded(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		code, class, subj, detail int
		wantCode, wantEnh         string
	}{
		{"catalogue", 535, 5, 7, 3, "535", "5.7.3"},
		{"no enhanced code", 220, 0, 0, 0, "220", ""},
		{"code out of range", 999, 5, 7, 3, "other", "5.7.3"},
		{"class out of range", 550, 7, 1, 1, "550", "other"},
		{"subject out of range", 550, 5, 10, 1, "550", "other"},
		{"detail out of range", 550, 5, 1, 1000, "550", "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := value(Replies.WithLabelValues(tc.wantCode, tc.wantEnh))
			Reply(tc.code, tc.class, tc.subj, tc.detail)
			if got := value(Replies.WithLabelValues(tc.wantCode, tc.wantEnh)); got != before+1 {
				t.Errorf("series {%s,%s} %v -> %v", tc.wantCode, tc.wantEnh, before, got)
			}
		})
	}
}

// TestListenerReplied: a catalogue reply is counted by its code and
// enhanced code; one without an enhanced code by its code alone.
func TestListenerReplied(t *testing.T) {
	for _, tc := range []struct {
		r        *reply.Reply
		code, ec string
	}{
		{reply.AuthFailed, "535", "5.7.3"},
		{&reply.Reply{Code: 250, EnhancedCode: smtp.NoEnhancedCode, Message: "x"}, "250", ""},
		{&reply.Reply{Code: 451, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "x"}, "451", "4.0.0"},
	} {
		before := value(Replies.WithLabelValues(tc.code, tc.ec))
		Listener("mx").Replied(tc.r)
		if got := value(Replies.WithLabelValues(tc.code, tc.ec)); got != before+1 {
			t.Errorf("%v: series {%s,%s} %v -> %v", tc.r, tc.code, tc.ec, before, got)
		}
	}
}

// TestAuthMechanismBounded: a mechanism name a client makes up is "other".
func TestAuthMechanismBounded(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "PLAIN"}, {"LOGIN", "LOGIN"}, {"xoauth2", "XOAUTH2"}, {"OAUTHBEARER", "OAUTHBEARER"},
		{"CRAM-MD5", "other"}, {strings.Repeat("A", 500), "other"},
	} {
		before := value(AuthAttempts.WithLabelValues(tc.want, "failure"))
		Auth(tc.in, "failure")
		if got := value(AuthAttempts.WithLabelValues(tc.want, "failure")); got != before+1 {
			t.Errorf("%q: not counted as %s", tc.in, tc.want)
		}
	}
}

// TestHandlerToken: only the configured bearer token reads the metrics;
// with none configured the page does not exist.
func TestHandlerToken(t *testing.T) {
	for _, tc := range []struct {
		name, token, auth string
		want              int
	}{
		{"right token", "s3cret", "Bearer s3cret", 200},
		{"no header", "s3cret", "", 401},
		{"wrong token", "s3cret", "Bearer s3cre", 401},
		{"longer token", "s3cret", "Bearer s3cret1", 401},
		{"basic scheme", "s3cret", "Basic s3cret", 401},
		{"no token configured", "", "Bearer ", 404},
		{"no token configured, some bearer", "", "Bearer x", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			Handler(func() string { return tc.token }).ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if has := strings.Contains(w.Body.String(), "postern_store_commit_seconds"); has != (tc.want == http.StatusOK) {
				t.Errorf("metrics in body: %v", has)
			}
		})
	}
}

// value reads a counter's value.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
