// Package testpg runs a throwaway PostgreSQL cluster for tests, from the
// distribution's server binaries (Debian's postgresql package:
// /usr/lib/postgresql/<version>/bin/initdb and postgres).
//
// One cluster serves a whole test binary: the first New starts it (initdb
// into a temporary directory, the server on a random loopback port with
// its Unix socket in that directory, fsync on), and Main or Stop, called
// from the package's TestMain, stops it and removes the directory. Every
// New creates a fresh database, dropped when its test ends, so tests never
// see each other's rows.
//
// initdb and postgres refuse to run as root. Tests often do (CI containers),
// so when the process is root the cluster runs as the unprivileged user
// "nobody": the temporary directory is created under os.TempDir, given to
// that user, and both binaries are started with its credentials (no sudo,
// runuser or su needed). As any other user, the cluster runs as that user.
//
// When the binaries are missing, New skips the test with a message saying
// how to install them; under CI=true it fails instead, so that a CI machine
// without PostgreSQL never passes by skipping.
package testpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startTimeout bounds initdb plus the server's start; generous, for a
// loaded 2-core machine.
const startTimeout = 2 * time.Minute

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir  string // temporary directory: data/, the socket, the log
	port int
	bin  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	exit chan struct{} // closed when the server process has ended
	n    atomic.Int64  // databases created
}

var (
	mu      sync.Mutex
	shared  *Cluster
	failure error // why the cluster could not start; reported to every test
)

// Main runs the tests and stops the cluster (if any test started one); call
// it from TestMain: func TestMain(m *testing.M) { testpg.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the shared cluster and removes its directory.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.stop()
		shared = nil
	}
}

// New returns the URL of a new, empty database on the shared cluster,
// starting the cluster on first use; the database is dropped when t ends.
func New(t testing.TB) string {
	t.Helper()
	c := cluster(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testpg: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends sessions a test left open (a store not closed).
		if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testpg: dropping database %s: %v", name, err)
		}
	})
	return c.URL(name)
}

// NewCluster starts a cluster of the test's own, stopped and removed when
// t ends: for a test that stops and starts the server (an outage), which
// must not take the shared cluster from the tests running beside it.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	cluster(t) // skips, or fails under CI=true, when PostgreSQL is missing
	c, err := start()
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(c.stop)
	return c
}

// NewDatabase creates an empty database on c and returns its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testpg: creating database %s: %v", name, err)
	}
	return c.URL(name)
}

// Stop stops the server as an outage would (immediate shutdown: every
// connection cut, no checkpoint), keeping its data for Start.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.exit:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.exit
	}
}

// Start starts a stopped server again, on the same port, so that the URLs
// given out stay valid (crash recovery replays the WAL: every committed
// transaction is there).
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.exit = make(chan struct{})
	if err := c.startServer(c.bin, c.cred); err != nil {
		t.Fatalf("testpg: restarting the cluster: %v", err)
	}
}

// URL is the connection URL of a database on the cluster (over TCP on
// loopback, as a node of a real deployment connects).
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, database)
}

// Port is the cluster's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Shared returns the running cluster, starting it if needed (for tests
// that stop and start the server, or connect to it themselves).
func Shared(t testing.TB) *Cluster {
	t.Helper()
	return cluster(t)
}

func cluster(t testing.TB) *Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if shared == nil && failure == nil {
		shared, failure = start()
	}
	if failure != nil {
		var missing *missingError
		if errors.As(failure, &missing) && os.Getenv("CI") != "true" {
			t.Skipf("testpg: %v", failure)
		}
		t.Fatalf("testpg: %v", failure)
	}
	return shared
}

type missingError struct{ what string }

func (e *missingError) Error() string {
	return e.what + " not found; install PostgreSQL's server (apt-get install -y postgresql) to run the PostgreSQL tests"
}

// binDir finds the server binaries: the newest /usr/lib/postgresql/*/bin
// that has both initdb and postgres, else a directory on PATH with both.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if p, err := exec.LookPath("postgres"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", &missingError{"initdb and postgres (/usr/lib/postgresql/*/bin)"}
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// credential is who the cluster runs as: nobody when this process is root
// (initdb: "cannot be run as root"), nil (ourselves) otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root, and no user nobody to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parents are private to root, and the server
	// (as nobody) must reach this directory.
	dir, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	c := &Cluster{dir: dir, bin: bin, cred: cred, exit: make(chan struct{})}
	// --no-sync only makes initdb's own files skip fsync (a throwaway
	// cluster); the server below runs with fsync on, so that commits cost
	// what they cost in production.
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(string(out), 5))
	}
	// The port is picked free, then given to the server: another process
	// may take it in between, so a failed start is tried again on another.
	for attempt := 0; ; attempt++ {
		err := c.startServer(bin, cred)
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
		c.exit, c.port = make(chan struct{}), 0
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) startServer(bin string, cred *syscall.Credential) error {
	port := c.port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return err
		}
	}
	c.port = port
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(c.dir, "data"),
		"-p", strconv.Itoa(port), "-k", c.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=200",
		"-c", "shared_buffers=32MB", "-c", "log_min_messages=warning")
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary killed by a timeout takes its cluster with
	// it (Go sets it after switching credentials, so it holds for nobody).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exit)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-c.exit:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited at start: %s", lastLines(string(log), 5))
		case <-ctx.Done():
			c.cmd.Process.Kill()
			<-c.exit
			return fmt.Errorf("postgres did not accept connections within %v: %v", startTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exec runs one statement on the cluster's maintenance database.
func (c *Cluster) exec(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

// stop shuts the server down (fast shutdown: SIGINT), unless it is
// stopped already, and removes its directory.
func (c *Cluster) stop() {
	select {
	case <-c.exit:
	default:
		c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exit:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.exit
		}
	}
	os.RemoveAll(c.dir)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
