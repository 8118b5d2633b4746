// Package server assembles a running Postern from its parts: the store, the
// directory snapshot, the admin service, the limits, the SMTP listeners, the
// admin socket and the background workers.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"postern.dev/postern/internal/acmecert"
	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/config"
	"postern.dev/postern/internal/connlog"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/imapd"
	"postern.dev/postern/internal/issuer"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/memlimit"
	"postern.dev/postern/internal/metrics"
	"postern.dev/postern/internal/oauth"
	"postern.dev/postern/internal/pop3"
	"postern.dev/postern/internal/protolog"
	"postern.dev/postern/internal/queue"
	"postern.dev/postern/internal/restapi"
	"postern.dev/postern/internal/secret"
	"postern.dev/postern/internal/senderauth"
	"postern.dev/postern/internal/signin"
	"postern.dev/postern/internal/smtpclient"
	"postern.dev/postern/internal/smtpd"
	"postern.dev/postern/internal/smtpserver"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/postgres"
	"postern.dev/postern/internal/store/sqlite"
	"postern.dev/postern/internal/transport"
	"postern.dev/postern/internal/webadmin"
)

// Server is a running Postern.
type Server struct {
	// cfg is the configuration the server started with; keys a reload can
	// change are read from live instead.
	cfg config.Config
	// live is the configuration in force: cfg with what reloads applied
	// (Reload). Immutable once stored; read it with live.Load().
	live atomic.Pointer[config.Config]
	// reloadMu serialises reloads; closed (under it) ends them.
	reloadMu sync.Mutex
	closed   bool
	// Logging, when set, changes the log format and level on reload.
	Logging LogSwitch
	log     *slog.Logger
	// cert is the serving certificate, reloadable; expiryWarned is when
	// its coming expiry was last logged (once a day at most).
	cert         *certificate
	certReload   chan struct{}
	expiryWarned time.Time
	// acme, when [acme] is enabled, serves the CA's certificates (cert is
	// then the self-signed fallback until the first is issued); http01 is
	// its HTTP-01 challenge listener, if any.
	acme   *acmecert.Manager
	http01 *http.Server
	store  store.Server
	Admin  *admin.Service
	smtp   *smtpd.Server

	queue   *queue.Queue
	connLog *connlog.Logger
	// authn is the one sign-in service of SMTP AUTH, IMAP4 and POP3: they
	// share its throttle, gate, lockout and sign-in report; a reload
	// retunes its gate and lockout.
	authn      *signin.Authenticator
	recipients *limits.RecipientWindow
	pacer      *limits.Pacer
	// sending counts the per-mailbox sending limits: recipients and pacer
	// on SQLite, the database's counters on a store nodes share.
	sending limits.Sending
	// slots counts each mailbox's concurrent SMTP AUTH connections,
	// throttle each client address's failed sign-ins and lockout each
	// account's: in memory on SQLite, in the database on a store nodes
	// share (then leasedSlots renews its leases, and sweepShared keeps
	// the tables small).
	slots       limits.ConnectionSlots
	leasedSlots limits.LeasedSlots
	throttle    auth.AddressThrottle
	lockout     auth.AccountLockout
	sweepShared func(ctx context.Context, now time.Time) error

	// tlsCfg and keys are what the admin listener needs when a reload
	// turns it on.
	tlsCfg *tls.Config
	keys   *issuer.Keys
	// resolver, clientCAs and rootCAs are in use now; only start and
	// Reload (under reloadMu) set them.
	resolver           *net.Resolver
	clientCAs, rootCAs *x509.CertPool

	// lnMu guards listeners, adminLn and issuerBase, which reloads change.
	lnMu      sync.Mutex
	listeners map[smtpd.Role]net.Listener
	// accessLns are the IMAP4 and POP3 listeners, by configuration key.
	accessLns map[string]net.Listener
	imap      *imapd.Server
	pop3      *pop3.Server
	adminLn   net.Listener
	// issuerBase is the built-in issuer's URL, fixed when the admin
	// listener first starts.
	issuerBase string
	adminSock  net.Listener
	https      *http.Server
	// web is the admin center on the admin listener; nil while it is off.
	web  *webadmin.Handler
	wg   sync.WaitGroup
	stop chan struct{}
	// ready is set once every listener is up and cleared when Close
	// begins (/readyz).
	ready atomic.Bool

	// adminSockFile is the socket this server created: Close removes it
	// and nothing else at that path.
	adminSockFile os.FileInfo
	// lock is the data directory's lock, held from Start to Close.
	lock *dirLock
}

