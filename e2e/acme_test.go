package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postern.dev/postern/internal/testdns"
)

// acmeHost is the server's host name in the ACME tests; the loopback DNS
// server the test runs resolves it (and acmeExtra) to 127.0.0.1 for
// pebble's validation authority.
const (
	acmeHost  = "mail.contoso.com"
	acmeExtra = "smtp.contoso.com"
)

// TestACME: Postern obtains its certificates from a real ACME CA, Debian's
// pebble, whose validation authority really connects back to Postern's
// loopback listeners (no PEBBLE_VA_ALWAYS_VALID): TLS-ALPN-01 on the
// submissions (465) listener and on the admin HTTPS listener, HTTP-01 on
// the http_listen listener. The certificate is renewed in the background
// (pebble issues 40-second certificates, renew_before is 30s) and a new
// serial is served without dropping a connection, the STARTTLS listener
// serving the same certificate.
func TestACME(t *testing.T) {
	requireTool(t, "pebble") // under CI=true a missing pebble fails the test
	for _, tc := range []struct {
		name string
		// via is where pebble validates: the listener of TLS-ALPN-01
		// ("submissions", "admin"), or "http" for HTTP-01.
		via string
		// renew: short-lived certificates, and the test waits for a renewal.
		renew bool
		// caLater starts pebble only after Postern: until then the
		// self-signed certificate is served and the failure is logged.
		caLater bool
	}{
		{name: "tls-alpn-01 on submissions", via: "submissions", renew: true, caLater: true},
		{name: "http-01", via: "http", renew: true},
		{name: "tls-alpn-01 on admin, extra name", via: "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dns, err := testdns.Start(nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(dns.Close)
			dns.SetIP(acmeHost, "127.0.0.1")
			dns.SetIP(acmeExtra, "127.0.0.1")

			submissions, admin, httpAddr, closed := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
			// pebble validates on one port per challenge type; the other
			// type's port is one where nothing listens.
			tlsPort, httpPort := portOf(closed), portOf(closed)
			switch tc.via {
			case "submissions":
				tlsPort = portOf(submissions)
			case "admin":
				tlsPort = portOf(admin)
			case "http":
				httpPort = portOf(httpAddr)
			}
			validity := 3600
			if tc.renew {
				validity = 40
			}
			ca := startPebbleConfig(t, dir, dns.Addr, tlsPort, httpPort, validity)

			httpListen := "off"
			if tc.via == "http" {
				httpListen = httpAddr
			}
			renewBefore := "0s" // a third of the lifetime: 20 minutes, not within the test
			if tc.renew {
				renewBefore = "30s"
			}
			cfgFile := filepath.Join(dir, "postern.toml")
			writeFile(t, cfgFile, fmt.Sprintf(`[acme]
enabled = true
directory_url = %q
email = "postmaster@contoso.com"
names = [%q]
http_listen = %q
root_ca_file = %q
renew_before = %q
`, ca.directory, acmeExtra, httpListen, ca.testCA, renewBefore))

			if !tc.caLater {
				ca.start(t)
			}
			in := newInstance(t, "--config", cfgFile, "--hostname", acmeHost, "--submissions", submissions,
				"--admin", admin, "--metrics-token", metricsToken, "--connection-rate-per-ip", "0")
			in.start()
			if !strings.Contains(in.log.String(), "ACME certificate issuance pending") {
				t.Errorf("no pending issuance logged:\n%s", in.log.String())
			}
			if tc.caLater {
				// No CA yet: the server serves, with its self-signed certificate,
				// and says why it has no other.
				if !waitUntil(60*time.Second, func() bool { return strings.Contains(in.log.String(), "ACME certificate not obtained") }) {
					t.Fatalf("no failure logged:\n%s", in.log.String())
				}
				if l := in.log.String(); !strings.Contains(l, "connection refused") {
					t.Errorf("the failure does not say why:\n%s", l)
				}
				if org := servedLeaf(t, submissions, acmeHost).Subject.Organization; len(org) != 1 || org[0] != "Postern self-signed" {
					t.Fatalf("before issuance, served %v", org)
				}
				in.dial("submissions").expect("EHLO x", "250")
				ca.start(t)
				in.cmd.Process.Signal(syscall.SIGHUP) // try again now, not in two minutes
			}
			roots := ca.roots(t)
			verify := &tls.Config{RootCAs: roots, ServerName: acmeHost}

			// The first certificate, issued by pebble, on the implicit-TLS
			// listener and, through STARTTLS, on the submission listener.
			var first string
			if !waitUntil(120*time.Second, func() bool {
				first, err = handshakeSerial(submissions, verify)
				return err == nil
			}) {
				t.Fatalf("no certificate from pebble on %s: %v\n%s\npebble:\n%s", submissions, err, in.log.String(), ca.log.String())
			}
			// The extra name's certificate is ordered next.
			if !waitUntil(120*time.Second, func() bool {
				_, err = handshakeSerial(submissions, &tls.Config{RootCAs: roots, ServerName: acmeExtra})
				return err == nil
			}) {
				t.Fatalf("no certificate for %s: %v\n%s", acmeExtra, err, in.log.String())
			}
			c := in.dial("submission")
			c.expect("EHLO x", "250")
			c.startTLS(verify)
			c.expect("EHLO x", "250")

			// The admin HTTPS listener serves it too, and its expiry is the
			// metric's (a self-signed certificate's is ten years away).
			m := acmeMetrics(t, admin, roots)
			if left := m["postern_tls_certificate_expiry_seconds"]; left <= 0 || left > float64(validity) {
				t.Errorf("postern_tls_certificate_expiry_seconds = %v, want (0, %d]", left, validity)
			}
			log := in.log.String()
			for _, want := range []string{"msg=\"ACME certificate issued\" name=" + acmeHost, "issuer=\"Pebble Intermediate CA"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			// The account key and the certificates are in DATA/acme, owner only.
			if fi, err := os.Stat(filepath.Join(in.data, "acme")); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("DATA/acme: %v %v", fi, err)
			}
			for _, f := range []string{"acme_account+key", acmeHost, acmeExtra} {
				if _, err := os.Stat(filepath.Join(in.data, "acme", f)); err != nil {
					t.Errorf("DATA/acme: %v", err)
				}
			}

			switch tc.via {
			case "http":
				// TLS-ALPN-01 is tried first and fails (nothing listens
				// where pebble looks): the failure is logged with pebble's
				// reason, then HTTP-01 succeeds.
				for _, want := range []string{"ACME http-01 challenge answered", "msg=\"ACME challenge failed\" name=" + acmeHost + " challenge=tls-alpn-01"} {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q:\n%s", want, log)
					}
				}
			default:
				if strings.Contains(log, "http-01 challenge answered") {
					t.Errorf("an http-01 challenge without an HTTP listener:\n%s", log)
				}
			}

			if tc.via == "admin" {
				// Each name has its certificate; a client naming no host, or
				// one not configured, gets the host name's, and no order is
				// placed for a name a client makes up.
				if got := servedLeaf(t, admin, acmeExtra).DNSNames; len(got) != 1 || got[0] != acmeExtra {
					t.Errorf("for %s, served %v", acmeExtra, got)
				}
				for _, sni := range []string{"", "evil.contoso.com"} {
					if got := servedLeaf(t, submissions, sni).DNSNames; len(got) != 1 || got[0] != acmeHost {
						t.Errorf("for SNI %q, served %v", sni, got)
					}
				}
				if strings.Contains(in.log.String(), "evil") || strings.Contains(ca.log.String(), "evil") {
					t.Errorf("a made-up SNI name reached the CA:\n%s", ca.log.String())
				}
			}
			if !tc.renew {
				return
			}

			// Renewal: a connection open from before goes on, new handshakes
			// (checked every 100 ms) never fail, and a new serial comes.
			held := dialTLS(t, submissions, verify)
			held.expect("EHLO x", "250")
			var (
				mu      sync.Mutex
				serials = map[string]bool{}
				failed  []string
				stop    = make(chan struct{})
				done    = make(chan struct{})
			)
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					s, err := handshakeSerial(submissions, verify)
					mu.Lock()
					if err != nil {
						failed = append(failed, err.Error())
					} else {
						serials[s] = true
					}
					mu.Unlock()
				}
			}()
			renewed := waitUntil(120*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				for s := range serials {
					if s != first {
						return true
					}
				}
				return false
			})
			close(stop)
			<-done
			if !renewed {
				t.Fatalf("no renewal (serial still %s):\n%s\npebble:\n%s", first, in.log.String(), ca.log.String())
			}
			if len(failed) > 0 {
				t.Errorf("%d handshakes failed during renewal: %v", len(failed), failed)
			}
			held.expect("NOOP", "250")
			c.expect("NOOP", "250")
			if !waitUntil(10*time.Second, func() bool { return strings.Contains(in.log.String(), "ACME certificate renewed") }) {
				t.Errorf("renewal not logged:\n%s", in.log.String())
			}
		})
	}
}

