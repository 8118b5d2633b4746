package sqlite

import (
	"testing"

	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/storetest"
)

// TestStore runs the shared store suite against SQLite; the tests beside
// it cover what only this store has (body files, migrations, triggers
// seen from outside the store).
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		dir := t.TempDir()
		return storetest.Backend{
			Open: func(t *testing.T) store.Store {
				s, err := Open(dir)
				must(t, err)
				return s
			},
			LargeBodies: func(t *testing.T) int { return len(bodyFiles(t, dir)) },
		}
	})
}
