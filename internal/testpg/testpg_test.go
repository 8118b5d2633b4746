package testpg

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestFreshDatabases: each New is an empty database of its own, on a
// server that runs with fsync and synchronous_commit on.
func TestFreshDatabases(t *testing.T) {
	ctx := context.Background()
	var urls []string
	for range 2 {
		url := New(t)
		urls = append(urls, url)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil || tables != 0 {
			t.Fatalf("fresh database has %d tables (%v)", tables, err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
		for _, setting := range []string{"fsync", "synchronous_commit"} {
			var v string
			if err := conn.QueryRow(ctx, "SHOW "+setting).Scan(&v); err != nil || v != "on" {
				t.Errorf("%s = %q (%v), want on", setting, v, err)
			}
		}
		conn.Close(ctx)
	}
	if urls[0] == urls[1] {
		t.Fatalf("two tests got one database: %s", urls[0])
	}
}

// TestStopStart: a cluster of the test's own refuses connections while
// stopped and comes back on the same URL with what was committed.
func TestStopStart(t *testing.T) {
	ctx := context.Background()
	c := NewCluster(t)
	url := c.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	c.Stop(t)
	if conn, err := pgx.Connect(ctx, url); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped cluster")
	}
	c.Start(t)
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var x int
	if err := conn.QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after the restart: x = %d (%v), want 42", x, err)
	}
}