// pebbleCA is one pebble instance: its HTTPS endpoints use a test CA made
// here (nothing from the module cache).
type pebbleCA struct {
	bin, config, testCA  string
	directory, mgmt, dns string
	log                  *syncBuffer
	// settings is pebble's configuration, written again with another
	// management address should the one chosen be taken by then (start).
	settings map[string]any
}

// startPebbleConfig writes pebble's configuration, its HTTPS certificate
// and the test CA that signs it, for a pebble that validates TLS-ALPN-01
// on tlsPort and HTTP-01 on httpPort and issues certificates valid for
// validity seconds, resolving names with the test's DNS server.
func startPebbleConfig(t *testing.T, dir, dnsAddr, tlsPort, httpPort string, validity int) *pebbleCA {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Postern e2e test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pebble"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	p := &pebbleCA{bin: requireTool(t, "pebble"), config: filepath.Join(dir, "pebble.json"), testCA: filepath.Join(dir, "test-ca.pem"),
		dns: dnsAddr, log: &syncBuffer{}}
	writeFile(t, p.testCA, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, filepath.Join(dir, "pebble-cert.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(dir, "pebble-key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	listen, mgmt := freeAddr(t), freeAddr(t)
	p.directory, p.mgmt = "https://"+listen+"/dir", mgmt
	tp, _ := strconv.Atoi(tlsPort)
	hp, _ := strconv.Atoi(httpPort)
	p.settings = map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": filepath.Join(dir, "pebble-cert.pem"), "privateKey": filepath.Join(dir, "pebble-key.pem"),
		"httpPort": hp, "tlsPort": tp, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"certificateValidityPeriod": validity,
	}
	p.writeConfig(t)
	return p
}

