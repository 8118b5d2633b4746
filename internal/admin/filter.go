package admin

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// OutboundSpamPolicyParams are Set-HostedOutboundSpamFilterPolicy's
// parameters; nil means not given.
type OutboundSpamPolicyParams struct {
	RecipientLimitExternalPerHour *int
	RecipientLimitInternalPerHour *int
	RecipientLimitPerDay          *int
	ActionWhenThresholdReached    *string
}

// checkPolicyIdentity accepts the identity of an organization's one policy
// of a kind: Default (any case), or none.
func checkPolicyIdentity(identity string) error {
	if identity == "" || strings.EqualFold(strings.TrimSpace(identity), directory.DefaultPolicyName) {
		return nil
	}
	return fmt.Errorf("The operation couldn't be performed because object '%s' couldn't be found. Postern has one policy of this kind per organization, %s.", identity, directory.DefaultPolicyName)
}

// OutboundSpamPolicy returns the organization's outbound spam policy.
func (s *Service) OutboundSpamPolicy(identity string) (*directory.OutboundSpamFilterPolicy, error) {
	if err := checkPolicyIdentity(identity); err != nil {
		return nil, err
	}
	return s.Dir.Load().OutboundSpamFilterPolicy(s.org().ID), nil
}

// SetOutboundSpamPolicy changes the organization's outbound spam policy
// (Set-HostedOutboundSpamFilterPolicy -Identity Default): the recipient
// limits, 0 to 10000 with 0 for the service default, and the action.
func (s *Service) SetOutboundSpamPolicy(ctx context.Context, identity string, p OutboundSpamPolicyParams) error {
	if err := checkPolicyIdentity(identity); err != nil {
		return err
	}
	for name, v := range map[string]*int{"RecipientLimitExternalPerHour": p.RecipientLimitExternalPerHour,
		"RecipientLimitInternalPerHour": p.RecipientLimitInternalPerHour, "RecipientLimitPerDay": p.RecipientLimitPerDay} {
		if v != nil && (*v < 0 || *v > directory.MaxOutboundSpamLimit) {
			return invalidValue(name, fmt.Sprint(*v), fmt.Sprintf("the limit is 0 (the service default) to %d recipients", directory.MaxOutboundSpamLimit))
		}
	}
	action := ""
	if p.ActionWhenThresholdReached != nil {
		for _, a := range directory.OutboundSpamActions {
			if strings.EqualFold(a, strings.TrimSpace(*p.ActionWhenThresholdReached)) {
				action = a
			}
		}
		if action == "" {
			return fmt.Errorf("Cannot validate argument on parameter 'ActionWhenThresholdReached'. The argument \"%s\" does not belong to the set \"%s\".",
				*p.ActionWhenThresholdReached, strings.Join(directory.OutboundSpamActions, ","))
		}
	}
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		next := *dir.OutboundSpamFilterPolicy(org.ID)
		for dst, v := range map[*int]*int{&next.RecipientLimitExternalPerHour: p.RecipientLimitExternalPerHour,
			&next.RecipientLimitInternalPerHour: p.RecipientLimitInternalPerHour, &next.RecipientLimitPerDay: p.RecipientLimitPerDay} {
			if v != nil {
				*dst = *v
			}
		}
		if action != "" {
			next.ActionWhenThresholdReached = action
		}
		next.WhenChanged = time.Now().UTC()
		return storeError(s.Store.SaveOutboundSpamPolicy(ctx, &next), "outbound spam filter policy", directory.DefaultPolicyName)
	})
}

// ConnectionFilterParams are Set-HostedConnectionFilterPolicy's lists; nil
// means not given. Each takes a list, @{Add=...;Remove=...}, or $null to
// empty it.
type ConnectionFilterParams struct {
	IPAllowList *MultiValue
	IPBlockList *MultiValue
}

// ConnectionFilterPolicy returns the organization's connection filter policy.
func (s *Service) ConnectionFilterPolicy(identity string) (*directory.ConnectionFilterPolicy, error) {
	if err := checkPolicyIdentity(identity); err != nil {
		return nil, err
	}
	return s.Dir.Load().ConnectionFilterPolicy(s.org().ID), nil
}

// SetConnectionFilterPolicy changes the organization's IP Allow and Block
// Lists (Set-HostedConnectionFilterPolicy -Identity Default).
func (s *Service) SetConnectionFilterPolicy(ctx context.Context, identity string, p ConnectionFilterParams) error {
	if err := checkPolicyIdentity(identity); err != nil {
		return err
	}
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		next := *dir.ConnectionFilterPolicy(org.ID)
		var err error
		if next.IPAllowList, err = applyRanges("IPAllowList", next.IPAllowList, p.IPAllowList); err != nil {
			return err
		}
		if next.IPBlockList, err = applyRanges("IPBlockList", next.IPBlockList, p.IPBlockList); err != nil {
			return err
		}
		next.WhenChanged = time.Now().UTC()
		return storeError(s.Store.SaveConnectionFilterPolicy(ctx, &next), "connection filter policy", directory.DefaultPolicyName)
	})
}

