package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// CASMailboxParams are Set-CASMailbox's parameters; nil means not given.
type CASMailboxParams struct {
	// SmtpClientAuthenticationDisabled: set when SetSmtpClientAuth is,
	// nil being $null (inherit the organization's).
	SetSmtpClientAuth                bool
	SmtpClientAuthenticationDisabled *bool
	ImapEnabled                      *bool
	PopEnabled                       *bool
}

// UpdateCASMailbox changes a mailbox's client access settings
// (Set-CASMailbox -SmtpClientAuthenticationDisabled -ImapEnabled -PopEnabled).
func (s *Service) UpdateCASMailbox(ctx context.Context, identity string, p CASMailboxParams) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cur, err := findMailbox(dir, org, identity)
		if err != nil {
			return err
		}
		m := *cur
		if p.SetSmtpClientAuth {
			m.SmtpClientAuthenticationDisabled = p.SmtpClientAuthenticationDisabled
		}
		if p.ImapEnabled != nil {
			m.ImapEnabled = *p.ImapEnabled
		}
		if p.PopEnabled != nil {
			m.PopEnabled = *p.PopEnabled
		}
		return storeError(s.Store.SaveMailbox(ctx, &m), "mailbox", m.Name)
	})
}

// PolicySwitches are the AllowBasicAuth* switches of an authentication
// policy Postern honours; nil means not given (Set-AuthenticationPolicy).
type PolicySwitches struct {
	AllowBasicAuthSmtp *bool
	AllowBasicAuthImap *bool
	AllowBasicAuthPop  *bool
}

func (p PolicySwitches) apply(pol *directory.AuthenticationPolicy) {
	for _, sw := range []struct {
		v   *bool
		dst *bool
	}{{p.AllowBasicAuthSmtp, &pol.AllowBasicAuthSmtp}, {p.AllowBasicAuthImap, &pol.AllowBasicAuthImap}, {p.AllowBasicAuthPop, &pol.AllowBasicAuthPop}} {
		if sw.v != nil {
			*sw.dst = *sw.v
		}
	}
}

// QuotaParams are Set-Mailbox's quota parameters: a byte count, or
// directory.Unlimited; nil means not given.
type QuotaParams struct {
	IssueWarningQuota        *int64
	ProhibitSendQuota        *int64
	ProhibitSendReceiveQuota *int64
}

// applyQuotas sets a mailbox's quotas and checks their order as Exchange
// does: IssueWarningQuota <= ProhibitSendQuota <= ProhibitSendReceiveQuota,
// Unlimited being above any size.
func applyQuotas(m *directory.Mailbox, p QuotaParams) error {
	for _, q := range []struct {
		v   *int64
		dst *int64
	}{{p.IssueWarningQuota, &m.IssueWarningQuota}, {p.ProhibitSendQuota, &m.ProhibitSendQuota}, {p.ProhibitSendReceiveQuota, &m.ProhibitSendReceiveQuota}} {
		if q.v != nil {
			*q.dst = *q.v
		}
	}
	order := []struct {
		name string
		v    int64
	}{{"IssueWarningQuota", m.IssueWarningQuota}, {"ProhibitSendQuota", m.ProhibitSendQuota}, {"ProhibitSendReceiveQuota", m.ProhibitSendReceiveQuota}}
	for i := 0; i < len(order); i++ {
		for j := i + 1; j < len(order); j++ {
			lo, hi := order[i], order[j]
			if lo.v != directory.Unlimited && (hi.v == directory.Unlimited || lo.v <= hi.v) {
				continue
			}
			if lo.v == directory.Unlimited && hi.v == directory.Unlimited {
				continue
			}
			return fmt.Errorf("Mailbox '%s': the value of %s (%s) must be less than or equal to that of %s (%s).",
				m.Name, lo.name, quotaText(lo.v), hi.name, quotaText(hi.v))
		}
	}
	return nil
}

// quotaText shows a quota as Exchange does: "99 GB (106,300,440,576
// bytes)", or Unlimited.
func quotaText(n int64) string {
	if n == directory.Unlimited {
		return "Unlimited"
	}
	return Size(n).String()
}