// OpenAdmin opens the data directory for administration only (no
// listeners): what `postern <Cmdlet>` uses when no server runs. It takes
// the data directory's lock first and fails with ErrDataDirInUse when a
// server (or another cmdlet) holds it, so that no cmdlet writes to the
// database behind a running server's back; the returned close function
// releases it. A missing or mistyped directory is ErrNoDataDir: only
// serve creates one.
func OpenAdmin(ctx context.Context, dataDir string) (*admin.Service, func() error, error) {
	return OpenAdminStore(ctx, dataDir, "")
}

// OpenAdminStore is OpenAdmin on the store at storeURL (a PostgreSQL URL,
// [store] url); "" is the SQLite database in dataDir. The data directory
// is still this node's: its lock, and its secret key.
func OpenAdminStore(ctx context.Context, dataDir, storeURL string) (*admin.Service, func() error, error) {
	if _, err := prepareDataDirFor(dataDir, false, storeURL == ""); err != nil {
		return nil, nil, err
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, dataDir, storeURL)
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	closeAll := func() error {
		err := st.Close()
		lock.Unlock()
		return err
	}
	box, err := secret.LoadOrCreate(filepath.Join(dataDir, secretKeyName))
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	svc := &admin.Service{Store: st, Dir: &directory.Current{}, HashPassword: auth.HashPassword, Secrets: box}
	// The queue is not run here: it only carries out Retry-Queue and
	// Remove-QueueMessage; the server delivers when it next starts.
	svc.Queue = queue.New(queue.Config{Store: st, Directory: svc.Dir, Secrets: box, Hostname: "localhost"})
	svc.IssuerKeys = &issuer.Keys{Store: st, Secrets: box}
	if err := svc.Open(ctx); err != nil {
		closeAll()
		return nil, nil, err
	}
	return svc, closeAll, nil
}

// Start opens the data directory and starts every configured listener.
//
// The data directory's lock is taken before anything else is opened: a
// second server on a directory a running one holds fails here, before any
// listener, and leaves the running server's admin socket alone.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	created, err := prepareDataDir(cfg.Data, true)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created the data directory", "data", cfg.Data)
	}
	lock, err := lockDataDir(cfg.Data)
	if errors.Is(err, ErrDataDirInUse) {
		return nil, fmt.Errorf("%w: a server is already running on it (or a cmdlet is at work); stop it first", err)
	}
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.Data, cfg.Store.URL)
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: log, store: st, lock: lock, stop: make(chan struct{}), certReload: make(chan struct{}, 1), listeners: make(map[smtpd.Role]net.Listener), accessLns: map[string]net.Listener{},
		recipients: limits.NewRecipientWindow(24*time.Hour, 288),
		pacer:      limits.NewPacer(directory.MessageRateLimit, time.Minute),
	}
	s.Admin = &admin.Service{Store: st, Dir: &directory.Current{}, HashPassword: auth.HashPassword, Hostname: cfg.Hostname,
		AllowInsecureHTTPLoopback: cfg.AllowInsecureHTTPLoopback}
	s.Admin.Listeners = s.listenerAddrs
	s.live.Store(&cfg)
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	metrics.ConfigReloadSuccess.SetToCurrentTime()
	return s, nil
}

// openStore opens the store: the PostgreSQL database at url, or with url
// empty the SQLite database in the data directory.
func openStore(ctx context.Context, dataDir, url string) (store.Server, error) {
	if url == "" {
		return sqlite.Open(dataDir)
	}
	if err := config.CheckStoreURL(url); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return postgres.Open(ctx, url)
}

