// Command postern is Postern's one binary: the server (serve), the admin
// cmdlets and shell, and the load generator (bench).
//
//	postern serve [--data DIR] [--config FILE] [--demo] [listener flags]
//	postern --data DIR <Cmdlet> -Param value ...
//	postern --data DIR [--organization NAME] shell [-c 'SCRIPT' | -f FILE]
//	postern --data DIR admin-link
//	postern bench -addr HOST:PORT -user USER:PASSWORD ...
//	postern config-example
//	postern version
//
// The command line is parsed by hand rather than with a CLI library:
// cmdlet arguments follow PowerShell's conventions (-Identity x, -Switch:$false,
// $null), which GNU-style flag parsers would mangle.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"postern.dev/postern/internal/config"
	"postern.dev/postern/internal/imapbench"
	"postern.dev/postern/internal/loadgen"
	"postern.dev/postern/internal/logswitch"
	"postern.dev/postern/internal/sdnotify"
	"postern.dev/postern/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Postern: a self-hosted mail submission service that behaves like Exchange Online.

Usage:
  postern serve [--data DIR] [--config FILE] [--demo] [flags]   run the server (serve -h lists the flags)
  postern [--data DIR] <Cmdlet> [-Param value ...]               run one admin cmdlet, e.g. Get-Mailbox
  postern [--data DIR] shell [-c SCRIPT | -f FILE]               run PowerShell-style admin commands
                                                                 (without -c/-f: interactive, with history
                                                                 and Tab completion)
  postern [--data DIR] admin-link                                print a one-time link that signs you in to the
                                                                 web admin center as the server administrator
  postern backup [--data DIR] --to FILE                          consistent backup (tar.gz) of DIR, also while
                                                                 its server runs: database, message bodies,
                                                                 secret key, TLS material
  postern restore --from FILE --data DIR                         restore a backup into a new directory
  postern migrate --from sqlite:DIR --to postgres://...          copy a single-node installation (stopped) into
                                                                 an empty PostgreSQL database, and verify it
  postern check-config FILE                                      validate a configuration file without starting
  postern bench [flags]                                          load generator (bench -h lists the flags)
  postern bench-imap [flags]                                     IMAP benchmark client (scripts/imapbench.sh)
  postern config-example                                         print a configuration file with every setting
                                                                 commented out at its default
  postern version

The data directory is --data DIR, else the config file's "data", else
/var/lib/postern: give --data (before the command) to use another. Cmdlets
run against the server that owns DIR when one is running, otherwise
directly on DIR (under its lock: never while a server holds it). Only
serve creates a missing DIR; a cmdlet given a missing one fails. Get-Command lists the cmdlets. --organization
NAME, before the command, acts on that organization instead of the first;
--allow-insecure-http-loopback (tests only) lets plain http identity
providers on loopback through when no server runs.

