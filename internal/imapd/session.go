package imapd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/mailnotify"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/store"
)

// session is one IMAP connection's backend.
type session struct {
	srv  *Server
	conn *imapserver.Conn
	ip   netip.Addr
	log  *slog.Logger

	preAuth  *time.Timer
	signedIn atomic.Bool
	byeOnce  sync.Once

	// Set at sign-in.
	acct  *Account
	watch *mailnotify.Subscription

	// authErr is the refusal behind the last failed SASL exchange.
	authErr error

	// mu guards sel: IDLE runs Poll in its own goroutine while the
	// command loop waits for DONE.
	mu  sync.Mutex
	sel *selected
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionSASL        = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

func (s *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

func (s *session) bye(text string) {
	s.byeOnce.Do(func() {
		go s.conn.Bye(text)
	})
}

func (s *session) Close() error {
	s.preAuth.Stop()
	s.mu.Lock()
	s.sel = nil
	s.mu.Unlock()
	if s.watch != nil {
		s.watch.Close()
	}
	s.srv.endSession(s)
	return nil
}

// Sign-in.

// Exchange Online's answers to refused credentials, from the reply
// catalogue.
const (
	loginFailed        = reply.IMAPLoginFailed
	authenticateFailed = reply.IMAPAuthenticateFailed
)

// refusal turns an Authenticator error into the tagged answer.
func (s *session) refusal(err error, generic string) *imap.Error {
	var ae *AuthError
	if !errors.As(err, &ae) {
		ae = &AuthError{Temporary: true, Err: err}
	}
	text := generic
	if ae.Text != "" {
		text = ae.Text
	}
	code := imap.ResponseCodeAuthenticationFailed
	if ae.Temporary {
		code = imap.ResponseCodeUnavailable
	}
	if ae.Close {
		if g := guardOf(s.conn.NetConn()); g != nil {
			g.closing.Store(true)
		}
	}
	s.log.Info("imap sign-in refused", "temporary", ae.Temporary, "error", err)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

func (s *session) signIn(a Account) {
	if a.MaxAppendSize <= 0 {
		a.MaxAppendSize = s.srv.opts.MaxAppendSize
	}
	s.acct = &a
	s.watch = s.srv.opts.Store.Watch(a.Mailbox)
	s.signedIn.Store(true)
	s.preAuth.Stop()
	s.log = s.log.With("mailbox", a.Address)
	s.log.Info("imap signed in", "actor", a.Actor)
}

func (s *session) Login(username, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	defer cancel()
	a, err := s.srv.opts.Auth.Basic(ctx, s.ip, username, password)
	if err != nil {
		return s.refusal(err, loginFailed)
	}
	s.signIn(a)
	return nil
}

// AuthenticateMechanisms are offered only once TLS is up (imapserver
// asks only then).
func (s *session) AuthenticateMechanisms() []string {
	return []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}
}

// The scope Exchange names in its error challenge for IMAP tokens.
const imapScope = "https://outlook.office.com/IMAP.AccessAsUser.All"

func (s *session) Authenticate(mech string) (sasl.Server, error) {
	s.authErr = nil
	var inner sasl.Server
	switch mech {
	case "PLAIN":
		inner = auth.NewPlainServer(func(username, password string) error {
			ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
			defer cancel()
			a, err := s.srv.opts.Auth.Basic(ctx, s.ip, username, password)
			if err != nil {
				s.authErr = err
				return err
			}
			s.signIn(a)
			return nil
		})
	case "XOAUTH2", "OAUTHBEARER":
		check := func(user, token string) error {
			ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
			defer cancel()
			a, err := s.srv.opts.Auth.OAuth(ctx, s.ip, user, token)
			if err != nil {
				s.authErr = err
				var ae *AuthError
				if !errors.As(err, &ae) || ae.Temporary {
					// No error challenge for a temporary failure: the
					// token may be fine (auth's token servers send one
					// only for 5xx).
					return &smtp.SMTPError{Code: 454}
				}
				return err
			}
			s.signIn(a)
			return nil
		}
		if mech == "XOAUTH2" {
			inner = auth.NewXOAuth2ServerScope(check, imapScope)
		} else {
			inner = auth.NewOAuthBearerServerScope(check, imapScope)
		}
	default:
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported authentication mechanism."}
	}
	return &saslAnswer{inner: inner, s: s}, nil
}

// saslAnswer turns the SASL servers' errors (SMTP replies, shared with
// SMTP AUTH) into IMAP's tagged answer.
type saslAnswer struct {
	inner sasl.Server
	s     *session
}

func (a *saslAnswer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := a.inner.Next(resp)
	if err == nil {
		return ch, done, nil
	}
	if a.s.authErr != nil {
		return nil, true, a.s.refusal(a.s.authErr, authenticateFailed)
	}
	// A malformed message: the same answer as wrong credentials.
	return nil, true, a.s.refusal(&AuthError{Err: err}, authenticateFailed)
}

// AppendLimit is the signed-in account's (APPENDLIMIT, RFC 7889); before
// sign-in nothing may be appended, so an APPEND literal is refused before
// it is read.
func (s *session) AppendLimit() uint32 {
	if s.acct == nil {
		return 0
	}
	return uint32(min(s.acct.MaxAppendSize, 1<<32-1))
}

// Folders.

func (s *session) Namespace() (*imap.NamespaceData, error) {
	// Exchange Online: * NAMESPACE (("" "/")) NIL NIL.
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// storeErr maps store errors to IMAP answers (RFC 5530 response codes).
func (s *session) storeErr(err error, what string) error {
	var ie *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return err
	case errors.Is(err, store.ErrNotFound):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "The folder doesn't exist."}
	case errors.Is(err, store.ErrConflict):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "A folder with that name already exists."}
	case errors.Is(err, store.ErrDefaultFolder):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "A default folder can't be renamed or deleted."}
	case errors.Is(err, store.ErrHasChildren):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeHasChildren, Text: "The folder has subfolders; delete them first."}
	case errors.Is(err, store.ErrTooBig):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "The message is too big."}
	}
	s.log.Error("imap "+what, "error", err)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Server unavailable. Try again later."}
}

