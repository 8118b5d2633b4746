package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/imapd"
	"postern.dev/postern/internal/pop3"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/signin"
	"postern.dev/postern/internal/store"
)

// The mail access listeners: IMAP4 (143 with STARTTLS, 993 with implicit
// TLS) and POP3 (110 with STLS, 995 with implicit TLS), by their keys in
// the configuration.
var accessRoles = []struct {
	key         string
	imap        bool
	implicitTLS bool
}{{"imap", true, false}, {"imaps", true, true}, {"pop3", false, false}, {"pop3s", false, true}}

// accessAddr is the configured address of a mail access listener.
func accessAddr(cfgKey string, imap, imaps, pop3, pop3s string) string {
	return map[string]string{"imap": imap, "imaps": imaps, "pop3": pop3, "pop3s": pop3s}[cfgKey]
}

// startMailAccess builds the IMAP4 and POP3 servers over the store and
// the one sign-in service, and opens their listeners.
func (s *Server) startMailAccess() error {
	s.imap = imapd.New(imapd.Options{Store: s.store, Auth: imapSignIn{s.authn}, TLSConfig: s.tlsCfg, Logger: s.log,
		MaxAppendSize: directory.DefaultMaxReceiveSize})
	s.pop3 = &pop3.Server{Auth: popSignIn{authn: s.authn, store: s.store}, TLSConfig: s.tlsCfg, Log: s.log.With("protocol", "POP3")}
	for _, r := range accessRoles {
		addr := accessAddr(r.key, s.cfg.IMAP, s.cfg.IMAPS, s.cfg.POP3, s.cfg.POP3S)
		if !on(addr) {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", r.key, err)
		}
		s.serveAccess(ln, r.key)
	}
	return nil
}

// serveAccess serves a mail access role on ln, which becomes the role's
// listener. Its connections count against the same caps as SMTP's (the
// global cap, per client address and per minute): one budget per client,
// whatever protocol it speaks.
func (s *Server) serveAccess(ln net.Listener, key string) {
	s.lnMu.Lock()
	s.accessLns[key] = ln
	s.lnMu.Unlock()
	s.log.Info("listening", "role", key, "addr", ln.Addr().String())
	admitted := s.smtp.Admission().Listener(ln)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		switch key {
		case "imap", "imaps":
			err = s.imap.Serve(admitted, key == "imaps")
		default:
			err = s.pop3.Serve(admitted, key == "pop3s")
			if errors.Is(err, pop3.ErrServerClosed) {
				err = nil
			}
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Error("listener stopped", "role", key, "err", err)
		}
	}()
}

func isAccessRole(key string) bool {
	for _, r := range accessRoles {
		if r.key == key {
			return true
		}
	}
	return false
}

// reopenAccess moves a mail access listener (a reload): the new one
// serves before the old one stops accepting, and the old one's sessions
// go on; "off" closes it.
func (s *Server) reopenAccess(key, addr string) error {
	s.lnMu.Lock()
	old := s.accessLns[key]
	s.lnMu.Unlock()
	if on(addr) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w; the old one stays", key, err)
		}
		s.serveAccess(ln, key)
	} else {
		s.lnMu.Lock()
		delete(s.accessLns, key)
		s.lnMu.Unlock()
	}
	if old != nil {
		old.Close()
		s.log.Info("listener closed; its open sessions go on", "role", key, "addr", old.Addr().String())
	}
	return nil
}

// AccessAddr returns the bound address of a mail access listener ("imap",
// "imaps", "pop3", "pop3s"), or nil when it is off.
func (s *Server) AccessAddr(key string) net.Addr {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if l := s.accessLns[key]; l != nil {
		return l.Addr()
	}
	return nil
}

// shutdownMailAccess ends the IMAP4 and POP3 sessions: idle clients are
// told at once, and sessions in a command get until ctx ends.
func (s *Server) shutdownMailAccess(ctx context.Context) {
	if s.imap != nil {
		if err := s.imap.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("IMAP shutdown", "err", err)
		}
	}
	if s.pop3 != nil {
		if err := s.pop3.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("POP3 shutdown", "err", err)
		}
	}
}

// imapSignIn is the sign-in service as the IMAP server asks it.
type imapSignIn struct{ a *signin.Authenticator }

func (i imapSignIn) Basic(ctx context.Context, ip netip.Addr, username, password string) (imapd.Account, error) {
	return imapAccount(i.a.Basic(ctx, signin.IMAP4, ip, username, password))
}

func (i imapSignIn) OAuth(ctx context.Context, ip netip.Addr, user, token string) (imapd.Account, error) {
	return imapAccount(i.a.OAuth(ctx, signin.IMAP4, ip, user, token))
}

func imapAccount(g *signin.Grant, r *signin.Refusal) (imapd.Account, error) {
	if r != nil {
		return imapd.Account{}, &imapd.AuthError{Temporary: r.Temporary, Close: r.Close, Text: r.Text, Err: refusalCause(r)}
	}
	acc := imapd.Account{Mailbox: g.Mailbox.ID, Address: g.Mailbox.PrimarySmtpAddress, MaxAppendSize: g.Mailbox.MaxReceiveSize,
		Quota: g.Mailbox.ProhibitSendReceiveQuota}
	if g.Actor != nil && g.Actor.ID != g.Mailbox.ID {
		acc.Actor = g.Actor.PrimarySmtpAddress
	} else if g.Actor == nil && g.AppID != "" {
		acc.Actor = "app " + g.AppID
	}
	return acc, nil
}

