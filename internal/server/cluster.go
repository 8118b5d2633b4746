package server

import (
	"context"
	"time"

	"postern.dev/postern/internal/store"
)

// directoryGather is how long a node waits after hearing of a directory
// change before it reads the directory, so that a burst of changes (a
// script creating mailboxes, one cmdlet writing several tables) costs one
// read rather than one per change. Small against the one second within
// which every node must see a change.
const directoryGather = 20 * time.Millisecond

// watchDirectory keeps this node's directory snapshot current with the
// changes other nodes make, when the store is shared (PostgreSQL): the
// store calls back on every change notification and on every reconnect,
// and a loop reads the directory again. Notifications heard while a read
// runs fold into one further read, so reads never queue up.
//
// The whole directory is read again rather than the changed objects
// alone: Snapshot is an immutable set of indexes built in one pass, and
// patching it would mean copying every index (O(directory) anyway) or
// making it a persistent structure. The read costs what an admin change
// on this node costs already (BENCHMARKS.md).
func (s *Server) watchDirectory(w store.DirectoryWatcher) {
	pending := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-s.stop; cancel() }()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		w.WatchDirectory(ctx, func(all bool, tables []string) {
			select {
			case pending <- struct{}{}:
			default: // a read is due already; it will see this change too
			}
		})
	}()
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-pending:
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(directoryGather):
			}
			// Read from a clean slate: whatever arrived during the
			// gathering wait is covered by this read.
			select {
			case <-pending:
			default:
			}
			if err := s.Admin.Reload(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reading the directory after a change on another node", "err", err)
				// Try again: the change is not applied yet.
				select {
				case pending <- struct{}{}:
				default:
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
	}()
}

// relayMailboxChanges runs the store's relay of mailbox changes between
// nodes (store.MailboxChangeRelay) until the server stops, so that an
// IMAP IDLE session on this node hears of a message another node filed.
func (s *Server) relayMailboxChanges(r store.MailboxChangeRelay) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-s.stop; cancel() }()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r.RelayMailboxChanges(ctx)
	}()
}