// MailboxStatistics is Get-MailboxStatistics' answer.
type MailboxStatistics struct {
	Mailbox   *directory.Mailbox
	ItemCount int64
	// TotalItemSize is the bytes in the mailbox's folders; the quotas
	// compare against it.
	TotalItemSize int64
}

// StorageLimitStatus is Exchange's name for where a mailbox stands against
// its quotas.
func (m MailboxStatistics) StorageLimitStatus() string {
	switch b := m.Mailbox; {
	case directory.OverQuota(m.TotalItemSize, b.ProhibitSendReceiveQuota):
		return "MailboxDisabled"
	case directory.OverQuota(m.TotalItemSize, b.ProhibitSendQuota):
		return "ProhibitSend"
	case directory.OverQuota(m.TotalItemSize, b.IssueWarningQuota):
		return "IssueWarning"
	case b.IssueWarningQuota == directory.Unlimited && b.ProhibitSendQuota == directory.Unlimited && b.ProhibitSendReceiveQuota == directory.Unlimited:
		return "NoChecking"
	}
	return "BelowLimit"
}

// MailboxStatistics sums a mailbox's folders (Get-MailboxStatistics).
func (s *Service) MailboxStatistics(ctx context.Context, identity string) (MailboxStatistics, error) {
	m, folders, err := s.FolderStatistics(ctx, identity)
	if err != nil {
		return MailboxStatistics{}, err
	}
	st := MailboxStatistics{Mailbox: m}
	for _, f := range folders {
		st.ItemCount += int64(f.ItemsInFolder)
		st.TotalItemSize += f.FolderSize
	}
	return st, nil
}

// Flusher writes sign-ins counted in memory (signin.Recorder); the server
// sets Service.SignIns so that the report includes the last minutes.
type Flusher interface {
	Flush(ctx context.Context) error
}

// SignInReportRow is a row of Get-MailboxSignInReport.
type SignInReportRow struct {
	store.SignIn
	Mailbox *directory.Mailbox
}

// maxSignInDays is how far back the sign-in report reaches, as the SMTP AUTH
// clients report (90 days).
const maxSignInDays = 90

// SignInReport lists successful sign-ins of the organization's mailboxes
// over a protocol ("" for all), of one mailbox (identity, or all), between
// two dates (the last 7 days by default, at most 90 days back).
func (s *Service) SignInReport(ctx context.Context, protocol, identity string, start, end time.Time) ([]SignInReportRow, error) {
	org := s.org()
	q := store.SignInQuery{OrgID: org.ID, Start: start, End: end, Limit: 5000}
	now := time.Now()
	if q.End.IsZero() {
		q.End = now
	}
	if q.Start.IsZero() {
		q.Start = q.End.AddDate(0, 0, -7)
	}
	if q.Start.Before(now.AddDate(0, 0, -maxSignInDays)) {
		q.Start = now.AddDate(0, 0, -maxSignInDays)
	}
	if q.End.Before(q.Start) {
		return nil, fmt.Errorf("The EndDate (%s) is earlier than the StartDate (%s).", q.End.Format(time.DateOnly), q.Start.Format(time.DateOnly))
	}
	if protocol != "" {
		p, err := parseProtocol(protocol)
		if err != nil {
			return nil, err
		}
		q.Protocol = p
	}
	dir := s.Dir.Load()
	if identity != "" {
		m, err := findMailbox(dir, org, identity)
		if err != nil {
			return nil, err
		}
		q.Mailbox = m.ID
	}
	if s.SignIns != nil {
		// The last minutes' counts; if they cannot be written now, the
		// recorder keeps them and the report shows what is stored.
		s.SignIns.Flush(ctx)
	}
	rows, err := s.Store.SignInReport(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]SignInReportRow, 0, len(rows))
	for _, r := range rows {
		if m := dir.Mailbox(r.Mailbox); m != nil && m.OrgID == org.ID {
			out = append(out, SignInReportRow{SignIn: r, Mailbox: m})
		}
	}
	return out, nil
}

// Protocols of the sign-in report, as Postern names them.
var signInProtocols = []string{"SMTP", "IMAP4", "POP3"}

func parseProtocol(v string) (string, error) {
	for _, p := range signInProtocols {
		if strings.EqualFold(v, p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("Cannot validate argument on parameter 'Protocol'. The argument \"%s\" does not belong to the set \"%s\".", v, strings.Join(signInProtocols, ","))
}
