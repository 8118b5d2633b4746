package lineserver

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrStopping is what a read returns, instead of waiting, when the server
// is shutting down and the connection waits for a command: the protocol
// answers it with its goodbye.
var ErrStopping = errors.New("lineserver: server shutting down")

// Mode says what a connection's reads are for, which decides their
// deadline and whether Shutdown interrupts them.
type Mode uint8

const (
	// Command: waiting for a command line, which must arrive whole by the
	// deadline given to AwaitCommand, so that a client trickling half a
	// line cannot extend it. Shutdown interrupts the wait at once.
	Command Mode = iota
	// Busy: running a command, no read expected. Shutdown lets the
	// command finish; the next AwaitCommand then reads ErrStopping.
	Busy
	// Stream: reading a message body (SMTP DATA or BDAT). Each read may
	// take Options.StreamTimeout, so a client that keeps sending is never
	// cut off, and Shutdown lets the transfer finish.
	Stream
)

// Options are a connection's buffers and timeouts.
type Options struct {
	// ReadBuffer and WriteBuffer size the buffered reader and writer
	// (4096 when zero). Both come from pools and are held only while
	// there is something to read or send: an idle connection holds
	// neither.
	ReadBuffer, WriteBuffer int
	// WriteTimeout bounds each write to the client: one that stops
	// reading is dropped, one that reads slowly is not. Zero: no bound.
	WriteTimeout time.Duration
	// StreamTimeout bounds each read in Stream mode. Zero: no bound.
	StreamTimeout time.Duration
	// OnAbort, when set, is called by Abort before it closes the
	// connection (to cancel work done for it, such as a store query).
	OnAbort func()
}

// Conn is the server's end of one connection, under TLS once a protocol
// starts it. Its R and W buffer the protocol's reads and replies: before
// each read from the network, what W holds is sent (so a batch of
// pipelined commands is answered in one write, RFC 2920 section 3.1, RFC
// 2449 section 6.6) and the read deadline that the mode asks for is set.
// Conn is held by value in a protocol's connection and set up with Init;
// it must not be copied after.
//
// An idle connection holds no buffer: W takes one from a pool for each
// batch of replies and gives it back once they are sent, and
// AwaitCommand, when nothing is left unread, gives R's buffer back and
// waits for the client with a few bytes of its own, taking a buffer again
// once the client sends (10,000 idle connections would otherwise hold
// 80 MiB of empty buffers).
type Conn struct {
	// R reads from the connection, W writes to it; both are made by Init.
	// AwaitCommand may replace R: read the field anew after it, never
	// keep the pointer across commands.
	R *bufio.Reader
	W *Writer

	w     Writer
	rsize int
	// first receives the first bytes a client sends after being idle;
	// pending is what of them R has not yet taken, pendingErr how that
	// wait ended when it failed (both go to R before the network).
	first      [128]byte
	pending    []byte
	pendingErr error

	nc       net.Conn // the accepted connection
	rw       net.Conn // what is read and written: nc, or TLS over it
	writeTO  time.Duration
	streamTO time.Duration
	onAbort  func()

	// mu guards mode, deadline and stopping, which Shutdown reads to
	// interrupt a connection waiting for a command.
	mu       sync.Mutex
	mode     Mode
	deadline time.Time
	stopping bool
}

// Init sets c up over the accepted connection nc, in mode m.
func (c *Conn) Init(nc net.Conn, m Mode, o Options) {
	c.nc, c.rw = nc, nc
	c.mode = m
	c.writeTO, c.streamTO, c.onAbort = o.WriteTimeout, o.StreamTimeout, o.OnAbort
	c.rsize = bufferSize(o.ReadBuffer)
	c.R = getReader(c.rsize, c)
	c.w.Reset(c)
	c.w.size = bufferSize(o.WriteBuffer)
	c.W = &c.w
}

func bufferSize(n int) int {
	if n <= 0 {
		return 4096
	}
	return n
}

// Accepted is the connection as accepted, under any TLS: what a TLS
// handshake runs over.
func (c *Conn) Accepted() net.Conn { return c.nc }

// Transport is what is read and written: the accepted connection, or TLS
// over it.
func (c *Conn) Transport() net.Conn { return c.rw }

