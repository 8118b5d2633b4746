package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"postern.dev/postern/internal/backup"
	"postern.dev/postern/internal/config"
)

// opsFlags parses a subcommand's own flags; --data and --config given
// before the subcommand are the defaults. After -h it returns a nil
// FlagSet and ok: the help is printed and the command is done.
func opsFlags(name string, args []string, dataDir, configFile string, stdout, stderr io.Writer, extra func(fs *flag.FlagSet)) (fs *flag.FlagSet, data, cfgFile *string, ok bool) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(helpOutput(args, stdout, stderr))
	data = fs.String("data", dataDir, "data directory")
	cfgFile = fs.String("config", configFile, "TOML configuration file (for secret_key_file and tls_cert/tls_key outside the data directory, and the default data directory)")
	extra(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, nil, true
		}
		return nil, nil, nil, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "postern %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, nil, nil, false
	}
	return fs, data, cfgFile, true
}

// exitFor is 0 after -h (help was asked for), 2 after a usage error.
func exitFor(helpShown bool) int {
	if helpShown {
		return 0
	}
	return 2
}

// backupCmd is `postern backup --data DIR --to FILE`: a consistent copy of
// a data directory, taken while its server runs (internal/backup), into
// one tar.gz file. The file holds the secret key, so it is created 0600
// and written under a temporary name first: a failed backup leaves no
// file that looks complete.
func backupCmd(args []string, dataDir, configFile string, stdout, stderr io.Writer) int {
	var to string
	fs, data, cfgFile, ok := opsFlags("backup", args, dataDir, configFile, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "the backup file to write (tar.gz)")
	})
	if !ok || fs == nil {
		return exitFor(ok)
	}
	if to == "" {
		fmt.Fprintln(stderr, "postern backup: --to FILE is required")
		return 2
	}
	cfg := config.Defaults()
	if err := cfg.Load(*cfgFile); err != nil {
		fmt.Fprintln(stderr, "postern backup:", err)
		return 2
	}
	if *data != "" {
		cfg.Data = *data
	}
	if _, err := os.Stat(to); err == nil {
		fmt.Fprintf(stderr, "postern backup: %s exists; choose a new file\n", to)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tmp, err := os.CreateTemp(filepath.Dir(to), "."+filepath.Base(to)+".*")
	if err != nil {
		fmt.Fprintln(stderr, "postern backup:", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	m, err := backup.Create(ctx, backup.Options{Data: cfg.Data, Extra: []string{cfg.SecretKeyFile, cfg.TLSCert, cfg.TLSKey}, Version: version}, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), to)
	}
	if err != nil {
		fmt.Fprintln(stderr, "postern backup:", err)
		return 1
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	fmt.Fprintf(stdout, "backup of %s written to %s: %d files, %d bytes before compression\n", cfg.Data, to, len(m.Files)+1, size)
	return 0
}

// restoreCmd is `postern restore --from FILE --data DIR`. DIR must be new
// (missing or without a database); files that were configured outside the
// data directory come back under DIR/external, and are listed.
func restoreCmd(args []string, dataDir, configFile string, stdout, stderr io.Writer) int {
	var from string
	fs, data, _, ok := opsFlags("restore", args, dataDir, configFile, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "the backup file to read")
	})
	if !ok || fs == nil {
		return exitFor(ok)
	}
	if from == "" || *data == "" {
		fmt.Fprintln(stderr, "postern restore: --from FILE and --data DIR are required")
		return 2
	}
	f, err := os.Open(from)
	if err != nil {
		fmt.Fprintln(stderr, "postern restore:", err)
		return 1
	}
	defer f.Close()
	m, err := backup.Restore(f, *data)
	if err != nil {
		fmt.Fprintln(stderr, "postern restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %d files from %s (taken %s) into %s\n", len(m.Files), from, m.Created.Format("2006-01-02 15:04:05 UTC"), *data)
	for name, orig := range m.External {
		fmt.Fprintf(stdout, "  %s was %s: copy it back there, or point the configuration at it\n", filepath.Join(*data, filepath.FromSlash(name)), orig)
	}
	fmt.Fprintf(stdout, "start it with: postern serve --data %s\n", *data)
	return 0
}

// checkConfig is `postern check-config FILE`: the file is validated as
// serve would read it (config.Check), without opening the data directory
// or any listener. Exit 0 and "FILE: ok", or 1 with one FILE:LINE:COL
// line per problem.
func checkConfig(args []string, configFile string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 1 && !strings.HasPrefix(args[0], "-"):
		configFile = args[0]
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprintln(stdout, "Usage: postern check-config FILE\n\nValidates a TOML configuration file without starting the server: exit 0 and \"FILE: ok\", or 1 and one FILE:LINE:COL line per problem.")
		return 0
	case len(args) == 0 && configFile != "":
	default:
		fmt.Fprintln(stderr, "Usage: postern check-config FILE")
		return 2
	}
	errs := config.Check(configFile)
	for _, err := range errs {
		fmt.Fprintln(stderr, err)
	}
	if len(errs) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", configFile)
	return 0
}
