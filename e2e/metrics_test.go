package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testsmtp"
)

// metricsToken is the bearer token the metrics tests configure.
const metricsToken = "scrape-Token-0123456789"

// adminGet fetches path on the admin listener with curl, as Prometheus or
// a load balancer's health check would, and returns the status and body.
func (in *instance) adminGet(t *testing.T, adminAddr, path string, header ...string) (int, string) {
	t.Helper()
	curl := requireTool(t, "curl")
	args := []string{"-sS", "--max-time", "20", "--cacert", in.caFile(), "--resolve", "localhost:" + portOf(adminAddr) + ":127.0.0.1",
		"-w", "\n%{http_code}"}
	for _, h := range header {
		args = append(args, "-H", h)
	}
	out, err := exec.Command(curl, append(args, "https://localhost:"+portOf(adminAddr)+path)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", path, err, out)
	}
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndex(s, "\n")
	code, err := strconv.Atoi(s[i+1:])
	if err != nil {
		t.Fatalf("curl %s: no status in %q", path, s)
	}
	return code, s[:max(i, 0)]
}

// scrape reads /metrics with the token and returns every sample by its
// series ("name{labels}" as exposed, labels in name order).
func (in *instance) scrape(t *testing.T, adminAddr string) map[string]float64 {
	t.Helper()
	code, body := in.adminGet(t, adminAddr, "/metrics", "Authorization: Bearer "+metricsToken)
	if code != 200 {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndex(l, " ")
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", l)
		}
		out[l[:i]] = v
	}
	return out
}

