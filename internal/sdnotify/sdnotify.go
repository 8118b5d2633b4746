// Package sdnotify tells systemd about the service's state: the sd_notify
// protocol (sd_notify(3)), a datagram of "KEY=value" lines to the Unix
// socket named by $NOTIFY_SOCKET. A unit with Type=notify is "started"
// only once READY=1 arrives, so units ordered after Postern, and
// `systemctl start` itself, wait until the listeners accept connections.
// It is a few lines, not a dependency (go-systemd pulls in D-Bus).
package sdnotify

import (
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Notify sends state (e.g. "READY=1", "STOPPING=1") to the service
// manager. Without $NOTIFY_SOCKET (not run by systemd, or not Type=notify)
// it does nothing and reports false.
func Notify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	// A name starting with "@" is in the abstract namespace (Linux).
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}

// Reloading is the state that announces a configuration reload:
// RELOADING=1 with MONOTONIC_USEC, the CLOCK_MONOTONIC time in
// microseconds, which systemd requires with it to tell this reload from an
// earlier one (sd_notify(3); systemd.service(5), Type=notify-reload). Send
// READY=1 when the reload is over.
func Reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1\nSTATUS=Reloading the configuration"
	}
	usec := uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
	return "RELOADING=1\nSTATUS=Reloading the configuration\nMONOTONIC_USEC=" + strconv.FormatUint(usec, 10)
}