// folder finds a visible folder by its IMAP name.
func (s *session) folder(ctx context.Context, name string) (store.MailFolder, error) {
	sn, ok := storeName(name)
	if !ok {
		return store.MailFolder{}, store.ErrNotFound
	}
	f, err := s.srv.opts.Store.MailFolderByName(ctx, s.acct.Mailbox, sn)
	if err == nil && hiddenType(f.Type) {
		return f, store.ErrNotFound
	}
	return f, err
}

func (s *session) Create(name string, _ *imap.CreateOptions) error {
	sn, err := checkNewName(name)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if s.shadowsHidden(ctx, sn) {
		return s.storeErr(store.ErrConflict, "create")
	}
	_, err = s.srv.opts.Store.CreateMailFolder(ctx, s.acct.Mailbox, sn)
	return s.storeErr(err, "create")
}

// shadowsHidden reports whether a new name is, or would sit under, a
// folder IMAP does not show (Top of Information Store, Outbox).
func (s *session) shadowsHidden(ctx context.Context, sn string) bool {
	top, _, _ := strings.Cut(sn, delimStr)
	f, err := s.srv.opts.Store.MailFolderByName(ctx, s.acct.Mailbox, top)
	return err == nil && hiddenType(f.Type)
}

func (s *session) Delete(name string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	f, err := s.folder(ctx, name)
	if err != nil {
		return s.storeErr(err, "delete")
	}
	return s.storeErr(s.srv.opts.Store.DeleteMailFolder(ctx, s.acct.Mailbox, f.Name), "delete")
}

func (s *session) Rename(name, newName string, _ *imap.RenameOptions) error {
	sn, err := checkNewName(newName)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	f, err := s.folder(ctx, name)
	if err != nil {
		return s.storeErr(err, "rename")
	}
	if s.shadowsHidden(ctx, sn) {
		return s.storeErr(store.ErrConflict, "rename")
	}
	return s.storeErr(s.srv.opts.Store.RenameMailFolder(ctx, s.acct.Mailbox, f.Name, sn), "rename")
}

func (s *session) Subscribe(name string) error   { return s.subscribe(name, true) }
func (s *session) Unsubscribe(name string) error { return s.subscribe(name, false) }

