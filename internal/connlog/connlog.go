// Package connlog records refusals before a message is accepted (failed
// AUTH, relay and Direct Send refusals, unknown recipients, Send As) in the
// store's connection log, which an admin queries with Get-ConnectionLog.
//
// The SMTP path never waits for it: events go through a bounded buffer and
// are written in batches. A client that provokes refusals as fast as it can
// therefore costs one transaction per batch, not one fsync per refusal; if
// the buffer is full, events are dropped and counted rather than slowing
// sessions down.
package connlog

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"postern.dev/postern/internal/store"
)

// Logger batches connection events into the store.
type Logger struct {
	store   store.Store
	log     *slog.Logger
	events  chan store.ConnectionEvent
	dropped atomic.Int64
}

const (
	bufferSize = 4096
	batchSize  = 256
	flushEvery = 500 * time.Millisecond
)

// New returns a Logger; Run writes its events.
func New(st store.Store, log *slog.Logger) *Logger {
	return &Logger{store: st, log: log, events: make(chan store.ConnectionEvent, bufferSize)}
}

// Record queues an event without blocking.
func (l *Logger) Record(e store.ConnectionEvent) {
	if l == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	select {
	case l.events <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped counts events lost to a full buffer.
func (l *Logger) Dropped() int64 { return l.dropped.Load() }

// Run writes events until ctx ends, then writes what is left.
func (l *Logger) Run(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	var batch []store.ConnectionEvent
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := l.store.LogConnections(context.Background(), batch); err != nil && l.log != nil {
			l.log.Error("connection log", "err", err, "events", len(batch))
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-l.events:
			if batch = append(batch, e); len(batch) >= batchSize {
				flush()
			}
		case <-t.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case e := <-l.events:
					batch = append(batch, e)
				default:
					flush()
					return
				}
			}
		}
	}
}
