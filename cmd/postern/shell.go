package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/server"
)

func shell(args []string, loc local, org string, stdin io.Reader, stdout, stderr io.Writer) int {
	wd, _ := os.Getwd()
	switch {
	case len(args) == 2 && args[0] == "-c":
		return runAdmin(server.AdminRequest{Script: args[1], Dir: wd, Organization: org}, loc, stdout, stderr)
	case len(args) == 2 && args[0] == "-f":
		src, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintln(stderr, "postern:", err)
			return 1
		}
		return runAdmin(server.AdminRequest{Script: string(src), Dir: wd, Organization: org}, loc, stdout, stderr)
	case len(args) == 0:
		sess, err := openSession(loc)
		if err != nil {
			fmt.Fprintln(stderr, "postern:", err)
			return 1
		}
		defer sess.Close()
		run := func(line string, out io.Writer) {
			resp, err := sess.Send(server.AdminRequest{Script: line, Dir: wd, Organization: org})
			if err != nil {
				fmt.Fprintln(out, "postern:", err)
				return
			}
			fmt.Fprint(out, resp.Output, resp.Warnings)
			if resp.Error != "" {
				fmt.Fprintln(out, resp.Error)
			}
		}
		if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return interactive(f, stdout, run)
		}
		// Not a terminal (a pipe, a test): one statement per line, echoing
		// the prompt as a terminal would show it.
		in := bufio.NewScanner(stdin)
		fmt.Fprint(stdout, "PS> ")
		for in.Scan() {
			line := strings.TrimSpace(in.Text())
			if line == "exit" || line == "quit" {
				break
			}
			if line != "" {
				run(line, stdout)
			}
			fmt.Fprint(stdout, "PS> ")
		}
		fmt.Fprintln(stdout)
		return 0
	}
	fmt.Fprintln(stderr, "usage: postern shell [-c SCRIPT | -f FILE]")
	return 2
}

// adminSession runs the lines of an interactive shell in one session, so
// that a variable assigned on one line is there on the next.
type adminSession interface {
	Send(server.AdminRequest) (server.AdminResponse, error)
	Close() error
}

// localSession runs requests on the data directory when no server runs.
type localSession struct {
	s     *server.Session
	close func() error
}

func (l localSession) Send(req server.AdminRequest) (server.AdminResponse, error) {
	return l.s.Execute(context.Background(), req), nil
}

func (l localSession) Close() error { return l.close() }

// lockWait is how long a cmdlet waits for a data directory whose lock
// another process holds while its admin socket does not answer: a server
// starting up (it listens a moment later) or another cmdlet finishing.
const lockWait = 5 * time.Second

// openSession talks to the server running on the data directory, or,
// when none answers on the admin socket, opens the directory itself
// under its lock. When the lock is held and the socket still does not
// answer after lockWait, it fails rather than open the database behind
// the holder's back.
func openSession(loc local) (adminSession, error) {
	deadline := time.Now().Add(lockWait)
	for {
		c, err := server.DialAdmin(loc.data)
		if !errors.Is(err, server.ErrNoServer) {
			return c, err
		}
		svc, closeStore, err := server.OpenAdminStore(context.Background(), loc.data, loc.store)
		if err == nil {
			svc.AllowInsecureHTTPLoopback = loc.insecureLoopback
			return localSession{server.NewSession(svc), closeStore}, nil
		}
		if !errors.Is(err, server.ErrDataDirInUse) || time.Now().After(deadline) {
			if errors.Is(err, server.ErrDataDirInUse) {
				return nil, fmt.Errorf("%w, but no server answers on its admin socket (%s): not opening the database behind its back", err, server.SocketPath(loc.data))
			}
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// interactive reads lines with editing, history (kept in
// ~/.postern_history) and Tab completion of cmdlet and parameter names;
// repeated Tabs cycle through the candidates, as in PowerShell.
func interactive(tty *os.File, stdout io.Writer, run func(string, io.Writer)) int {
	fd := int(tty.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		fmt.Fprintln(stdout, "postern:", err)
		return 1
	}
	defer term.Restore(fd, state)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{tty, stdout}, "PS> ")
	if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 { // a new pty has no size yet
		t.SetSize(w, h)
	}
	hist := loadHistory()
	t.History = hist
	t.AutoCompleteCallback = (&completer{reg: admin.Cmdlets(&admin.Service{})}).complete
	for {
		line, err := t.ReadLine()
		if err != nil { // io.EOF: Ctrl-D
			fmt.Fprintln(t)
			return 0
		}
		line = strings.TrimSpace(line)
		if line == "exit" || line == "quit" {
			return 0
		}
		if line != "" {
			run(line, t)
		}
	}
}

// completer completes on Tab. The registry is only read for names and
// parameters; its cmdlets are not run.
type completer struct {
	reg *cmdlet.Registry
	// The word being completed is replaced between prefix and suffix by
	// each candidate in turn while Tab is pressed again on the line the
	// last Tab produced.
	prefix, suffix string
	candidates     []string
	next           int
	lastLine       string
	lastPos        int
}

func (c *completer) complete(line string, pos int, key rune) (string, int, bool) {
	if key != '\t' {
		return "", 0, false
	}
	if c.candidates == nil || line != c.lastLine || pos != c.lastPos {
		start, candidates := c.reg.Complete(line, pos)
		if len(candidates) == 0 {
			c.candidates = nil
			return "", 0, false
		}
		c.prefix, c.suffix, c.candidates, c.next = line[:start], line[pos:], candidates, 0
	}
	word := c.candidates[c.next%len(c.candidates)]
	c.next++
	c.lastLine, c.lastPos = c.prefix+word+c.suffix, len(c.prefix)+len(word)
	return c.lastLine, c.lastPos, true
}

// history is the interactive shell's history, kept in a file so that it
// outlives the session, as PSReadLine's does.
type history struct {
	lines []string // oldest first
	file  *os.File
}

const historyMax = 1000

func loadHistory() *history {
	h := &history{}
	home, err := os.UserHomeDir()
	if err != nil {
		return h
	}
	path := filepath.Join(home, ".postern_history")
	if data, err := os.ReadFile(path); err == nil {
		h.lines = strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(h.lines) > historyMax {
			h.lines = h.lines[len(h.lines)-historyMax:]
		}
	}
	h.file, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	return h
}

func (h *history) Add(line string) {
	if line == "" || (len(h.lines) > 0 && h.lines[len(h.lines)-1] == line) {
		return
	}
	h.lines = append(h.lines, line)
	if h.file != nil && !sensitive(line) {
		fmt.Fprintln(h.file, line)
	}
}

func (h *history) Len() int { return len(h.lines) }

func (h *history) At(i int) string { return h.lines[len(h.lines)-1-i] }

// sensitive lines stay out of the history file, as PSReadLine keeps out
// lines that mention passwords, secrets or keys.
func sensitive(line string) bool {
	l := strings.ToLower(line)
	for _, w := range []string{"password", "asplaintext", "secret", "token", "apikey", "pstn_"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}