// SetTransport switches to a new transport (TLS over the accepted
// connection). What R and W hold is dropped, so that commands a client
// pipelined before STARTTLS or STLS are never taken as sent under TLS
// (RFC 3207 section 4.2, RFC 2595 section 4; CVE-2011-0411); W must have
// been flushed before the handshake.
func (c *Conn) SetTransport(rw net.Conn) {
	c.rw = rw
	c.R.Reset(c)
	c.W.Reset(c)
	c.pending, c.pendingErr = nil, nil
}

// AwaitCommand switches to Command mode: the whole line must arrive by
// deadline (the zero time: no deadline). When nothing sent by the client
// is left unread, it sends the replies written so far and waits, holding
// no buffer, until the client sends again (or the wait fails: R then
// returns the error); it may replace R.
func (c *Conn) AwaitCommand(deadline time.Time) {
	c.mu.Lock()
	c.mode = Command
	c.deadline = deadline
	c.mu.Unlock()
	if c.R.Buffered() > 0 || len(c.pending) > 0 || c.pendingErr != nil {
		return
	}
	putReader(c.rsize, c.R)
	c.R = nil
	n, err := c.Read(c.first[:]) // flushes W first, which frees its buffer
	c.pending, c.pendingErr = c.first[:n], err
	c.R = getReader(c.rsize, c)
}

// SetMode switches to mode m; in Command mode the deadline is the one
// AwaitCommand set last.
func (c *Conn) SetMode(m Mode) {
	c.mu.Lock()
	c.mode = m
	c.mu.Unlock()
}

// Stopping reports whether Shutdown has begun for this connection: a read
// that timed out may have been interrupted by it rather than by the client.
func (c *Conn) Stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// Read is what R reads from: it sends the replies written so far, then
// reads from the network under the mode's deadline.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if err := c.pendingErr; err != nil {
		c.pendingErr = nil
		return 0, err
	}
	if err := c.W.Flush(); err != nil {
		return 0, err
	}
	// The deadline is set under mu so that Shutdown's interruption, which
	// sets it to now under mu, is never overwritten by a later one.
	c.mu.Lock()
	switch {
	case c.mode == Command && c.stopping:
		c.mu.Unlock()
		return 0, ErrStopping
	case c.mode == Stream:
		if c.streamTO > 0 {
			c.rw.SetReadDeadline(time.Now().Add(c.streamTO))
		}
	case !c.deadline.IsZero():
		c.rw.SetReadDeadline(c.deadline)
	}
	c.mu.Unlock()
	return c.rw.Read(p)
}

// Write is what W writes to: each write gets WriteTimeout.
func (c *Conn) Write(p []byte) (int, error) {
	if c.writeTO > 0 {
		c.rw.SetWriteDeadline(time.Now().Add(c.writeTO))
	}
	return c.rw.Write(p)
}

// InterruptIfIdle marks the connection stopping and, when it waits for a
// command, makes its read give up now. A command being run, or a message
// being received, finishes first.
func (c *Conn) InterruptIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	if c.mode == Command {
		c.nc.SetReadDeadline(time.Now())
	}
}

// Abort closes the connection under whatever it is doing (after calling
// Options.OnAbort).
func (c *Conn) Abort() {
	if c.onAbort != nil {
		c.onAbort()
	}
	c.nc.Close()
}

// readerPools holds the idle bufio.Readers of each size in use.
var readerPools sync.Map // int -> *sync.Pool

func readerPool(size int) *sync.Pool {
	if p, ok := readerPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := readerPools.LoadOrStore(size, &sync.Pool{New: func() any { return bufio.NewReaderSize(nil, size) }})
	return p.(*sync.Pool)
}

// readersHeld counts the readers taken from the pools and not given back
// (tests watch an idle connection give its own back).
var readersHeld atomic.Int64

func getReader(size int, c *Conn) *bufio.Reader {
	readersHeld.Add(1)
	r := readerPool(size).Get().(*bufio.Reader)
	r.Reset(c)
	return r
}

func putReader(size int, r *bufio.Reader) {
	readersHeld.Add(-1)
	r.Reset(nil)
	readerPool(size).Put(r)
}
