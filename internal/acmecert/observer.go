package acmecert

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// observer watches the ACME client's exchanges with the CA for the
// reasons of failures, and logs them. autocert does not pass them on: a
// failed challenge ends its order loop with "no viable challenge type
// found", and its renewal timer retries without a word. The CA states the
// reason in its answers: a problem document (RFC 8555 §6.7, RFC 7807) for
// a refused request, an "error" on an invalid authorization's challenge
// (§7.1.4) or order. The responses are passed on unchanged.
type observer struct {
	base http.RoundTripper
	log  *slog.Logger

	// seen holds the last failed objects' URLs: autocert fetches an
	// invalid authorization twice (waiting for it, then to deactivate
	// what is pending), and its failure is logged once.
	mu   sync.Mutex
	seen [16]string
	next int
}

// firstSight records url and reports whether it was not among the last seen.
func (o *observer) firstSight(url string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if slices.Contains(o.seen[:], url) {
		return false
	}
	o.seen[o.next] = url
	o.next = (o.next + 1) % len(o.seen)
	return true
}

// maxObserved caps what is read ahead of the ACME client for inspection;
// a longer answer is passed on without a look (authorizations and problem
// documents are a few hundred bytes).
const maxObserved = 64 << 10

func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(req)
	if err != nil {
		return resp, err // the ACME client reports it
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/problem+json" && mt != "application/json" {
		return resp, nil
	}
	head, rerr := io.ReadAll(io.LimitReader(resp.Body, maxObserved+1))
	resp.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(head), resp.Body), Closer: resp.Body}
	if rerr != nil || len(head) > maxObserved {
		return resp, nil
	}
	findings := describe(mt, head)
	if len(findings) == 0 || mt == "application/json" && !o.firstSight(req.URL.String()) {
		return resp, nil
	}
	for _, f := range findings {
		level := slog.LevelWarn
		if f.minor {
			level = slog.LevelDebug
		}
		o.log.Log(req.Context(), level, f.msg, append(f.attrs, "url", req.URL.String())...)
	}
	return resp, nil
}

type replayBody struct {
	io.Reader
	io.Closer
}

// finding is one failure the CA reported.
type finding struct {
	msg   string
	attrs []any
	// minor: the ACME client deals with it itself (a stale nonce is
	// retried, RFC 8555 §6.5), so it is only worth a debug line.
	minor bool
}

// problem is an RFC 7807 problem document as ACME uses it.
type problem struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	Status int    `json:"status"`
}

// caObject has the fields of the ACME objects that carry a failure: an
// authorization (status, identifier, challenges with their errors), an
// order (status, error) or a challenge (type, status, error).
type caObject struct {
	Status     string `json:"status"`
	Type       string `json:"type"`
	Identifier struct {
		Value string `json:"value"`
	} `json:"identifier"`
	Challenges []struct {
		Type   string   `json:"type"`
		Status string   `json:"status"`
		Error  *problem `json:"error"`
	} `json:"challenges"`
	Error *problem `json:"error"`
}

// maxFindings caps the lines one answer can produce.
const maxFindings = 8

// describe returns the failures a CA's answer reports: nothing for a
// success or for anything it cannot read.
func describe(mediaType string, body []byte) []finding {
	if mediaType == "application/problem+json" {
		var p problem
		if json.Unmarshal(body, &p) != nil || p.Type == "" && p.Detail == "" {
			return nil
		}
		return []finding{{msg: "ACME CA refused a request", attrs: []any{"problem", clip(p.Type), "detail", clip(p.Detail), "status", p.Status},
			minor: strings.HasSuffix(p.Type, ":badNonce")}}
	}
	var o caObject
	if json.Unmarshal(body, &o) != nil || o.Status != "invalid" {
		return nil
	}
	var out []finding
	for _, c := range o.Challenges {
		if c.Error != nil && len(out) < maxFindings {
			out = append(out, finding{msg: "ACME challenge failed", attrs: []any{"name", clip(o.Identifier.Value),
				"challenge", clip(c.Type), "problem", clip(c.Error.Type), "detail", clip(c.Error.Detail)}})
		}
	}
	if o.Error != nil && len(out) < maxFindings {
		what := "ACME order failed"
		if strings.HasSuffix(o.Type, "-01") {
			what = "ACME challenge failed"
		}
		out = append(out, finding{msg: what, attrs: []any{"name", clip(o.Identifier.Value), "challenge", clip(o.Type),
			"problem", clip(o.Error.Type), "detail", clip(o.Error.Detail)}})
	}
	return out
}

// clip bounds a CA-supplied string in the log.
func clip(s string) string {
	const max = 512
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