// waitMetric scrapes until cond holds for the samples, or fails after a
// generous deadline (counters at connection end move after the reply).
func (in *instance) waitMetric(t *testing.T, adminAddr, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := in.scrape(t, adminAddr)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			var names []string
			for k, v := range m {
				if strings.HasPrefix(k, "postern_") {
					names = append(names, k+" "+strconv.FormatFloat(v, 'g', -1, 64))
				}
			}
			t.Fatalf("%s: never held; last scrape:\n%s", what, strings.Join(names, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startJSON is start for a server logging JSON: it waits for the
// "postern started" object and takes the listeners' addresses from the
// "listening" objects.
func (in *instance) startJSON() {
	in.t.Helper()
	in.log = &syncBuffer{}
	args := append([]string{"serve", "--data", in.data, "--hostname", "mail.contoso.com",
		"--submission", "127.0.0.1:0", "--submissions", "127.0.0.1:0", "--mx", "127.0.0.1:0", "--resolver", emptyDNS}, in.extra...)
	args = append(args, accessOff...)
	in.cmd = exec.Command(binary, args...)
	in.cmd.Stderr, in.cmd.Stdout = in.log, in.log
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { in.stop() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		in.addrs = map[string]string{}
		started := false
		for _, rec := range jsonLines(in.t, in.log.String(), false) {
			switch rec["msg"] {
			case "listening":
				in.addrs[rec["role"].(string)] = rec["addr"].(string)
			case "postern started":
				started = true
			}
		}
		if started {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.t.Fatalf("server did not start:\n%s", in.log.String())
}

// jsonLines parses the log as one JSON object per line; strict fails the
// test on a line that is not one.
func jsonLines(t *testing.T, log string, strict bool) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			if strict {
				t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
			}
			continue
		}
		out = append(out, rec)
	}
	return out
}

var replyCodes = regexp.MustCompile(`^(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})`)

// replySeries names the postern_smtp_replies_total series of a reply.
func replySeries(t *testing.T, reply string) string {
	t.Helper()
	m := replyCodes.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("reply without enhanced code: %q", reply)
	}
	return `postern_smtp_replies_total{code="` + m[1] + `",enhanced="` + m[2] + `"}`
}

// TestMetricsMoveWithTraffic: /metrics (token only), /healthz and /readyz
// on the admin listener; counters and gauges scraped before and after a
// failed AUTH, a local message, a refused and a deferred outbound
// recipient move by what happened; the JSON log parses line by line, and
// the session ID of the accepted message's log lines is the one the
// message trace and the Received field name.
func TestMetricsMoveWithTraffic(t *testing.T) {
	o := newOutside(t, testsmtp.Config{Reply: func(s testsmtp.Stage, arg string) string {
		switch {
		case s == testsmtp.Rcpt && strings.HasPrefix(arg, "gone@"):
			return "550 5.1.1 gone@fabrikam.example: recipient rejected"
		case s == testsmtp.Rcpt && strings.HasPrefix(arg, "later@"):
			return "451 4.3.0 try again later"
		}
		return ""
	}})
	adminAddr := freeAddr(t)
	in := newInstance(t, append(o.flags(t), "--admin", adminAddr, "--metrics-token", metricsToken, "--log-format", "json")...)
	sender := in.mailbox("scanner", "Scan-Pass-1")
	in.mailbox("bob", "Bob-Pass-1")
	in.startJSON()

	// Health: no authentication needed, and no detail given.
	if code, body := in.adminGet(t, adminAddr, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := in.adminGet(t, adminAddr, "/readyz"); code != 200 || strings.TrimSpace(body) != "ready" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	// Metrics: refused without the token, with a wrong one, and with an
	// organization's API key (a bearer token that is not metrics_token).
	key := fieldValue(in.admin("New-ApiKey", "-Name", "monitoring", "-Role", "View-Only"), "Key")
	for _, h := range []string{"", "Authorization: Bearer wrong", "Authorization: Basic " + metricsToken, "Authorization: Bearer " + key} {
		var hs []string
		if h != "" {
			hs = append(hs, h)
		}
		if code, body := in.adminGet(t, adminAddr, "/metrics", hs...); code != 401 || strings.Contains(body, "postern_") {
			t.Errorf("/metrics with %q: %d\n%.200s", h, code, body)
		}
	}

	before := in.scrape(t, adminAddr)
	for _, name := range []string{"postern_tls_certificate_expiry_seconds", "postern_auth_verify_in_flight", "postern_auth_verify_queued"} {
		if _, ok := before[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if d := before["postern_tls_certificate_expiry_seconds"]; d < 24*3600 {
		t.Errorf("certificate expiry %v s: the generated certificate should be valid for long", d)
	}

	// A wrong password, then the right one, on one connection; a local
	// message, then one for three outside recipients: accepted, refused
	// (a non-delivery report) and deferred (stays queued).
	c := dial(t, in.addrs["submission"])
	failed := c.login(in.tlsConfig(), sender, "wrong")
	if !strings.HasPrefix(failed, "535 ") {
		t.Fatalf("wrong password: %s", failed)
	}
	ok := c.do("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+sender+"\x00Scan-Pass-1")))
	if !strings.HasPrefix(ok, "235 ") {
		t.Fatalf("AUTH: %s", ok)
	}
	local := message(sender, "bob@contoso.com", "metrics local")
	if got := c.send(sender, []string{"bob@contoso.com"}, local); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("local: %s", got)
	}
	out := message(sender, "someone@fabrikam.example", "metrics outbound")
	accepted := c.send(sender, []string{"someone@fabrikam.example", "gone@fabrikam.example", "later@fabrikam.example"}, out)
	if !strings.HasPrefix(accepted, "250 ") {
		t.Fatalf("outbound: %s", accepted)
	}
	c.expect("QUIT", "221")
	if _, err := o.mx.WaitMessages(1, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	sub := func(s string) string { return `{listener="submission"` + s + `}` }
	after := in.waitMetric(t, adminAddr, "session ended, deliveries tried, DSN made, deferred item queued", func(m map[string]float64) bool {
		return m[`postern_smtp_sessions_total`+sub(`,outcome="quit"`)] > before[`postern_smtp_sessions_total`+sub(`,outcome="quit"`)] &&
			m[`postern_delivery_outcomes_total{outcome="failed"}`] > before[`postern_delivery_outcomes_total{outcome="failed"}`] &&
			m[`postern_delivery_outcomes_total{outcome="deferred"}`] > before[`postern_delivery_outcomes_total{outcome="deferred"}`] &&
			m[`postern_dsn_total{kind="failure"}`] > before[`postern_dsn_total{kind="failure"}`] &&
			m[`postern_queue_depth{next_hop="fabrikam.example"}`] >= 1
	})
	moved := func(series string, by float64) {
		t.Helper()
		if d := after[series] - before[series]; d < by {
			t.Errorf("%s moved by %v, want at least %v (before %v, after %v)", series, d, by, before[series], after[series])
		}
	}
	moved("postern_messages_accepted_total"+sub(""), 2)
	moved("postern_message_bytes_accepted_total"+sub(""), float64(len(local)+len(out)))
	moved(`postern_auth_attempts_total{mechanism="PLAIN",result="failure"}`, 1)
	moved(`postern_auth_attempts_total{mechanism="PLAIN",result="success"}`, 1)
	moved(replySeries(t, failed), 1)
	moved(replySeries(t, ok), 1)
	moved(replySeries(t, accepted), 2)
	moved(`postern_delivery_outcomes_total{outcome="sent"}`, 1)
	moved("postern_store_commit_seconds_count", 2)
	moved("postern_store_commit_batch_size_count", 2)
	if after["postern_store_commit_batch_size_sum"] < after["postern_store_commit_batch_size_count"] {
		t.Errorf("batch size sum below the number of batches")
	}
	if age := after[`postern_queue_oldest_age_seconds{next_hop="fabrikam.example"}`]; age < 0 {
		t.Errorf("queue age %v", age)
	}
	if open := after["postern_smtp_open_connections"+sub("")]; open != 0 {
		t.Errorf("open connections after QUIT: %v", open)
	}
	// No series carries a client address or a mail address.
	for k := range after {
		if strings.Contains(k, "127.0.0.1") || strings.Contains(k, "@") {
			t.Errorf("series with an address in a label: %s", k)
		}
	}

	// Logs: every line is JSON; the accepted message's line names its
	// session, which also names the AUTH line, the message trace's
	// RECEIVE event and the Received field.
	recs := jsonLines(t, in.log.String(), true)
	session := ""
	for _, r := range recs {
		if r["msg"] == "accepted" && r["rcpts"] == float64(3) {
			session, _ = r["session"].(string)
		}
	}
	if !regexp.MustCompile(`^[0-9A-F]{16}$`).MatchString(session) {
		t.Fatalf("accepted line without a session ID (%q):\n%s", session, in.log.String())
	}
	authLine := false
	for _, r := range recs {
		if r["msg"] == "authenticated" && r["session"] == session {
			authLine = true
		}
	}
	if !authLine {
		t.Errorf("no authenticated line for session %s", session)
	}
	id := fieldValue(in.shell("Get-MessageTrace -RecipientAddress later@fabrikam.example | Format-List MessageTraceId"), "MessageTraceId")
	detail := in.shell("Get-MessageTraceDetail -MessageTraceId " + id + " -RecipientAddress later@fabrikam.example | Format-List Event,SessionId,Detail")
	if got := fieldValue(detail, "SessionId"); got != session {
		t.Errorf("trace SessionId %q, log session %q:\n%s", got, session, detail)
	}
	if rcv := in.messageHeader(t, "later@fabrikam.example", "Received"); !strings.Contains(rcv, " id "+session) {
		t.Errorf("Received field without id %s: %q", session, rcv)
	}
}

// TestMetricsOffWithoutToken: with no metrics_token, /metrics does not
// exist (404) for anyone, and the health endpoints still answer.
func TestMetricsOffWithoutToken(t *testing.T) {
	adminAddr := freeAddr(t)
	in := newInstance(t, "--admin", adminAddr)
	in.start()
	for _, h := range []string{"Authorization: Bearer ", "Authorization: Bearer x"} {
		if code, body := in.adminGet(t, adminAddr, "/metrics", h); code != 404 || strings.Contains(body, "postern_") {
			t.Errorf("/metrics with %q and no token configured: %d\n%.200s", h, code, body)
		}
	}
	if code, _ := in.adminGet(t, adminAddr, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := in.adminGet(t, adminAddr, "/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
}