func (s *Server) start(ctx context.Context) error {
	keyFile := s.cfg.SecretKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(s.cfg.Data, secretKeyName)
	}
	box, err := secret.LoadOrCreate(keyFile)
	if err != nil {
		return err
	}
	s.Admin.Secrets = box
	protoLog, err := protolog.Open(filepath.Join(s.cfg.Data, "protolog"), protolog.DefaultLimits)
	if err != nil {
		return fmt.Errorf("protocol log: %w", err)
	}
	s.Admin.ProtocolLog = protoLog
	if err := s.Admin.Open(ctx); err != nil {
		return err
	}
	keys := &issuer.Keys{Store: s.store, Secrets: box}
	if err := keys.Load(ctx); err != nil {
		return fmt.Errorf("built-in OAuth issuer: %w", err)
	}
	s.Admin.IssuerKeys = keys
	roots, err := rootCAs(s.cfg.Delivery.RootCAFile)
	if err != nil {
		return fmt.Errorf("delivery root_ca_file: %w", err)
	}
	d := s.cfg.Delivery
	node, err := queueNode(s.cfg.Data, s.cfg.Hostname, s.cfg.Store.URL != "")
	if err != nil {
		return err
	}
	urls := oauth.URLPolicy{AllowLoopbackHTTP: s.cfg.AllowInsecureHTTPLoopback}
	s.resolver, s.rootCAs = newResolver(s.cfg.Resolver), roots
	s.queue = queue.New(queue.Config{
		Store: s.store, Directory: s.Admin.Dir, Secrets: box, Resolver: s.resolver,
		Hostname: s.cfg.Hostname, Node: node, Log: s.log, MXPort: d.MXPort, Workers: d.Workers, PerDestination: d.PerDestination,
		Schedule: queue.Schedule{Min: d.RetryMin.Duration, Max: d.RetryMax.Duration, For: d.RetryFor.Duration, DelayNotice: d.DelayNotice.Duration},
		Timeouts: smtpclient.Timeouts{Greeting: d.CommandTimeout.Duration, Command: d.CommandTimeout.Duration,
			DataLine: d.CommandTimeout.Duration, DataEnd: 2 * d.CommandTimeout.Duration},
		RootCAs: roots,
		// Token endpoints: https only (on every redirect hop too), as
		// the admin service checked when they were given.
		HTTPClient: urls.Client(30 * time.Second),
	})
	s.Admin.Queue = s.queue
	if shared, ok := s.store.(sharedLimits); ok {
		// Several nodes: every node counts in the database, so that a
		// mailbox's limits hold whichever node its messages reach, and a
		// client address's failed sign-ins whichever node it tries.
		s.sending = shared.Sending(directory.MessageRateLimit)
		if s.leasedSlots, err = shared.ConnectionSlots(ctx, node, directory.ConcurrentConnections, limits.SlotLease); err != nil {
			return err
		}
		s.slots = s.leasedSlots
		s.throttle = shared.AddressThrottle(auth.DefaultThrottleConfig)
		// The digests of wrong passwords are keyed from the secret key
		// every node shares, so that all nodes recognise a repeat.
		s.lockout = shared.AccountLockout(lockoutConfig(s.cfg.Auth), box.Derive("smart lockout"))
		s.sweepShared = func(ctx context.Context, now time.Time) error {
			return errors.Join(shared.SweepThrottle(ctx, auth.DefaultThrottleConfig, now),
				shared.SweepLockout(ctx, s.lockout.Config(), now))
		}
	} else {
		s.slots = limits.NewSlots(directory.ConcurrentConnections)
		s.throttle = auth.NewThrottle(auth.DefaultThrottleConfig)
		s.lockout = auth.NewLockout(lockoutConfig(s.cfg.Auth))
		s.sending = limits.Memory{Recipients: s.recipients, Pacer: s.pacer}
		// The rolling 24-hour recipient counts survive restarts: rebuild them
		// from the messages of the last day (one query at start, never per message).
		now := time.Now()
		hist, err := s.store.RecipientHistory(ctx, now.Add(-24*time.Hour))
		if err != nil {
			return err
		}
		for _, h := range hist {
			s.recipients.Add(h.Mailbox, limits.Count{Internal: h.Recipients - h.External, External: h.External}, h.At)
		}
	}

	if s.cfg.ACME.Enabled {
		if err := s.cfg.CheckACME(); err != nil {
			return err
		}
	}
	if err := s.cfg.CheckOIDC(); err != nil {
		return err
	}
	s.cert, err = loadCertificate(s.cfg.TLSCert, s.cfg.TLSKey, s.cfg.Data, s.cfg.Hostname)
	s.keys = keys
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	tlsCfg := s.cert.config()
	if s.cfg.ACME.Enabled {
		if s.acme, err = s.newACME(); err != nil {
			return err
		}
		// Every listener, implicit TLS and STARTTLS alike, serves the
		// same certificates through this one configuration.
		s.acme.Configure(tlsCfg)
	}
	s.checkExpiry(time.Now())
	s.tlsCfg = tlsCfg
	cas, err := clientCAs(s.cfg.TLSClientCA)
	if err != nil {
		return fmt.Errorf("tls_client_ca: %w", err)
	}
	s.clientCAs = cas
	authn := &signin.Authenticator{
		Directory: s.Admin.Dir,
		Cache:     auth.NewLoginCache(5*time.Minute, 100000),
		Throttle:  s.throttle,
		Gate:      auth.NewGate(gateConfig(s.cfg.Auth)),
		Lockout:   s.lockout,
		Now:       time.Now,
		Sleep:     time.Sleep,
		Verifier:  newVerifier(urls),
		Log:       s.log,
		LocalKeys: keys.JWKS,
		// Sign-ins are counted in memory and written every minute, and
		// before Get-MailboxSignInReport reads them.
		SignIns: signin.NewRecorder(s.store, s.log, 0),
	}
	s.authn = authn
	// After a burst of verifications, give their memory back (package
	// memlimit): a second after the gate empties, at most every 10 s.
	release := memlimit.NewReleaser(time.Second, 10*time.Second)
	release.Busy = func() bool { running, waiting := authn.Gate.Load(); return running+waiting > 0 }
	authn.Gate.OnDrained(release.Soon)
	s.applyMemoryLimit(s.cfg.MemoryLimit)
	// A small live heap may grow to 64 MiB between collections, instead
	// of collecting every few MiB (package memlimit, TuneGC).
	if memlimit.TuneGC() {
		s.log.Debug("collector paced for a small heap", "heap_floor_bytes", memlimit.HeapFloor)
	}
	s.Admin.SignIns = authn.SignIns
	s.connLog = connlog.New(s.store, s.log)
	// Before any message is accepted: uploads a crash interrupted, and body
	// files no message refers to (README "Durability").
	spool, err := transport.CleanSpool(filepath.Join(s.cfg.Data, "spool"))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if n, err := s.store.SweepBodies(ctx); err != nil {
		return fmt.Errorf("body files: %w", err)
	} else if n > 0 {
		s.log.Info("removed orphan body files", "files", n)
	}
	sub := &transport.Submitter{Store: s.store, Hostname: s.cfg.Hostname, Limits: s.sending, Log: s.log, Now: time.Now,
		Queued: s.queue.Nudge, SpoolDir: spool, Restrict: s.Admin.RestrictSender}
	s.smtp = smtpd.New(smtpd.Config{
		Hostname: s.cfg.Hostname, TLS: tlsCfg, ReadTimeout: s.cfg.IdleTimeout.Duration, WriteTimeout: time.Minute, ClientCAs: cas,
		SenderAuth: &senderauth.Checker{Resolver: s.resolver, Hostname: s.cfg.Hostname},
		ConnLog:    s.connLog, ProtocolLog: protoLog, Throttle: throttleLimits(s.cfg.Throttle),
		Limits: smtpserver.Limits{MaxConnections: s.fitToDescriptors(s.cfg.MaxConnections, s.cfg.Admin),
			MaxConnectionsPerIP: s.cfg.MaxConnectionsPerIP, ConnectionRatePerIP: s.cfg.ConnectionRatePerIP},
	}, s.Admin.Dir, authn, sub, s.slots, s.log)

	for _, l := range []struct {
		addr string
		role smtpd.Role
	}{{s.cfg.Submission, smtpd.Submission}, {s.cfg.Submissions, smtpd.Submissions}, {s.cfg.MX, smtpd.MX},
		{s.cfg.SubmissionLegacy, smtpd.SubmissionLegacy}} {
		if !on(l.addr) {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", l.role, err)
		}
		s.serveSMTP(ln, l.role)
	}
	if err := s.startMailAccess(); err != nil {
		return err
	}
	if err := s.listenAdminSocket(); err != nil {
		return err
	}
	if on(s.cfg.Admin) {
		ln, err := net.Listen("tcp", s.cfg.Admin)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		if err := s.serveHTTPS(ctx, ln); err != nil {
			ln.Close()
			return err
		}
	}
	if err := s.listenHTTP01(); err != nil {
		return err
	}
	s.setMetricSources(tlsCfg, authn.Gate)
	if s.acme != nil {
		s.warnACMEReachability()
		s.runUntilStop(s.acme.Run)
	}
	if w, ok := s.store.(store.DirectoryWatcher); ok {
		s.watchDirectory(w)
	}
	if r, ok := s.store.(store.MailboxChangeRelay); ok {
		// IMAP IDLE sessions on this node hear of other nodes' deliveries.
		s.runUntilStop(r.RelayMailboxChanges)
	}
	s.wg.Add(1)
	go s.background()
	s.runUntilStop(func(ctx context.Context) { authn.SignIns.Run(ctx, time.Minute) })
	s.runUntilStop(s.connLog.Run)
	s.runUntilStop(s.queue.Run)
	if s.leasedSlots != nil {
		s.wg.Add(1)
		go s.renewSlots()
	}
	s.ready.Store(true)
	return nil
}

