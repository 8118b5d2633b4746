package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without a socket: %v %v", sent, err)
	}
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), "@postern-sdnotify-test"} {
		addr := name
		if addr[0] == '@' {
			addr = "\x00" + addr[1:]
		}
		l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("NOTIFY_SOCKET", name)
		if sent, err := Notify("READY=1\nSTATUS=listening"); !sent || err != nil {
			t.Fatalf("%s: %v %v", name, sent, err)
		}
		buf := make([]byte, 100)
		l.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := l.Read(buf)
		if err != nil || string(buf[:n]) != "READY=1\nSTATUS=listening" {
			t.Errorf("%s: got %q, %v", name, buf[:n], err)
		}
		l.Close()
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if _, err := Notify("READY=1"); err == nil {
		t.Error("no error for a missing socket")
	}
}

// TestReloading: RELOADING=1 carries MONOTONIC_USEC, the monotonic clock
// in microseconds, which moves forward between two reloads.
func TestReloading(t *testing.T) {
	usec := func() uint64 {
		s := Reloading()
		if !strings.HasPrefix(s, "RELOADING=1\n") {
			t.Fatalf("state %q", s)
		}
		_, v, ok := strings.Cut(s, "\nMONOTONIC_USEC=")
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil || n == 0 {
			t.Fatalf("state %q: no MONOTONIC_USEC", s)
		}
		return n
	}
	a := usec()
	time.Sleep(2 * time.Millisecond)
	if b := usec(); b <= a {
		t.Fatalf("MONOTONIC_USEC did not advance: %d then %d", a, b)
	}
}
