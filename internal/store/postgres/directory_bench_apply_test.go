package postgres

import (
	"context"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/directory"
)

// remoteApply is what a node does when notified that mailbox id changed
// elsewhere (server.watchDirectory): read that row and apply it.
func remoteApply(ctx context.Context, svc *admin.Service, id int64) error {
	return svc.ApplyChanges(ctx, []directory.Key{{Table: directory.TableMailboxes, ID: id}})
}

// watchAndApply listens on s and applies each notification to svc as
// server.watchDirectory does (without its gathering wait), signalling on
// the returned channel after each.
func watchAndApply(ctx context.Context, s *Store, svc *admin.Service) <-chan struct{} {
	applied := make(chan struct{}, 1024)
	type note struct {
		all  bool
		keys []directory.Key
	}
	notes := make(chan note, 1024)
	go s.WatchDirectory(ctx, func(all bool, keys []directory.Key) { notes <- note{all, keys} })
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-notes:
				if n.all {
					svc.Reload(ctx)
				} else {
					svc.ApplyChanges(ctx, n.keys)
				}
				applied <- struct{}{}
			}
		}
	}()
	return applied
}