// runUntilStop runs fn in a goroutine of the server's with a context that
// ends when the server stops; Close waits for it to return.
func (s *Server) runUntilStop(fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		fn(ctx)
	}()
}

// sharedLimits is what a store several nodes share provides so that the
// per-mailbox and per-address limits count in it (issue 14).
type sharedLimits interface {
	Sending(rate int) limits.Sending
	ConnectionSlots(ctx context.Context, node string, max int, lease time.Duration) (limits.LeasedSlots, error)
	AddressThrottle(cfg auth.ThrottleConfig) auth.AddressThrottle
	SweepThrottle(ctx context.Context, cfg auth.ThrottleConfig, now time.Time) error
	AccountLockout(cfg auth.LockoutConfig, key [32]byte) auth.AccountLockout
	SweepLockout(ctx context.Context, cfg auth.LockoutConfig, now time.Time) error
}

// renewSlots is the heartbeat of the connection slots this node holds in
// the shared store: every third of the lease, so that one or two missed
// renewals (a slow database) do not yet let them lapse.
func (s *Server) renewSlots() {
	defer s.wg.Done()
	every := limits.SlotLease / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			if err := s.leasedSlots.Renew(ctx); err != nil {
				s.log.Error("renewing the connection slots' leases", "err", err)
			}
			cancel()
		}
	}
}

