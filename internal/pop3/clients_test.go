package pop3

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testcert"
)

// requireTool finds an external client; missing, the test is skipped
// locally and fails under CI (which must have installed it).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// runTool runs an external client with a generous deadline.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "NO_PROXY=*", "no_proxy=*", "HOME="+t.TempDir())
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return string(out), err
}

// poplibScript drives python3's poplib through a whole session and prints
// what it saw as JSON.
const poplibScript = `
import json, poplib, ssl, sys
host, port, cafile, mode, user, password = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
out = {}
if mode == "pop3s":
    p = poplib.POP3_SSL(host, int(port), context=ctx, timeout=30)
else:
    p = poplib.POP3(host, int(port), timeout=30)
    out["capa_plain"] = sorted(p.capa().keys())
    out["stls"] = p.stls(context=ctx).decode()
out["welcome"] = p.getwelcome().decode()
out["capa"] = sorted(p.capa().keys())
out["user"] = p.user(user).decode()
try:
    out["pass"] = p.pass_(password).decode()
except poplib.error_proto as e:
    out["pass_error"] = e.args[0].decode()
    print(json.dumps(out))
    sys.exit(0)
out["stat"] = list(p.stat())
resp, lines, octets = p.list()
out["list"] = [l.decode() for l in lines]
resp, lines, octets = p.retr(1)
out["retr1"] = [l.decode() for l in lines]
out["retr1_octets"] = octets
resp, lines, octets = p.top(2, 1)
out["top2"] = [l.decode() for l in lines]
resp, lines, octets = p.uidl()
out["uidl"] = [l.decode() for l in lines]
out["dele"] = p.dele(1).decode()
try:
    p.retr(1)
except poplib.error_proto as e:
    out["retr_deleted"] = e.args[0].decode()
out["quit"] = p.quit().decode()
print(json.dumps(out))
`

type poplibResult struct {
	CapaPlain   []string `json:"capa_plain"`
	STLS        string   `json:"stls"`
	Welcome     string   `json:"welcome"`
	Capa        []string `json:"capa"`
	User        string   `json:"user"`
	Pass        string   `json:"pass"`
	PassError   string   `json:"pass_error"`
	Stat        []int    `json:"stat"`
	List        []string `json:"list"`
	Retr1       []string `json:"retr1"`
	Retr1Octets int      `json:"retr1_octets"`
	Top2        []string `json:"top2"`
	UIDL        []string `json:"uidl"`
	Dele        string   `json:"dele"`
	RetrDeleted string   `json:"retr_deleted"`
	Quit        string   `json:"quit"`
}

