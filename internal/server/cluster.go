package server

import (
	"context"
	"sync"
	"time"

	"postern.dev/postern/internal/directory"
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
// The notifications name the changed rows (directory.Key); the loop reads
// only those and applies them to the snapshot (admin.Service.ApplyChanges,
// O(changed rows)). A reconnect (all), a change to a table not applied row
// by row, or more rows than store.MaxDirectoryChanges in one gathering
// makes it read the whole directory instead.
func (s *Server) watchDirectory(w store.DirectoryWatcher) {
	pending := make(chan struct{}, 1)
	// gathered holds the keys heard since the loop last took them; all
	// replaces them when a full read is due.
	var (
		mu       sync.Mutex
		gathered = map[directory.Key]bool{}
		all      bool
	)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-s.stop; cancel() }()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		w.WatchDirectory(ctx, func(full bool, keys []directory.Key) {
			mu.Lock()
			switch {
			case all:
			case full || len(gathered)+len(keys) > store.MaxDirectoryChanges:
				all, gathered = true, map[directory.Key]bool{}
			default:
				for _, k := range keys {
					gathered[k] = true
				}
			}
			mu.Unlock()
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
			mu.Lock()
			full, keys := all, make([]directory.Key, 0, len(gathered))
			for k := range gathered {
				keys = append(keys, k)
			}
			all, gathered = false, map[directory.Key]bool{}
			mu.Unlock()
			var err error
			switch {
			case full:
				err = s.Admin.Reload(ctx)
			case len(keys) == 0:
				// The keys came with the previous round's read.
			default:
				err = s.Admin.ApplyChanges(ctx, keys)
			}
			if err != nil && ctx.Err() == nil {
				// Read everything on the retry: the keys are taken.
				mu.Lock()
				all = true
				mu.Unlock()
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