// on reports whether a listener address is set (not empty, not "off").
func on(addr string) bool { return addr != "" && addr != config.Off }

// serveSMTP serves a role on ln, which becomes the role's listener.
func (s *Server) serveSMTP(ln net.Listener, role smtpd.Role) {
	s.lnMu.Lock()
	s.listeners[role] = ln
	s.lnMu.Unlock()
	s.log.Info("listening", "role", role.String(), "addr", ln.Addr().String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.smtp.Serve(ln, role); err != nil {
			s.log.Error("listener stopped", "role", role.String(), "err", err)
		}
	}()
}

// listenerAddrs are the bound addresses of the SMTP, IMAP4 and POP3
// listeners and their TLS roles (which speak TLS first), for
// Test-NetConnection.
func (s *Server) listenerAddrs() []admin.Listener {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	var out []admin.Listener
	for role, l := range s.listeners {
		out = append(out, admin.Listener{Addr: l.Addr(), ImplicitTLS: role == smtpd.Submissions})
	}
	for key, l := range s.accessLns {
		out = append(out, admin.Listener{Addr: l.Addr(), ImplicitTLS: key == "imaps" || key == "pop3s"})
	}
	return out
}

// Addr returns the bound address of the listener for a role, or nil.
func (s *Server) Addr(role smtpd.Role) net.Addr {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if l := s.listeners[role]; l != nil {
		return l.Addr()
	}
	return nil
}