func (p *pebbleCA) writeConfig(t *testing.T) {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{"pebble": p.settings})
	writeFile(t, p.config, string(cfg))
}

// start runs pebble against the test's DNS server and waits for its
// directory. PEBBLE_VA_NOSLEEP skips its random validation delays;
// PEBBLE_AUTHZREUSE=0 makes every order, renewals included, validate
// again instead of reusing an earlier authorization.
//
// The management address was free when chosen (freeAddr), but another
// test may have taken it since: pebble then exits, and is started again
// on another. (The directory address cannot change: a server may already
// have it in its configuration.)
func (p *pebbleCA) start(t *testing.T) {
	t.Helper()
	client := p.client(t)
	for attempt := 1; ; attempt++ {
		cmd := exec.Command(p.bin, "-config", p.config, "-dnsserver", p.dns)
		cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0")
		cmd.Stdout, cmd.Stderr = p.log, p.log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
		})
		up := waitUntil(30*time.Second, func() bool {
			select {
			case <-exited:
				return true
			default:
			}
			resp, err := client.Get(p.directory)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		select {
		case <-exited:
			up = false
		default:
		}
		if up {
			return
		}
		if attempt < 3 && strings.Contains(p.log.String(), "listen tcp "+p.mgmt+": bind: address already in use") {
			p.mgmt = freeAddr(t)
			p.settings["managementListenAddress"] = p.mgmt
			p.writeConfig(t)
			continue
		}
		t.Fatalf("pebble did not start:\n%s", p.log.String())
	}
}

func (p *pebbleCA) client(t *testing.T) *http.Client {
	t.Helper()
	b, err := os.ReadFile(p.testCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// roots is pebble's root CA, from its management endpoint (a new one each
// time pebble starts).
func (p *pebbleCA) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client(t).Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if resp.StatusCode != 200 || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble's root: %d %q", resp.StatusCode, b)
	}
	return pool
}

// handshakeSerial completes a verified TLS handshake and returns the
// serial of the certificate served.
func handshakeSerial(addr string, cfg *tls.Config) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

// servedLeaf is the certificate served for SNI name ("" sends none),
// unverified.
func servedLeaf(t *testing.T, addr, name string) *x509.Certificate {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: name})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// acmeMetrics reads /metrics over a connection verified against pebble's
// root for the host name.
func acmeMetrics(t *testing.T, admin string, roots *x509.CertPool) map[string]float64 {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: acmeHost}}}
	req, _ := http.NewRequest("GET", "https://"+admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndex(l, " ")
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// dial opens an SMTP connection to one of the instance's listeners.
func (in *instance) dial(role string) *smtpClient {
	in.t.Helper()
	if role == "submissions" {
		return dialTLS(in.t, in.addrs[role], &tls.Config{InsecureSkipVerify: true})
	}
	return dial(in.t, in.addrs[role])
}
