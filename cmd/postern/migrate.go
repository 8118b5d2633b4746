package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"postern.dev/postern/internal/server"
)

// migrateCmd is `postern migrate --from sqlite:DIR --to postgres://...`:
// a single-node installation copied into an empty PostgreSQL database,
// verified by row counts and by message trace (server.MigrateToPostgres).
func migrateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(helpOutput(args, stdout, stderr))
	from := fs.String("from", "", "the installation to copy: sqlite:DIR (its data directory; its server stopped)")
	to := fs.String("to", "", "the empty PostgreSQL database to copy it into: postgres://USER@HOST:PORT/DB")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	dir, ok := strings.CutPrefix(*from, "sqlite:")
	if !ok || dir == "" || *to == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: postern migrate --from sqlite:DIR --to postgres://USER@HOST:PORT/DB")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := server.MigrateToPostgres(ctx, dir, *to, stdout); err != nil {
		fmt.Fprintln(stderr, "postern migrate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "copied %s into PostgreSQL; start the nodes with --store (or [store] url) and a copy of %s/secret.key\n", dir, dir)
	return 0
}