// applyRanges applies a list parameter to a connection filter list,
// checking every entry and the list's size (at most 1273 entries).
func applyRanges(param string, current []directory.IPRange, v *MultiValue) ([]directory.IPRange, error) {
	if v == nil {
		return current, nil
	}
	cur := make([]string, len(current))
	for i, r := range current {
		cur[i] = r.String()
	}
	list, err := v.apply(cur, func(e string) (string, error) {
		r, err := directory.ParseIPRange(e)
		if err != nil {
			return "", invalidValue(param, e, err.Error())
		}
		return r.String(), nil
	})
	if err != nil {
		return nil, err
	}
	if len(list) > directory.MaxConnectionFilterEntries {
		return nil, fmt.Errorf("The %s can have at most %d entries (single addresses, ranges or CIDR IPs); %d were given.", param, directory.MaxConnectionFilterEntries, len(list))
	}
	out := make([]directory.IPRange, 0, len(list))
	for _, e := range list {
		r, _ := directory.ParseIPRange(e)
		out = append(out, r)
	}
	return out, nil
}

// BlockedSenders lists the organization's senders the outbound spam policy
// restricts now (Get-BlockedSenderAddress), or the one with an address.
func (s *Service) BlockedSenders(senderAddress string) ([]*directory.RestrictedSender, error) {
	org, now := s.org(), time.Now()
	want := ""
	if senderAddress != "" {
		a, err := address.Parse(strings.TrimSpace(senderAddress))
		if err != nil {
			return nil, invalidValue("SenderAddress", senderAddress, "give an email address")
		}
		want = a.Key()
	}
	var out []*directory.RestrictedSender
	for _, r := range s.Dir.Load().Contents().RestrictedSenders {
		if r.OrgID != org.ID || !r.Blocking(now) || (want != "" && r.SenderAddress != want) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// ReleaseBlockedSender removes a sender from the restricted entities list
// (Remove-BlockedSenderAddress): it may send again at once, and is not
// restricted again before the next UTC day (reference 4.2).
func (s *Service) ReleaseBlockedSender(ctx context.Context, senderAddress string) error {
	a, err := address.Parse(strings.TrimSpace(senderAddress))
	if err != nil {
		return invalidValue("SenderAddress", senderAddress, "give an email address")
	}
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		now := time.Now().UTC()
		var found *directory.RestrictedSender
		if m := dir.MailboxByAddress(a.Key()); m != nil && m.OrgID == org.ID {
			found = dir.RestrictedSender(m.ID)
		}
		if !found.Blocking(now) {
			return &kindError{ErrNotFound, fmt.Sprintf("The sender '%s' isn't on the restricted entities list.", a)}
		}
		r := *found
		r.ReleasedAt = now
		return storeError(s.Store.SaveRestrictedSender(ctx, &r), "blocked sender", a.String())
	})
}

// outboundSpamCaller names the outbound spam policy in the admin audit log,
// where its restrictions appear beside the admins' releases.
const outboundSpamCaller = "Outbound spam policy"

// RestrictSender puts a mailbox on the restricted entities list: what the
// SMTP path does when the outbound spam policy blocks a sender. It is
// recorded durably (a restart keeps it) and in the organization's admin
// audit log. Not a cmdlet: no admin can restrict a sender by hand in
// Exchange either.
func (s *Service) RestrictSender(ctx context.Context, r *directory.RestrictedSender) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.Store.SaveRestrictedSender(ctx, r)
	if rerr := s.reload(ctx); err == nil {
		err = rerr
	}
	e := store.AuditEntry{OrgID: r.OrgID, At: time.Now().UTC(), Caller: outboundSpamCaller, Cmdlet: "Add-BlockedSenderAddress",
		Parameters: fmt.Sprintf("-SenderAddress %s -Reason '%s'", r.SenderAddress, r.Reason), Object: r.SenderAddress, Succeeded: err == nil}
	if err != nil {
		e.Error = "The server failed to record the restriction (an internal error)."
	}
	if aerr := s.Store.AppendAudit(context.WithoutCancel(ctx), e); aerr != nil && err == nil {
		err = aerr
	}
	return err
}

// Password policy: Microsoft Entra ID's for cloud accounts, which Exchange
// Online mailboxes sign in with ("Password policies and account
// restrictions in Microsoft Entra ID",
// learn.microsoft.com/entra/identity/authentication/concept-password-policies):
// 8 to 256 characters, at least three of upper case letters, lower case
// letters, digits and symbols, and only the characters Entra allows (A-Z,
// a-z, 0-9, the ASCII symbols and the blank space; no other Unicode).
const (
	MinPasswordLength = 8
	MaxPasswordLength = 256
)

// checkPassword enforces the password policy; the error names the mailbox
// and the rule the password breaks.
func checkPassword(mailbox, password string) error {
	fail := func(rule string) error {
		return fmt.Errorf("Mailbox '%s': the password does not meet the password policy: %s.", mailbox, rule)
	}
	n := len([]rune(password))
	if n < MinPasswordLength {
		return fail(fmt.Sprintf("it must have at least %d characters", MinPasswordLength))
	}
	if n > MaxPasswordLength {
		return fail(fmt.Sprintf("it must have at most %d characters", MaxPasswordLength))
	}
	var upper, lower, digit, symbol bool
	for _, r := range password {
		switch {
		case r > unicode.MaxASCII || (r < ' ' || r == 0x7f):
			return fail("it may contain only the letters A-Z and a-z, the digits 0-9, the symbols @ # $ % ^ & * - _ ! + = [ ] { } | \\ : ' , . ? / ` ~ \" ( ) ; < > and spaces")
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		case r == ' ':
		default:
			symbol = true
		}
	}
	classes := 0
	for _, ok := range []bool{upper, lower, digit, symbol} {
		if ok {
			classes++
		}
	}
	if classes < 3 {
		return fail("it must contain characters of at least 3 of these 4 kinds: upper case letters, lower case letters, digits and symbols")
	}
	return nil
}
