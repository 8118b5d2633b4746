package lineserver

import (
	"io"
	"sync"
)

// Writer buffers a connection's replies as bufio.Writer does, but holds a
// buffer only while it has something to send: the buffer comes from a pool
// at the first write and goes back to it when Flush has sent it. Replies
// are written, then sent in one write when the connection next reads
// (Conn.Read flushes), so a connection waiting for its client holds none.
type Writer struct {
	dst  io.Writer
	size int
	buf  *[]byte // nil while nothing is buffered
	err  error
}

// writerPools holds the idle buffers of each size in use.
var writerPools sync.Map // int -> *sync.Pool

func writerPool(size int) *sync.Pool {
	if p, ok := writerPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := writerPools.LoadOrStore(size, &sync.Pool{New: func() any {
		b := make([]byte, 0, size)
		return &b
	}})
	return p.(*sync.Pool)
}

func (w *Writer) take() {
	w.buf = writerPool(w.size).Get().(*[]byte)
}

func (w *Writer) release() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		writerPool(w.size).Put(w.buf)
		w.buf = nil
	}
}

// Write buffers p, sending the buffer whenever it fills; a p larger than
// the buffer with nothing buffered is sent as it is.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err == nil && w.buf == nil && len(p) >= w.size {
		m, err := w.dst.Write(p)
		if err == nil && m < len(p) {
			err = io.ErrShortWrite
		}
		w.err = err
		return m, err
	}
	return buffer(w, p)
}

// WriteString is Write for a string.
func (w *Writer) WriteString(s string) (int, error) { return buffer(w, s) }

// buffer appends p to w's buffer, taking one from the pool first and
// sending it each time it fills.
func buffer[S string | []byte](w *Writer, p S) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.err != nil {
			return n, w.err
		}
		if w.buf == nil {
			w.take()
		}
		k := min(len(p), w.size-len(*w.buf))
		*w.buf = append(*w.buf, p[:k]...)
		n += k
		p = p[k:]
		if len(p) > 0 {
			w.send()
		}
	}
	return n, nil
}

// Flush sends what is buffered and gives the buffer back. After a failed
// write every call returns that error (the connection is broken).
func (w *Writer) Flush() error {
	err := w.send()
	w.release()
	return err
}

// send writes out a full buffer and keeps it for what follows (a long
// response streams through one buffer).
func (w *Writer) send() error {
	if w.err != nil {
		return w.err
	}
	if w.buf == nil || len(*w.buf) == 0 {
		return nil
	}
	b := *w.buf
	m, err := w.dst.Write(b)
	if err == nil && m < len(b) {
		err = io.ErrShortWrite
	}
	w.err = err
	*w.buf = b[:0]
	return err
}

// Buffered is how many bytes wait to be sent.
func (w *Writer) Buffered() int {
	if w.buf == nil {
		return 0
	}
	return len(*w.buf)
}

// Reset drops what is buffered and any error, and writes to dst from now
// on.
func (w *Writer) Reset(dst io.Writer) {
	w.release()
	w.dst, w.err = dst, nil
}