func runPoplib(t *testing.T, addr, caFile, mode, user, password string) poplibResult {
	t.Helper()
	python := requireTool(t, "python3")
	script := filepath.Join(t.TempDir(), "pop.py")
	if err := os.WriteFile(script, []byte(poplibScript), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(addr, ":")
	out, err := runTool(t, python, script, host, port, caFile, mode, user, password)
	if err != nil {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	var r poplibResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("poplib output %q: %v", out, err)
	}
	return r
}

func TestPythonPoplib(t *testing.T) {
	cert := testcert.New(t, "localhost")
	store := newMemStore()
	box := store.addUser("alice@contoso.com", "pass word", fixtureMessages()...)
	srv := &Server{Auth: store, TLSConfig: cert.ServerConfig()}
	pop3s := startServer(t, srv, true)
	pop3 := startServer(t, srv, false)
	total := len(msg1) + len(msg2) + len(msg3)

	t.Run("pop3s", func(t *testing.T) {
		r := runPoplib(t, pop3s, cert.CAFile, "pop3s", "alice@contoso.com", "pass word")
		want := poplibResult{
			Welcome:     greeting,
			Capa:        []string{"PIPELINING", "RESP-CODES", "SASL", "TOP", "UIDL", "USER"},
			User:        "+OK",
			Pass:        okLoggedOn,
			Stat:        []int{3, total},
			List:        []string{fmt.Sprintf("1 %d", len(msg1)), fmt.Sprintf("2 %d", len(msg2)), fmt.Sprintf("3 %d", len(msg3))},
			Retr1:       []string{"From: a@contoso.com", "Subject: one", "", "Hello", ".dot line"},
			Retr1Octets: len(msg1),
			Top2:        []string{"From: b@contoso.com", "Subject: two", "", "line1"},
			UIDL:        []string{"1 AAA1", "2 AAA2", "3 " + uidlOf("odd uid")},
			Dele:        "+OK",
			RetrDeleted: errDeleted,
			Quit:        okSigningOff + " 1 message deleted.",
		}
		if d := diffJSON(r, want); d != "" {
			t.Fatal(d)
		}
		waitFor(t, "the deletion", func() bool { d, _, _ := box.state(); return len(d) == 1 })
		if d, _, _ := box.state(); !slices.Equal(d, []string{"AAA1"}) {
			t.Fatalf("deleted %q", d)
		}
	})
	t.Run("pop3 with stls", func(t *testing.T) {
		r := runPoplib(t, pop3, cert.CAFile, "stls", "alice@contoso.com", "pass word")
		if !slices.Equal(r.CapaPlain, []string{"PIPELINING", "RESP-CODES", "STLS", "TOP", "UIDL"}) {
			t.Fatalf("CAPA before TLS: %q", r.CapaPlain)
		}
		if r.STLS != okBeginTLS || r.Pass != okLoggedOn || !slices.Contains(r.Capa, "USER") || slices.Contains(r.Capa, "STLS") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		r := runPoplib(t, pop3s, cert.CAFile, "pop3s", "alice@contoso.com", "wrong")
		if r.PassError != "-ERR "+textLogonFail {
			t.Fatalf("%+v", r)
		}
	})
}

func diffJSON(got, want any) string {
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	if string(g) != string(w) {
		return fmt.Sprintf("got  %s\nwant %s", g, w)
	}
	return ""
}

func TestCurl(t *testing.T) {
	curl := requireTool(t, "curl")
	cert := testcert.New(t, "localhost")
	store := newMemStore()
	box := store.addUser("alice@contoso.com", "pw", fixtureMessages()...)
	store.tokens["tok-alice"] = "alice@contoso.com"
	srv := &Server{Auth: store, TLSConfig: cert.ServerConfig()}
	pop3s := startServer(t, srv, true)
	pop3 := startServer(t, srv, false)
	base := []string{"-sS", "--max-time", "30", "--cacert", cert.CAFile}
	list := fmt.Sprintf("1 %d\r\n2 %d\r\n3 %d\r\n", len(msg1), len(msg2), len(msg3))

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"pop3s RETR with a password (SASL PLAIN)", []string{"-u", "alice@contoso.com:pw", "pop3s://" + pop3s + "/1"}, msg1},
		{"pop3s RETR of an LF-only message comes back in CRLF", []string{"-u", "alice@contoso.com:pw", "pop3s://" + pop3s + "/2"}, crlfText(msg2)},
		{"pop3 with --ssl-reqd goes through STLS", []string{"--ssl-reqd", "-u", "alice@contoso.com:pw", "pop3://" + pop3 + "/"}, list},
		{"pop3s OAUTHBEARER", []string{"--oauth2-bearer", "tok-alice", "-u", "alice@contoso.com:", "pop3s://" + pop3s + "/3"}, msg3 + "\r\n"},
		{"pop3s XOAUTH2", []string{"--login-options", "AUTH=XOAUTH2", "--oauth2-bearer", "tok-alice", "-u", "alice@contoso.com:", "pop3s://" + pop3s + "/"}, list},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runTool(t, curl, append(slices.Clone(base), tc.args...)...)
			if err != nil {
				t.Fatalf("curl: %v", err)
			}
			if out != tc.want {
				t.Fatalf("got  %q\nwant %q", out, tc.want)
			}
		})
	}
	t.Run("pop3 without TLS cannot sign in", func(t *testing.T) {
		out, err := runTool(t, curl, append(slices.Clone(base), "-u", "alice@contoso.com:pw", "pop3://"+pop3+"/")...)
		if err == nil {
			t.Fatalf("curl signed in over plain text: %q", out)
		}
	})
	t.Run("a wrong password", func(t *testing.T) {
		out, err := runTool(t, curl, append(slices.Clone(base), "-u", "alice@contoso.com:wrong", "pop3s://"+pop3s+"/")...)
		if err == nil || !strings.Contains(err.Error(), "Login denied") {
			t.Fatalf("curl: %q, %v", out, err)
		}
	})
	if d, _, _ := box.state(); len(d) != 0 {
		t.Fatalf("curl deleted %q", d)
	}
}
