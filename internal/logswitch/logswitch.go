// Package logswitch is a log/slog handler whose level and format (text or
// json) can change while the server runs, so that a configuration reload
// applies log_level and log_format without a restart. Loggers derived
// with With or WithGroup before a change follow it too: each derived
// handler rebuilds its chain on the new format once, on its next record.
package logswitch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
)

// Switch owns the output and the current format and level.
type Switch struct {
	w     io.Writer
	level slog.LevelVar
	// base is the handler of the current format; a new pointer per change,
	// which derived handlers compare against their cached chain.
	base atomic.Pointer[base]
}

type base struct {
	format string
	h      slog.Handler
}

// New returns a logger writing to w in format at level, and the Switch
// that changes them.
func New(w io.Writer, format, level string) (*slog.Logger, *Switch, error) {
	sw := &Switch{w: w}
	if err := sw.Set(format, level); err != nil {
		return nil, nil, err
	}
	return slog.New(&handler{sw: sw}), sw, nil
}

// Set changes the format ("text", "" or "json") and the level ("debug",
// "info", "warn", "error", or an offset such as "info+2"). An invalid
// value changes nothing.
func (sw *Switch) Set(format, level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("log_level %q: want debug, info, warn or error", level)
	}
	if format == "" {
		format = "text"
	}
	opts := &slog.HandlerOptions{Level: &sw.level}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(sw.w, opts)
	case "json":
		h = slog.NewJSONHandler(sw.w, opts)
	default:
		return fmt.Errorf("log_format %q: want text or json", format)
	}
	sw.level.Set(l)
	if cur := sw.base.Load(); cur == nil || cur.format != format {
		sw.base.Store(&base{format: format, h: h})
	}
	return nil
}

// Level is the current level.
func (sw *Switch) Level() slog.Level { return sw.level.Level() }

// handler is a logger's view of the switch: the With and WithGroup calls
// made on it, replayed on the current format's handler.
type handler struct {
	sw  *Switch
	ops []op
	// built is ops applied to a base, reused while that base is current.
	built atomic.Pointer[built]
}

type op struct {
	group string // WithGroup when set, else WithAttrs
	attrs []slog.Attr
}

type built struct {
	from *base
	h    slog.Handler
}

func (h *handler) current() slog.Handler {
	b := h.sw.base.Load()
	if c := h.built.Load(); c != nil && c.from == b {
		return c.h
	}
	out := b.h
	for _, o := range h.ops {
		if o.group != "" {
			out = out.WithGroup(o.group)
		} else {
			out = out.WithAttrs(o.attrs)
		}
	}
	h.built.Store(&built{from: b, h: out})
	return out
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.sw.level.Level() }

func (h *handler) Handle(ctx context.Context, r slog.Record) error { return h.current().Handle(ctx, r) }

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(op{attrs: attrs})
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(op{group: name})
}

func (h *handler) with(o op) *handler {
	ops := make([]op, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return &handler{sw: h.sw, ops: append(ops, o)}
}