// refusalCause is a refusal's reason for the log (never for the client).
func refusalCause(r *signin.Refusal) error {
	switch {
	case r.Reason != "":
		return errors.New(r.Reason)
	case r.Reply != nil && r.Reply != reply.AuthFailed:
		return errors.New(r.Reply.Message)
	}
	return nil
}

// popSignIn is the sign-in service as the POP3 server asks it: a grant
// opens the mailbox's Inbox as a maildrop.
type popSignIn struct {
	authn *signin.Authenticator
	store store.Store
}

func (p popSignIn) Basic(ctx context.Context, ip netip.Addr, username, password string) (pop3.Maildrop, error) {
	g, r := p.authn.Basic(ctx, signin.POP3, ip, username, password)
	return p.open(ctx, g, r)
}

func (p popSignIn) OAuth(ctx context.Context, ip netip.Addr, user, token string) (pop3.Maildrop, error) {
	g, r := p.authn.OAuth(ctx, signin.POP3, ip, user, token)
	return p.open(ctx, g, r)
}

func (p popSignIn) open(ctx context.Context, g *signin.Grant, r *signin.Refusal) (pop3.Maildrop, error) {
	if r != nil {
		return nil, &pop3.Refusal{Temporary: r.Temporary, Close: r.Close, Text: r.Text}
	}
	f, err := p.store.MailFolderByName(ctx, g.Mailbox.ID, store.Inbox)
	if err != nil {
		return nil, fmt.Errorf("the Inbox of %s: %w", g.Mailbox.PrimarySmtpAddress, err)
	}
	return &maildrop{store: p.store, mailbox: g.Mailbox.ID, folder: f.ID, validity: f.UIDValidity}, nil
}

// maildrop is a mailbox's Inbox for one POP3 session. Its UIDL is the
// folder's UIDVALIDITY and the item's IMAP UID, so a message keeps its
// UIDL for good and the two protocols agree on which message is which.
type maildrop struct {
	store    store.Store
	mailbox  int64
	folder   int64
	validity uint32
	messages map[string]int64 // UIDL -> stored message, from the snapshot
}

func (m *maildrop) uidl(uid uint32) string {
	return strconv.FormatUint(uint64(m.validity), 10) + "." + strconv.FormatUint(uint64(uid), 10)
}

// imapUID parses a UIDL of this folder; 0 for one of another UIDVALIDITY.
func (m *maildrop) imapUID(uidl string) uint32 {
	v, u, ok := strings.Cut(uidl, ".")
	if !ok || v != strconv.FormatUint(uint64(m.validity), 10) {
		return 0
	}
	n, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

func (m *maildrop) Messages(ctx context.Context, limit int) ([]pop3.Message, error) {
	items, err := m.store.MailItems(ctx, m.mailbox, m.folder, nil)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(items) > limit {
		items = items[:limit] // the oldest: UIDs ascend with arrival
	}
	m.messages = make(map[string]int64, len(items))
	out := make([]pop3.Message, 0, len(items))
	for _, it := range items {
		id := m.uidl(it.UID)
		m.messages[id] = it.Message
		out = append(out, pop3.Message{UID: id, Size: it.Size})
	}
	return out, nil
}

func (m *maildrop) Open(ctx context.Context, uidl string) (io.ReadCloser, error) {
	msg, ok := m.messages[uidl]
	if !ok {
		return nil, fmt.Errorf("message %s: %w", uidl, pop3.ErrMessageGone)
	}
	// Another session (IMAP, say) may have removed it since the snapshot.
	items, err := m.store.MailItems(ctx, m.mailbox, m.folder, []store.UIDRange{{Start: m.imapUID(uidl), Stop: m.imapUID(uidl)}})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("message %s: %w", uidl, pop3.ErrMessageGone)
	}
	body, err := m.store.MessageBody(ctx, msg)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("message %s: %w", uidl, pop3.ErrMessageGone)
	}
	return body, err
}

func (m *maildrop) ranges(uidls []string) []store.UIDRange {
	var rs []store.UIDRange
	for _, id := range uidls {
		if u := m.imapUID(id); u != 0 {
			rs = append(rs, store.UIDRange{Start: u, Stop: u})
		}
	}
	return rs
}

// Delete removes the messages as an IMAP client would: flagged \Deleted,
// then expunged (those UIDs only), so that bodies nothing refers to any
// more are released and IMAP sessions see them go.
func (m *maildrop) Delete(ctx context.Context, uidls []string) error {
	rs := m.ranges(uidls)
	if len(rs) == 0 {
		return nil
	}
	if _, err := m.store.SetMailFlags(ctx, m.mailbox, m.folder, rs, store.FlagsAdd, []string{store.FlagDeleted}); err != nil {
		return err
	}
	_, err := m.store.ExpungeMail(ctx, m.mailbox, m.folder, rs)
	return err
}

// MarkSeen marks the messages RETR sent whole as read, as Exchange does.
func (m *maildrop) MarkSeen(ctx context.Context, uidls []string) error {
	rs := m.ranges(uidls)
	if len(rs) == 0 {
		return nil
	}
	_, err := m.store.SetMailFlags(ctx, m.mailbox, m.folder, rs, store.FlagsAdd, []string{store.FlagSeen})
	return err
}

func (m *maildrop) Close() error { return nil }