--store postgres://USER@HOST:PORT/DB (before the command, or after serve;
else the config file's [store] url) keeps the shared state in PostgreSQL,
for several nodes; without it, the SQLite database in DIR. Each node keeps
its own DIR (certificate, spool, admin socket) and the same secret key.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	dataDir, configFile, org, storeURL := "", "", "", ""
	insecureLoopback := false
	// Global options may come before the command.
	for len(args) > 0 {
		if args[0] == "--allow-insecure-http-loopback" || args[0] == "-allow-insecure-http-loopback" {
			insecureLoopback = true
			args = args[1:]
			continue
		}
		name, value, ok := globalOption(args)
		if !ok {
			break
		}
		switch name {
		case "data":
			dataDir = value
		case "config":
			configFile = value
		case "organization":
			org = value
		case "store":
			storeURL = value
		}
		if strings.Contains(args[0], "=") {
			args = args[1:]
		} else {
			args = args[2:]
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd := args[0]; cmd {
	case "serve":
		serveArgs := args[1:]
		if storeURL != "" {
			// Before serve's own flags, so that a --store after serve wins.
			serveArgs = append([]string{"--store=" + storeURL}, serveArgs...)
		}
		return serve(serveArgs, dataDir, configFile, stdout, stderr)
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "bench-imap":
		return runIMAPBench(args[1:], stdout, stderr)
	case "backup":
		return backupCmd(args[1:], dataDir, configFile, stdout, stderr)
	case "restore":
		return restoreCmd(args[1:], dataDir, configFile, stdout, stderr)
	case "migrate":
		return migrateCmd(args[1:], stdout, stderr)
	case "check-config":
		return checkConfig(args[1:], configFile, stdout, stderr)
	case "config-example":
		fmt.Fprint(stdout, config.Example())
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "postern", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "admin-link":
		return adminLink(dataDir, configFile, stdout, stderr)
	case "shell":
		return shell(args[1:], localOptions(dataDir, configFile, storeURL, insecureLoopback), org, stdin, stdout, stderr)
	default:
		if !strings.Contains(cmd, "-") || strings.HasPrefix(cmd, "-") {
			fmt.Fprintf(stderr, "postern: unknown command %q\n\n%s", cmd, usage)
			return 2
		}
		wd, _ := os.Getwd()
		return runAdmin(server.AdminRequest{Args: readContentArgs(args, wd), Dir: wd, Organization: org}, localOptions(dataDir, configFile, storeURL, insecureLoopback), stdout, stderr)
	}
}

// globalOption recognises --data DIR, --data=DIR, --config FILE,
// --organization NAME and --store URL at args[0].
func globalOption(args []string) (name, value string, ok bool) {
	a := args[0]
	for _, n := range []string{"data", "config", "organization", "store"} {
		for _, prefix := range []string{"--" + n, "-" + n} {
			if a == prefix && len(args) > 1 {
				return n, args[1], true
			}
			if v, found := strings.CutPrefix(a, prefix+"="); found {
				return n, v, true
			}
		}
	}
	return "", "", false
}

// local is where cmdlets run and, when no server runs on it, the
// server-level settings they need to run on the directory themselves.
type local struct {
	data string
	// store is the PostgreSQL URL (--store, else the config file's [store]
	// url); "" is the SQLite database in data.
	store string
	// insecureLoopback is allow_insecure_http_loopback (the config file's
	// or --allow-insecure-http-loopback before the command). Through a
	// running server, the server's own setting applies.
	insecureLoopback bool
	// defaulted: neither --data nor the config file named the directory.
	defaulted bool
}

// localOptions picks the data directory (--data, else the config file's,
// else the default) and the settings above.
func localOptions(dataDir, configFile, storeURL string, insecureLoopback bool) local {
	cfg := config.Defaults()
	if err := cfg.Load(configFile); err != nil {
		cfg = config.Defaults()
	}
	defaulted := false
	if dataDir == "" {
		dataDir = cfg.Data
		defaulted = dataDir == config.Defaults().Data
	}
	if storeURL == "" {
		storeURL = cfg.Store.URL
	}
	return local{data: dataDir, store: storeURL, insecureLoopback: insecureLoopback || cfg.AllowInsecureHTTPLoopback, defaulted: defaulted}
}

func serve(args []string, dataDir, configFile string, stdout, stderr io.Writer) int {
	// --config may also be given after "serve".
	for i, a := range args {
		if (a == "--config" || a == "-config") && i+1 < len(args) {
			configFile = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--config="); ok {
			configFile = v
		}
	}
	cfg, demo, err := serveConfig(args, dataDir, configFile, helpOutput(args, stdout, stderr))
	if err != nil {
		var usage usageError
		if errors.As(err, &usage) {
			return parseExit(usage.err)
		}
		fmt.Fprintln(stderr, "postern:", err)
		return 2
	}

	log, logSwitch, err := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "postern:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "postern:", err)
		return 1
	}
	srv.Logging = logSwitch
	if demo {
		if err := setUpDemo(ctx, srv, cfg, stdout); err != nil {
			fmt.Fprintln(stderr, "postern: demo:", err)
			srv.Close()
			return 1
		}
	}
	log.Info("postern started", "version", version, "data", cfg.Data, "hostname", cfg.Hostname)
	if !demo {
		nextSteps(ctx, srv, cfg.Data, log)
	}
	notifySystemd(log, "READY=1\nSTATUS=Listening")
	// SIGHUP (systemctl reload, certbot's deploy hook) reads the
	// configuration file again and applies it, and reads the TLS
	// certificate files again; open connections keep theirs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(log, srv, configFile, func() (config.Config, error) {
					c, _, err := serveConfig(args, dataDir, configFile, io.Discard)
					return c, err
				})
			}
		}
	}()
	<-ctx.Done()
	<-reloaded
	log.Info("shutting down")
	notifySystemd(log, "STOPPING=1")
	if err := srv.Close(); err != nil {
		fmt.Fprintln(stderr, "postern:", err)
		return 1
	}
	return 0
}