// background delivers paced local messages when their time comes, keeps
// the in-memory limit state small, and applies retention: message bodies
// go as soon as nothing refers to them (the store does that in the
// transaction that drops the last reference); trace data and the messages'
// metadata go after the trace retention, in small batches (PruneTrace),
// and the space freed goes back to the file system (ReclaimSpace).
func (s *Server) background() {
	defer s.wg.Done()
	deliver := time.NewTicker(time.Second)
	sweep := time.NewTicker(5 * time.Minute)
	certCheck := time.NewTicker(time.Minute)
	defer deliver.Stop()
	defer sweep.Stop()
	defer certCheck.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-deliver.C:
			if n, err := s.store.DeliverDue(context.Background(), now); err != nil {
				s.log.Error("paced delivery", "err", err)
			} else if n > 0 {
				s.log.Info("paced delivery", "delivered", n)
			}
			// Paced outbound items fall due without a nudge; the queue's
			// own poll finds them.
		case <-s.certReload:
			s.reloadCertificate()
			if s.acme != nil {
				s.acme.Nudge() // and a name still without a certificate is tried now
			}
		case now := <-certCheck.C:
			// certbot and internal CAs replace the files in place: a change
			// is picked up within a minute, without a signal.
			if s.cert.changed() {
				s.reloadCertificate()
			} else {
				s.checkExpiry(now)
			}
		case now := <-sweep.C:
			if err := s.sending.Sweep(context.Background(), now); err != nil {
				s.log.Error("sweeping the sending counters", "err", err)
			}
			if s.sweepShared != nil {
				if err := s.sweepShared(context.Background(), now); err != nil {
					s.log.Error("sweeping the failed sign-ins", "err", err)
				}
			}
			s.smtp.Sweep(now)
			if r := s.live.Load().TraceRetention.Duration; r > 0 {
				if n, err := s.store.PruneTrace(context.Background(), now.Add(-r)); err != nil {
					s.log.Error("trace retention", "err", err)
				} else if n > 0 {
					s.log.Info("trace retention", "deleted", n)
				}
			}
			// Expired admin center sessions, links and sign-ins are never
			// read (GetEphemeral checks the expiry); this gives back
			// their rows.
			if _, err := s.store.SweepEphemeral(context.Background(), now); err != nil {
				s.log.Error("sweeping expired admin center sessions", "err", err)
			}
			if err := s.store.ReclaimSpace(context.Background()); err != nil {
				s.log.Error("reclaiming free space", "err", err)
			}
		}
	}
}

// Close stops the listeners, lets open sessions finish (up to 10 seconds),
// stops the workers and closes the store.
func (s *Server) Close() error {
	// A reload in progress finishes first; none starts after this.
	s.reloadMu.Lock()
	s.closed = true
	s.reloadMu.Unlock()
	s.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.adminSock != nil {
		s.adminSock.Close()
	}
	s.lnMu.Lock()
	https := s.https
	s.lnMu.Unlock()
	if https != nil {
		https.Shutdown(ctx)
	}
	if s.http01 != nil {
		s.http01.Shutdown(ctx)
	}
	accessDone := make(chan struct{})
	go func() { s.shutdownMailAccess(ctx); close(accessDone) }()
	if s.smtp != nil {
		if err := s.smtp.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("shutdown", "err", err)
		}
	}
	<-accessDone
	s.lnMu.Lock()
	for _, l := range s.listeners {
		l.Close()
	}
	for _, l := range s.accessLns {
		l.Close()
	}
	s.lnMu.Unlock()
	close(s.stop)
	s.wg.Wait()
	removeIfSame(SocketPath(s.cfg.Data), s.adminSockFile)
	err := s.store.Close()
	s.lock.Unlock()
	return err
}

