package limits

import (
	"context"
	"time"
)

// ConnectionSlots counts each mailbox's concurrent SMTP AUTH connections
// against Exchange Online's limit of 3 (reference section 4.1: "each extra
// connection gets 432 4.3.2"). Slots is one node's in-memory count (the
// SQLite store, one node); a store several nodes share provides one that
// counts in the database, so that the limit holds however a mailbox's
// connections are spread over the nodes.
type ConnectionSlots interface {
	// Acquire takes one of mailbox's slots if one is free: held is false
	// when all are taken. An error means the count could not be read or
	// written (the database is unreachable): the caller must then treat
	// the slot as not held and answer a temporary failure, never let the
	// connection submit as if it held one.
	Acquire(ctx context.Context, mailbox int64) (slot Slot, held bool, err error)
	// Release gives back a slot Acquire returned held. It does not fail:
	// an implementation that cannot reach its store frees the slot by
	// other means (the database's leases expire).
	Release(ctx context.Context, slot Slot)
}

// Slot is one held connection slot.
type Slot struct {
	Mailbox int64
	// ID names the slot in a shared store (0 in memory).
	ID int64
}

// LeasedSlots is ConnectionSlots whose slots are leases the holding node
// renews while their connections last (a store several nodes share): a
// node that dies stops renewing, and its slots come free when their
// leases end, whereas a count a dead node can no longer decrement would
// keep its mailboxes' slots taken for ever.
type LeasedSlots interface {
	ConnectionSlots
	// Renew extends the leases of the slots this node holds, and deletes
	// those it released but could not delete then (the database was
	// unreachable): one round trip however many it holds. Call it every
	// third of the lease or more often.
	Renew(ctx context.Context) error
}

// SlotLease is how long a connection slot held in a shared store counts
// without being renewed; the holding node renews it every third of that.
// It bounds how long the slots of a node that died stay taken, and how
// long a node may fail to reach the database before its slots lapse.
const SlotLease = 30 * time.Second