// usageError is a command-line error the flag package has already
// reported (or -h).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// serveConfig is the configuration serve runs with: the defaults, the
// configuration file over them, --data given before the command, then
// serve's flags over everything (and --demo's defaults for what is left).
// A reload builds it the same way, so flags keep overriding the file.
func serveConfig(args []string, dataDir, configFile string, out io.Writer) (cfg config.Config, demo bool, err error) {
	cfg = config.Defaults()
	// The config file is read before the flags so that flags override it.
	if err := cfg.Load(configFile); err != nil {
		return cfg, false, err
	}
	if dataDir != "" {
		cfg.Data = dataDir
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	cfg.Flags(fs)
	fs.String("config", configFile, "TOML configuration file")
	demoFlag := fs.Bool("demo", false, "start a ready-to-try organization (contoso.com) on unprivileged ports")
	if err := fs.Parse(args); err != nil {
		return cfg, false, usageError{err}
	}
	if *demoFlag {
		applyDemoDefaults(&cfg, fs)
	}
	return cfg, *demoFlag, nil
}

// reload re-reads the configuration on SIGHUP. The file is validated by
// the code behind `postern check-config` first: an invalid file changes
// nothing (the error names the file, line and problem). Under systemd the
// reload is announced (RELOADING=1 with MONOTONIC_USEC, as
// Type=notify-reload requires) and its end reported (READY=1), so that
// `systemctl reload` returns once the new settings are in force.
func reload(log *slog.Logger, srv *server.Server, file string, load func() (config.Config, error)) {
	notifySystemd(log, sdnotify.Reloading())
	defer notifySystemd(log, "READY=1\nSTATUS=Listening")
	refuse := func(problems []string) {
		log.Error("configuration not reloaded; the running settings stay", "file", file, "problems", strings.Join(problems, "; "))
		srv.ReloadFailed()
	}
	if file != "" {
		if errs := config.Check(file); len(errs) > 0 {
			problems := make([]string, len(errs))
			for i, e := range errs {
				problems[i] = e.Error()
			}
			refuse(problems)
			return
		}
	}
	next, err := load()
	if err != nil {
		refuse([]string{err.Error()})
		return
	}
	log.Info("SIGHUP: reloading the configuration", "file", file)
	srv.Reload(next)
}

// helpOutput is where a flag set prints: help that was asked for goes to
// stdout (so that `postern serve --help | less` works), usage errors to
// stderr.
func helpOutput(args []string, stdout, stderr io.Writer) io.Writer {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return stdout
		case "--":
			return stderr
		}
	}
	return stderr
}

// parseExit is the exit status after a flag parse error: 0 for -h/--help
// (help asked for is not an error; the flag package has printed it),
// 2 for a usage error.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// nextSteps logs, on a server that has nothing to do yet, what to do
// next: a plain first start would otherwise print only "listening".
func nextSteps(ctx context.Context, srv *server.Server, data string, log *slog.Logger) {
	cmd := commandPath()
	if ds, err := srv.Admin.AcceptedDomains(""); err == nil && len(ds) == 0 {
		log.Info("no accepted domains yet: add your domain, then a mailbox",
			"next", fmt.Sprintf("%s --data %s New-AcceptedDomain -Name contoso.com -DomainName contoso.com -DomainType Authoritative", cmd, data))
		return
	}
	if mbs, err := srv.Admin.Mailboxes("", 1); err == nil && len(mbs) == 0 {
		log.Info("no mailboxes yet: create one and allow it SMTP AUTH",
			"next", fmt.Sprintf("%s --data %s New-Mailbox -Name scanner -PrimarySmtpAddress scanner@contoso.com -Password 'Scan-Pass-1'; %s --data %s Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false", cmd, data, cmd, data))
	}
}

// newLogger makes the server's logger: --log-format text (slog's
// key=value lines) or json (one object per line, for log shippers), and
// the switch a reload changes them with. An unknown level is info, as it
// always was (check-config reports it).
func newLogger(format, level string, w io.Writer) (*slog.Logger, *logswitch.Switch, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		level = "info"
	}
	return logswitch.New(w, format, level)
}

// runAdmin runs a request against the running server, or directly on the data
// directory when none runs.
func runAdmin(req server.AdminRequest, loc local, stdout, stderr io.Writer) int {
	var resp server.AdminResponse
	sess, err := openSession(loc)
	if err == nil {
		resp, err = sess.Send(req)
		if cerr := sess.Close(); cerr != nil && err == nil && resp.Error == "" {
			resp.Error = cerr.Error()
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "postern:", err)
		if errors.Is(err, server.ErrNoDataDir) && loc.defaulted {
			fmt.Fprintf(stderr, "postern: no --data was given, so the default data directory %s was used; give --data DIR (before the cmdlet) for yours\n", loc.data)
		}
		return 1
	}
	fmt.Fprint(stdout, resp.Output)
	fmt.Fprint(stderr, resp.Warnings)
	if resp.Error != "" {
		fmt.Fprintln(stderr, resp.Error)
		return 1
	}
	return 0
}

// runIMAPBench measures an IMAP server, Postern's or a peer's, from the
// outside (package imapbench).
func runIMAPBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-imap", flag.ContinueOnError)
	fs.SetOutput(helpOutput(args, stdout, stderr))
	cfg := imapbench.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := imapbench.Run(ctx, *cfg, stdout); err != nil {
		fmt.Fprintln(stderr, "postern bench-imap:", err)
		return 1
	}
	return 0
}

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(helpOutput(args, stdout, stderr))
	cfg := loadgen.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, *cfg)
	if err != nil {
		fmt.Fprintln(stderr, "postern bench:", err)
		return 1
	}
	res.Print(stdout, *cfg)
	return 0
}