// serveHTTPS serves the admin listener on ln: the built-in OAuth issuer's
// endpoints, the REST API and the operations endpoints. The first call
// makes the HTTP server and trusts the built-in issuer at its public URL;
// a later one (a reload that moved the listener or turned it on) serves
// ln from the same HTTP server, and ln becomes the admin listener.
func (s *Server) serveHTTPS(ctx context.Context, raw net.Listener) error {
	// The admin listener's connections are capped too: 64 per address
	// and 512 in all, so that no client can take the descriptors the SMTP
	// listeners need.
	ln := smtpserver.NewAdmission(smtpserver.Limits{MaxConnections: adminConnections, MaxConnectionsPerIP: 64}).Listener(raw)
	s.lnMu.Lock()
	first := s.https == nil
	base := s.issuerBase
	s.lnMu.Unlock()
	if first {
		base = strings.TrimSuffix(s.cfg.PublicURL, "/")
		if base == "" {
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			base = "https://" + net.JoinHostPort(s.cfg.Hostname, port)
		}
		if err := s.Admin.EnsureBuiltInIssuer(ctx, base); err != nil {
			return err
		}
		authn := s.authn
		mux := http.NewServeMux()
		(&issuer.Handler{Keys: s.keys, Directory: s.Admin.Dir, Issuer: base, Throttle: authn.Throttle, Gate: authn.Gate, Log: s.log, Now: time.Now}).Register(mux)
		(&restapi.Handler{Admin: s.Admin, Log: s.log}).Register(mux)
		s.registerHealth(mux)
		// The web admin center takes the rest of the listener: / and
		// every path the handlers above do not claim.
		web := &webadmin.Handler{Admin: s.Admin, Authn: authn, Resolver: s.resolver, Hostname: s.cfg.Hostname, Log: s.log,
			CertNotAfter: func() time.Time { return certNotAfter(s.tlsCfg, s.cfg.Hostname) }}
		if o := s.cfg.WebAdmin.OIDC; o.Issuer != "" {
			secret := ""
			if o.ClientSecretFile != "" {
				var err error
				if secret, err = config.ReadSecretFile(o.ClientSecretFile); err != nil {
					return fmt.Errorf("webadmin.oidc.client_secret_file: %w", err)
				}
			}
			web.OIDC = &webadmin.OIDC{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, Claim: o.Claim,
				RedirectURL: base + "/signin/oidc/callback", HTTPClient: oauth.URLPolicy{AllowLoopbackHTTP: s.cfg.AllowInsecureHTTPLoopback}.Client(20 * time.Second)}
			s.log.Info("admin center: sign-in with an identity provider", "issuer", o.Issuer, "redirect_uri", web.OIDC.RedirectURL)
		}
		web.Register(mux)
		https := &http.Server{Handler: mux, TLSConfig: s.tlsCfg, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			WriteTimeout: time.Minute, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
		s.lnMu.Lock()
		s.https, s.issuerBase, s.web = https, base, web
		s.lnMu.Unlock()
	}
	s.lnMu.Lock()
	s.adminLn = ln
	https := s.https
	s.lnMu.Unlock()
	s.log.Info("listening", "role", "admin", "addr", ln.Addr().String(), "issuer", base)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// A listener a reload replaced is closed under a running server:
		// that ends this Serve, and is no failure.
		if err := https.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("admin listener stopped", "err", err)
		}
	}()
	return nil
}

// descriptorReserve is what the server keeps of its file descriptors for
// everything but client connections: the database, spool and body files,
// delivery connections (32 workers by default), the admin socket.
const descriptorReserve = 256

// adminConnections caps the admin HTTPS listener's connections.
const adminConnections = 512

// fitToDescriptors lowers the SMTP connection cap so that clients can never
// take the descriptors the rest of the server needs: a server out of
// descriptors cannot open its database or a spool file, and that must not
// be something a client can cause. The admin listener's cap is set aside
// when it runs. 0 (no cap) becomes the fitting cap.
func (s *Server) fitToDescriptors(maxConns int, admin string) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return maxConns
	}
	reserve := descriptorReserve
	if on(admin) {
		reserve += adminConnections
	}
	fit := max(int(lim.Cur)-reserve, 16)
	if maxConns == 0 || maxConns > fit {
		s.log.Warn("max_connections lowered to fit the file descriptor limit", "max_connections", fit, "configured", maxConns, "nofile", lim.Cur)
		return fit
	}
	return maxConns
}

// secretKeyName is the default key file in the data directory.
const secretKeyName = "secret.key"

// SocketPath is where a running server listens for admin commands.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, "admin.sock") }

// newVerifier checks OAuth tokens, fetching issuers' JWKS under the URL
// policy (https only, unless allow_insecure_http_loopback).
func newVerifier(urls oauth.URLPolicy) *oauth.Verifier {
	v := oauth.NewVerifier(urls.Client(5*time.Second), nil)
	v.URLs = urls
	return v
}

// applyMemoryLimit sets the runtime's soft memory limit from memory_limit
// (checked when the configuration was read), unless GOMEMLIMIT is set,
// and says so in the log.
func (s *Server) applyMemoryLimit(configured string) {
	limit, err := memlimit.ParseSize(configured)
	if err != nil {
		s.log.Warn("memory_limit ignored", "err", err)
		return
	}
	n, from := memlimit.Apply(limit)
	if n > 0 {
		s.log.Info("soft memory limit", "bytes", n, "from", from)
	}
}
