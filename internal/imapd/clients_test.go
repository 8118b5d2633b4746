package imapd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postern.dev/postern/internal/store"
)

// pythonIMAP drives the server with python3's imaplib over implicit TLS:
// LOGIN, LIST, SELECT, UID FETCH of headers, STORE \Seen, COPY, MOVE,
// EXPUNGE, APPEND. It prints one line per step; the Go side checks them.
const pythonIMAP = `
import imaplib, os, ssl, sys
ctx = ssl.create_default_context(cafile=os.environ["CAFILE"])
host, port = os.environ["ADDR"].rsplit(":", 1)
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
def out(*a): print(*a, flush=True)
try:
    m.login("sean@contoso.com", "wrong")
except imaplib.IMAP4.error as e:
    out("badlogin", e)
typ, _ = m.login("sean@contoso.com", "secret"); out("login", typ)
typ, lst = m.list(); out("list", typ, b"|".join(lst).decode())
typ, n = m.select("INBOX"); out("select", typ, n[0].decode())
typ, d = m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
subjects = [x[1].decode().strip() for x in d if isinstance(x, tuple)]
out("fetch", typ, "|".join(subjects))
typ, d = m.uid("STORE", "1", "+FLAGS", r"(\Seen)"); out("store", typ, d[0].decode())
typ, d = m.uid("COPY", "1", "Archive"); out("copy", typ)
typ, d = m.uid("MOVE", "2", '"Deleted Items"'); out("move", typ)
typ, d = m.uid("STORE", "1", "+FLAGS.SILENT", r"(\Deleted)")
typ, d = m.expunge(); out("expunge", typ, d)
typ, d = m.append("Drafts", r"(\Draft)", None, b"Subject: from python\r\n\r\nhi\r\n"); out("append", typ, d[0].decode())
typ, n = m.select('"Deleted Items"'); out("deleted", typ, n[0].decode())
m.logout()
`

func TestPythonImaplib(t *testing.T) {
	py := needTool(t, "python3")
	h := newHarness(t)
	h.deliver(t, h.sean.ID, store.Inbox, "first", "one")
	h.deliver(t, h.sean.ID, store.Inbox, "second", "two")
	cmd := exec.Command(py, "-c", pythonIMAP)
	cmd.Env = append(os.Environ(), "ADDR="+h.tlsAddr, "CAFILE="+h.certFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 imaplib: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		got[k] = v
	}
	for k, want := range map[string]string{
		"badlogin": "b'[AUTHENTICATIONFAILED] LOGIN failed.'",
		"login":    "OK",
		"select":   "OK 2",
		"fetch":    "OK Subject: first|Subject: second",
		"copy":     "OK",
		"move":     "OK",
		"expunge":  "OK [b'2', b'1']", // MOVE's EXPUNGE of 2, then EXPUNGE's of 1
		"deleted":  "OK 1",
	} {
		if got[k] != want {
			t.Errorf("%s: %q, want %q\n%s", k, got[k], want, out)
		}
	}
	if !strings.Contains(got["store"], `\Seen`) {
		t.Errorf("store: %q", got["store"])
	}
	if !strings.Contains(got["list"], `(\HasNoChildren \Sent) "/" "Sent Items"`) || strings.Contains(got["list"], "Outbox") {
		t.Errorf("list: %q", got["list"])
	}
	if !strings.Contains(got["append"], "APPENDUID") {
		t.Errorf("append: %q", got["append"])
	}
}

// TestCurl: curl over imaps:// with the test CA lists folders, fetches a
// message by UID and appends one.
func TestCurl(t *testing.T) {
	curl := needTool(t, "curl")
	h := newHarness(t)
	h.deliver(t, h.sean.ID, store.Inbox, "for curl", "curl body")
	base := "imaps://" + h.tlsAddr
	run := func(args ...string) string {
		t.Helper()
		all := append([]string{"-sS", "--max-time", "60", "--cacert", h.certFile, "--user", "sean@contoso.com:secret"}, args...)
		out, err := exec.Command(curl, all...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run(base + "/"); !strings.Contains(out, `"Sent Items"`) || !strings.Contains(out, "INBOX") {
		t.Errorf("curl LIST: %q", out)
	}
	if out := run(base + "/INBOX;UID=1"); !strings.Contains(out, "Subject: for curl") || !strings.Contains(out, "curl body") {
		t.Errorf("curl FETCH: %q", out)
	}
	msg := filepath.Join(t.TempDir(), "msg.eml")
	must(t, os.WriteFile(msg, []byte("Subject: via curl\r\n\r\nuploaded\r\n"), 0o600))
	run("-T", msg, base+"/Drafts")
	f, err := h.st.MailFolderByName(t.Context(), h.sean.ID, "Drafts")
	must(t, err)
	if f.Messages != 1 {
		t.Errorf("Drafts has %d messages after curl's APPEND", f.Messages)
	}
	if out := run(base+"/INBOX", "-X", "SEARCH SUBJECT curl"); !strings.Contains(out, "SEARCH 1") {
		t.Errorf("curl SEARCH: %q", out)
	}
}
