package limits

import "context"

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