func (s *session) subscribe(name string, on bool) error {
	ctx, cancel := s.ctx()
	defer cancel()
	f, err := s.folder(ctx, name)
	if err != nil {
		return s.storeErr(err, "subscribe")
	}
	return s.storeErr(s.srv.opts.Store.SubscribeMailFolder(ctx, s.acct.Mailbox, f.Name, on), "subscribe")
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter (RFC 9051 section 6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	ctx, cancel := s.ctx()
	defer cancel()
	folders, err := s.srv.opts.Store.MailFolders(ctx, s.acct.Mailbox)
	if err != nil {
		return s.storeErr(err, "list")
	}
	visible := folders[:0]
	for _, f := range folders {
		if !hiddenType(f.Type) {
			visible = append(visible, f)
		}
	}
	for _, f := range sortFolders(visible) {
		name := imapName(f.Name)
		match := false
		for _, p := range patterns {
			if matchListPattern(name, ref, p) {
				match = true
				break
			}
		}
		if !match || (options.SelectSubscribed && !f.Subscribed) {
			continue
		}
		use := specialUse(f.Type)
		if options.SelectSpecialUse && use == "" {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: delim}
		if hasChildren(visible, f.Name) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if f.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		// Exchange lists the special-use attributes without being asked
		// (RFC 6154 section 2 allows it).
		if use != "" {
			data.Attrs = append(data.Attrs, use)
		}
		if options.ReturnStatus != nil {
			data.Status = statusData(name, f, options.ReturnStatus, s.acct)
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func statusData(name string, f store.MailFolder, o *imap.StatusOptions, a *Account) *imap.StatusData {
	d := &imap.StatusData{Mailbox: name}
	if o.NumMessages {
		n := uint32(f.Messages)
		d.NumMessages = &n
	}
	if o.UIDNext {
		d.UIDNext = imap.UID(f.UIDNext)
	}
	if o.UIDValidity {
		d.UIDValidity = f.UIDValidity
	}
	if o.NumUnseen {
		n := uint32(f.Unseen)
		d.NumUnseen = &n
	}
	if o.NumDeleted {
		n := uint32(f.Deleted)
		d.NumDeleted = &n
	}
	if o.Size {
		n := f.Size
		d.Size = &n
	}
	if o.NumRecent {
		var n uint32
		d.NumRecent = &n
	}
	if o.AppendLimit {
		n := uint32(min(a.MaxAppendSize, 1<<32-1))
		d.AppendLimit = &n
	}
	return d
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	f, err := s.folder(ctx, name)
	if err != nil {
		return nil, s.storeErr(err, "status")
	}
	return statusData(imapName(f.Name), f, options, s.acct), nil
}

func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	f, err := s.folder(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		// RFC 9051 section 6.3.12: TRYCREATE when the folder is missing.
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "The folder doesn't exist."}
	}
	if err != nil {
		return nil, s.storeErr(err, "append")
	}
	// A mailbox over its ProhibitSendReceiveQuota takes nothing more, from
	// SMTP (552 5.2.2) or from a client's APPEND: OVERQUOTA (RFC 9208
	// section 4.3), before the message is stored.
	if q := s.acct.Quota; q > 0 && s.srv.opts.Store.MailboxSize(s.acct.Mailbox)+r.Size() > q {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "The mailbox is full."}
	}
	flags := make([]string, 0, len(options.Flags))
	for _, fl := range options.Flags {
		flags = append(flags, string(fl))
	}
	res, err := s.srv.opts.Store.AppendMail(ctx, store.AppendMail{
		Mailbox: s.acct.Mailbox, Folder: f.ID, Body: &exactReader{r: r, left: r.Size()}, MaxSize: s.acct.MaxAppendSize,
		Flags: flags, Date: options.Time,
	})
	if err != nil {
		return nil, s.storeErr(err, "append")
	}
	return &imap.AppendData{UIDValidity: res.UIDValidity, UID: imap.UID(res.UID)}, nil
}

// exactReader fails a literal that ends before its announced size (the
// client went away mid-APPEND): the store must not keep a truncated
// message.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(b []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > e.left {
		b = b[:e.left]
	}
	n, err := e.r.Read(b)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
