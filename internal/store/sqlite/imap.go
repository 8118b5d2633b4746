package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"postern.dev/postern/internal/mailnotify"
	"postern.dev/postern/internal/store"
)

// Mail store access for IMAP4 (migration 013): folders carry UIDVALIDITY,
// UIDNEXT and HIGHESTMODSEQ; items a UID, flags and a MODSEQ; expunged
// UIDs are kept in folder_expunged with the MODSEQ of their removal, so a
// session can ask "what changed since MODSEQ n" with two indexed reads.

// System flags as bits of folder_items.sysflags.
const (
	flagSeen = 1 << iota
	flagAnswered
	flagFlagged
	flagDeleted
	flagDraft
)

var sysFlagNames = []struct {
	bit  int
	name string
}{
	{flagSeen, store.FlagSeen},
	{flagAnswered, store.FlagAnswered},
	{flagFlagged, store.FlagFlagged},
	{flagDeleted, store.FlagDeleted},
	{flagDraft, store.FlagDraft},
}

// splitFlags turns a flag list into sysflag bits and a keyword list
// (deduplicated without case, in the order given). \Recent and other
// unknown system flags are dropped: clients cannot set them.
func splitFlags(flags []string) (int, []string) {
	bits := 0
	var kw []string
flags:
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			for _, s := range sysFlagNames {
				if strings.EqualFold(f, s.name) {
					bits |= s.bit
				}
			}
			continue
		}
		if f == "" || strings.ContainsAny(f, " \t\r\n") {
			continue
		}
		for _, k := range kw {
			if strings.EqualFold(k, f) {
				continue flags
			}
		}
		kw = append(kw, f)
	}
	return bits, kw
}

// joinFlags is the inverse of splitFlags.
func joinFlags(bits int, keywords string) []string {
	out := make([]string, 0, 2)
	for _, s := range sysFlagNames {
		if bits&s.bit != 0 {
			out = append(out, s.name)
		}
	}
	if keywords != "" {
		out = append(out, strings.Fields(keywords)...)
	}
	return out
}

// maxKeywordsLength bounds an item's keyword list, so that no client can
// grow a row without limit.
const maxKeywordsLength = 2000

// firstUIDValidity is the UIDVALIDITY of a folder created now: seconds
// since 1970 (fits 32 bits until 2106).
func firstUIDValidity() int64 { return time.Now().Unix() }

// Watch subscribes to changes of a mailbox's folders.
func (s *Store) Watch(mailbox int64) *mailnotify.Subscription { return s.hub.Watch(mailbox) }

// Hub is the store's change notifier (for tests and for wiring another
// feed into it).
func (s *Store) Hub() *mailnotify.Hub { return s.hub }

const folderCols = `f.id, f.name, f.type, f.uid_validity, f.uid_next, f.highest_modseq, f.subscribed`

func scanFolder(rows interface{ Scan(...any) error }, f *store.MailFolder, counts bool) error {
	dest := []any{&f.ID, &f.Name, &f.Type, &f.UIDValidity, &f.UIDNext, &f.HighestModSeq, &f.Subscribed}
	if counts {
		dest = append(dest, &f.Messages, &f.Unseen, &f.Deleted, &f.Size)
	}
	return rows.Scan(dest...)
}

const folderCountsQuery = `SELECT ` + folderCols + `, COUNT(i.id), COALESCE(SUM(i.sysflags & 1 = 0), 0),
	COALESCE(SUM(i.sysflags & 8 != 0), 0), COALESCE(SUM(i.size), 0)
	FROM folders f LEFT JOIN folder_items i ON i.folder_id = f.id`

// MailFolders lists a mailbox's folders, in creation order, with counts.
func (s *Store) MailFolders(ctx context.Context, mailbox int64) ([]store.MailFolder, error) {
	var out []store.MailFolder
	err := each(ctx, s.r, folderCountsQuery+` WHERE f.mailbox_id = ? GROUP BY f.id ORDER BY f.id`, func(rows *sql.Rows) error {
		var f store.MailFolder
		if err := scanFolder(rows, &f, true); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	}, mailbox)
	return out, err
}

// MailFolderByName finds a folder by name, without case, with counts.
func (s *Store) MailFolderByName(ctx context.Context, mailbox int64, name string) (store.MailFolder, error) {
	var f store.MailFolder
	err := scanFolder(s.r.QueryRowContext(ctx, folderCountsQuery+` WHERE f.mailbox_id = ? AND f.name = ? COLLATE NOCASE GROUP BY f.id`,
		mailbox, name), &f, true)
	if err == sql.ErrNoRows {
		return f, fmt.Errorf("folder %q: %w", name, store.ErrNotFound)
	}
	return f, internal(err)
}

// folderState reads a folder's state (no counts), checking it is the
// mailbox's.
func folderState(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, mailbox, folder int64) (store.MailFolder, error) {
	var f store.MailFolder
	err := scanFolder(q.QueryRowContext(ctx, `SELECT `+folderCols+` FROM folders f WHERE f.id = ? AND f.mailbox_id = ?`,
		folder, mailbox), &f, false)
	if err == sql.ErrNoRows {
		return f, fmt.Errorf("folder %d of mailbox %d: %w", folder, mailbox, store.ErrNotFound)
	}
	return f, err
}

// readTx runs fn in one read transaction, so that what it reads is one
// snapshot.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return internal(err)
	}
	defer tx.Rollback()
	return internal(fn(tx))
}

// MailUIDs lists a folder's UIDs, ascending, with its state.
func (s *Store) MailUIDs(ctx context.Context, mailbox, folder int64) ([]uint32, store.MailFolder, error) {
	var uids []uint32
	var f store.MailFolder
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if f, err = folderState(ctx, tx, mailbox, folder); err != nil {
			return err
		}
		return each(ctx, tx, `SELECT uid, sysflags & 1 FROM folder_items WHERE folder_id = ? ORDER BY uid`, func(rows *sql.Rows) error {
			var u uint32
			var seen bool
			if err := rows.Scan(&u, &seen); err != nil {
				return err
			}
			if !seen && f.FirstUnseen == 0 {
				f.FirstUnseen = u
			}
			uids = append(uids, u)
			return nil
		}, folder)
	})
	return uids, f, err
}

// normalizeRanges sorts ranges and merges those that overlap or touch.
func normalizeRanges(in []store.UIDRange) []store.UIDRange {
	out := make([]store.UIDRange, 0, len(in))
	for _, r := range in {
		if r.Start > r.Stop {
			r.Start, r.Stop = r.Stop, r.Start
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b store.UIDRange) int { return int(int64(a.Start) - int64(b.Start)) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && uint64(r.Start) <= uint64(merged[n-1].Stop)+1 {
			merged[n-1].Stop = max(merged[n-1].Stop, r.Stop)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// inRanges reports whether uid is in the normalized ranges.
func inRanges(ranges []store.UIDRange, uid uint32) bool {
	i, _ := slices.BinarySearchFunc(ranges, uid, func(r store.UIDRange, u uint32) int {
		switch {
		case r.Stop < u:
			return -1
		case r.Start > u:
			return 1
		}
		return 0
	})
	return i < len(ranges) && ranges[i].Start <= uid && uid <= ranges[i].Stop
}

const itemCols = `uid, message, sysflags, keywords, size, received_at, modseq`

func scanItem(rows *sql.Rows) (store.MailItem, int, error) {
	var it store.MailItem
	var bits int
	var kw string
	var at int64
	if err := rows.Scan(&it.UID, &it.Message, &bits, &kw, &it.Size, &at, &it.ModSeq); err != nil {
		return it, 0, err
	}
	it.Flags = joinFlags(bits, kw)
	it.InternalDate = fromNanos(at)
	return it, bits, nil
}

// eachItem calls fn for the folder's items in the ranges (all for nil), by
// UID. A few ranges are read each through the UID index; many (a client
// may send thousands) are read as one span and filtered here, so the
// number of queries never grows with the client's input.
func eachItem(ctx context.Context, q querier, folder int64, uids []store.UIDRange, fn func(it store.MailItem, bits int) error) error {
	scan := func(rows *sql.Rows) error {
		it, bits, err := scanItem(rows)
		if err != nil {
			return err
		}
		return fn(it, bits)
	}
	if uids == nil {
		return each(ctx, q, `SELECT `+itemCols+` FROM folder_items WHERE folder_id = ? ORDER BY uid`, scan, folder)
	}
	ranges := normalizeRanges(uids)
	if len(ranges) == 0 {
		return nil
	}
	if len(ranges) <= 16 {
		for _, r := range ranges {
			if err := each(ctx, q, `SELECT `+itemCols+` FROM folder_items WHERE folder_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`,
				scan, folder, r.Start, r.Stop); err != nil {
				return err
			}
		}
		return nil
	}
	return each(ctx, q, `SELECT `+itemCols+` FROM folder_items WHERE folder_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`,
		func(rows *sql.Rows) error {
			it, bits, err := scanItem(rows)
			if err != nil || !inRanges(ranges, it.UID) {
				return err
			}
			return fn(it, bits)
		}, folder, ranges[0].Start, ranges[len(ranges)-1].Stop)
}

// MailItems lists the items in the UID ranges (all for nil), by UID.
func (s *Store) MailItems(ctx context.Context, mailbox, folder int64, uids []store.UIDRange) ([]store.MailItem, error) {
	var out []store.MailItem
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		if _, err := folderState(ctx, tx, mailbox, folder); err != nil {
			return err
		}
		return eachItem(ctx, tx, folder, uids, func(it store.MailItem, _ int) error {
			out = append(out, it)
			return nil
		})
	})
	return out, err
}

// MailChanges reports the items changed and the UIDs expunged since a
// MODSEQ.
func (s *Store) MailChanges(ctx context.Context, mailbox, folder int64, since uint64) (store.MailChanges, error) {
	var c store.MailChanges
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		f, err := folderState(ctx, tx, mailbox, folder)
		if err != nil {
			return err
		}
		c.UIDNext, c.HighestModSeq = f.UIDNext, f.HighestModSeq
		if f.HighestModSeq <= since {
			return nil
		}
		err = each(ctx, tx, `SELECT `+itemCols+` FROM folder_items WHERE folder_id = ? AND modseq > ? ORDER BY uid`,
			func(rows *sql.Rows) error {
				it, _, err := scanItem(rows)
				c.Changed = append(c.Changed, it)
				return err
			}, folder, since)
		if err != nil {
			return err
		}
		return each(ctx, tx, `SELECT uid FROM folder_expunged WHERE folder_id = ? AND modseq > ? ORDER BY uid`,
			func(rows *sql.Rows) error {
				var u uint32
				err := rows.Scan(&u)
				c.Expunged = append(c.Expunged, u)
				return err
			}, folder, since)
	})
	return c, err
}

// bumpModSeq takes the folder's next MODSEQ, returning the one before and
// the new one.
func bumpModSeq(ctx context.Context, tx *sql.Tx, folder int64) (prev, next uint64, err error) {
	err = tx.QueryRowContext(ctx, `UPDATE folders SET highest_modseq = highest_modseq + 1 WHERE id = ?
		RETURNING highest_modseq`, folder).Scan(&next)
	return next - 1, next, err
}

// appendMemoryLimit is the size up to which an appended message is kept in
// the database rather than in a body file.
const appendMemoryLimit = 64 << 10

// AppendMail stores a message into a folder. A body larger than
// appendMemoryLimit is streamed into a body file, made durable (data,
// then the directory entry) before the transaction that refers to it, as
// Commit does; a body over MaxSize stores nothing.
func (s *Store) AppendMail(ctx context.Context, a store.AppendMail) (store.AppendResult, error) {
	var res store.AppendResult
	head := make([]byte, 0, 4096)
	buf := bytes.NewBuffer(head)
	limited := io.LimitReader(a.Body, a.MaxSize+1)
	n, err := io.CopyN(buf, limited, appendMemoryLimit+1)
	if err != nil && err != io.EOF {
		return res, fmt.Errorf("reading the message: %w", err)
	}
	var file string
	size := n
	if n > appendMemoryLimit {
		file = newBodyName()
		path := filepath.Join(s.dir, BodiesDir, file)
		size, err = writeBodyFile(path, io.MultiReader(bytes.NewReader(buf.Bytes()), limited))
		if err != nil {
			os.Remove(path)
			return res, fmt.Errorf("storing the message: %w", err)
		}
		if size > a.MaxSize {
			os.Remove(path)
			return res, store.ErrTooBig
		}
		if err := s.syncBodiesDir(); err != nil {
			os.Remove(path)
			return res, fmt.Errorf("storing the message: %w", err)
		}
	} else if size > a.MaxSize {
		return res, store.ErrTooBig
	}
	messageID, subject := headerSummary(buf.Bytes())
	now := time.Now()
	date := a.Date
	if date.IsZero() {
		date = now
	}
	bits, kw := splitFlags(a.Flags)
	keywords := strings.Join(kw, " ")
	if len(keywords) > maxKeywordsLength {
		keywords = ""
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var org int64
		if err := tx.QueryRowContext(ctx, `SELECT m.org_id FROM mailboxes m JOIN folders f ON f.mailbox_id = m.id
			WHERE f.id = ? AND m.id = ?`, a.Folder, a.Mailbox).Scan(&org); err != nil {
			if err == sql.ErrNoRows {
				return fmt.Errorf("folder %d of mailbox %d: %w", a.Folder, a.Mailbox, store.ErrNotFound)
			}
			return err
		}
		var bodyFile any
		data := buf.Bytes()
		if file != "" {
			bodyFile, data = file, []byte{}
		}
		r, err := tx.ExecContext(ctx, `INSERT INTO messages (org_id, message_id, subject, received_at, envelope_from,
			client_ip, recipients, size, body, body_file, appended) VALUES (?, ?, ?, ?, '', '', 0, ?, x'', ?, 1)`,
			org, messageID, subject, nanos(now), size, bodyFile)
		if err != nil {
			return err
		}
		msg, err := r.LastInsertId()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO message_bodies (message, data) VALUES (?, ?)", msg, data); err != nil {
			return err
		}
		var uid int64
		var modseq uint64
		if err := tx.QueryRowContext(ctx, `UPDATE folders SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
			WHERE id = ? RETURNING uid_validity, uid_next - 1, highest_modseq`, a.Folder).Scan(&res.UIDValidity, &uid, &modseq); err != nil {
			return err
		}
		res.UID = uint32(uid)
		_, err = tx.ExecContext(ctx, `INSERT INTO folder_items (folder_id, message, received_at, uid, sysflags, keywords, modseq, size)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.Folder, msg, nanos(date), uid, bits, keywords, modseq, size)
		return err
	})
	if err != nil {
		if file != "" {
			s.removeBodies([]string{file})
		}
		return store.AppendResult{}, err
	}
	s.changed(a.Mailbox)
	return res, nil
}

// writeBodyFile writes r to a new file and makes its data durable.
func writeBodyFile(path string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// headerSummary reads the Message-ID and the decoded Subject from the
// start of a message, for the folder listings (Get-MailboxFolderStatistics
// shows items by subject); a message without a readable header has none.
func headerSummary(b []byte) (messageID, subject string) {
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		return "", ""
	}
	messageID = strings.Trim(strings.TrimSpace(m.Header.Get("Message-Id")), "<>")
	subject = m.Header.Get("Subject")
	if d, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = d
	}
	return truncate(messageID, 998), truncate(subject, 998)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// applyFlags computes an item's flags after a STORE.
func applyFlags(bits int, keywords string, op store.FlagOp, addBits int, addKw []string) (int, string) {
	kw := strings.Fields(keywords)
	switch op {
	case store.FlagsSet:
		bits, kw = addBits, addKw
	case store.FlagsAdd:
		bits |= addBits
		for _, k := range addKw {
			if !slices.ContainsFunc(kw, func(x string) bool { return strings.EqualFold(x, k) }) {
				kw = append(kw, k)
			}
		}
	case store.FlagsRemove:
		bits &^= addBits
		kw = slices.DeleteFunc(kw, func(x string) bool {
			return slices.ContainsFunc(addKw, func(k string) bool { return strings.EqualFold(x, k) })
		})
	}
	return bits, strings.Join(kw, " ")
}

// SetMailFlags changes the flags of the items in the UID ranges.
func (s *Store) SetMailFlags(ctx context.Context, mailbox, folder int64, uids []store.UIDRange, op store.FlagOp, flags []string) (store.FlagResult, error) {
	var res store.FlagResult
	addBits, addKw := splitFlags(flags)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		f, err := folderState(ctx, tx, mailbox, folder)
		if err != nil {
			return err
		}
		res.PrevModSeq, res.HighestModSeq = f.HighestModSeq, f.HighestModSeq
		type change struct {
			it   store.MailItem
			bits int
			kw   string
		}
		var changes []change
		err = eachItem(ctx, tx, folder, uids, func(it store.MailItem, bits int) error {
			oldKw := strings.Join(it.Flags[bitsCount(bits):], " ")
			nb, nk := applyFlags(bits, oldKw, op, addBits, addKw)
			if nb == bits && nk == oldKw {
				return nil
			}
			if len(nk) > maxKeywordsLength {
				return fmt.Errorf("%w: too many keywords on one message", store.ErrTooBig)
			}
			changes = append(changes, change{it, nb, nk})
			return nil
		})
		if err != nil || len(changes) == 0 {
			return err
		}
		// One MODSEQ for the whole operation (RFC 7162 section 3.1.3
		// allows messages changed together to share one).
		if res.PrevModSeq, res.HighestModSeq, err = bumpModSeq(ctx, tx, folder); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `UPDATE folder_items SET sysflags = ?, keywords = ?, modseq = ? WHERE folder_id = ? AND uid = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, c := range changes {
			if _, err := stmt.ExecContext(ctx, c.bits, c.kw, res.HighestModSeq, folder, c.it.UID); err != nil {
				return err
			}
			c.it.Flags = joinFlags(c.bits, c.kw)
			c.it.ModSeq = res.HighestModSeq
			res.Changed = append(res.Changed, c.it)
		}
		return nil
	})
	if err != nil {
		return store.FlagResult{}, err
	}
	if len(res.Changed) > 0 {
		s.changed(mailbox)
	}
	return res, nil
}

func bitsCount(bits int) int {
	n := 0
	for _, s := range sysFlagNames {
		if bits&s.bit != 0 {
			n++
		}
	}
	return n
}

// copyItems copies the items in the ranges into dest, inside tx.
func copyItems(ctx context.Context, tx *sql.Tx, mailbox, folder int64, uids []store.UIDRange, dest int64) (store.CopyResult, []store.MailItem, error) {
	var res store.CopyResult
	if _, err := folderState(ctx, tx, mailbox, folder); err != nil {
		return res, nil, err
	}
	d, err := folderState(ctx, tx, mailbox, dest)
	if err != nil {
		return res, nil, err
	}
	res.UIDValidity = d.UIDValidity
	type src struct {
		it   store.MailItem
		bits int
		kw   string
	}
	var items []src
	err = eachItem(ctx, tx, folder, uids, func(it store.MailItem, bits int) error {
		items = append(items, src{it, bits, strings.Join(it.Flags[bitsCount(bits):], " ")})
		return nil
	})
	if err != nil || len(items) == 0 {
		return res, nil, err
	}
	var first uint32
	var modseq uint64
	if err := tx.QueryRowContext(ctx, `UPDATE folders SET uid_next = uid_next + ?, highest_modseq = highest_modseq + 1
		WHERE id = ? RETURNING uid_next - ?, highest_modseq`, len(items), dest, len(items)).Scan(&first, &modseq); err != nil {
		return res, nil, err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO folder_items (folder_id, message, received_at, uid, sysflags, keywords, modseq, size)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return res, nil, err
	}
	defer stmt.Close()
	moved := make([]store.MailItem, 0, len(items))
	for i, it := range items {
		uid := first + uint32(i)
		// RFC 9051 section 6.4.7: the copy keeps the flags and the
		// internal date.
		if _, err := stmt.ExecContext(ctx, dest, it.it.Message, nanos(it.it.InternalDate), uid, it.bits, it.kw, modseq, it.it.Size); err != nil {
			return res, nil, err
		}
		res.Source = append(res.Source, it.it.UID)
		res.Dest = append(res.Dest, uid)
		moved = append(moved, it.it)
	}
	return res, moved, nil
}

// CopyMail copies items into another folder of the mailbox.
func (s *Store) CopyMail(ctx context.Context, mailbox, folder int64, uids []store.UIDRange, dest int64) (store.CopyResult, error) {
	var res store.CopyResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, _, err = copyItems(ctx, tx, mailbox, folder, uids, dest)
		return err
	})
	if err != nil {
		return store.CopyResult{}, err
	}
	if len(res.Source) > 0 {
		s.changed(mailbox)
	}
	return res, nil
}

// MoveMail copies items into another folder and removes them from their
// own, in one transaction (RFC 6851: atomic from the client's view).
func (s *Store) MoveMail(ctx context.Context, mailbox, folder int64, uids []store.UIDRange, dest int64) (store.CopyResult, store.ExpungeResult, error) {
	var res store.CopyResult
	var ex store.ExpungeResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var items []store.MailItem
		var err error
		if res, items, err = copyItems(ctx, tx, mailbox, folder, uids, dest); err != nil || len(items) == 0 {
			return err
		}
		// The bodies stay: the copies refer to them.
		ex, _, err = removeItems(ctx, tx, folder, items)
		return err
	})
	if err != nil {
		return store.CopyResult{}, store.ExpungeResult{}, err
	}
	if len(res.Source) > 0 {
		s.changed(mailbox)
	}
	return res, ex, nil
}

// removeItems deletes items from a folder, records their UIDs as expunged
// under a new MODSEQ, and returns the messages they referred to.
func removeItems(ctx context.Context, tx *sql.Tx, folder int64, items []store.MailItem) (store.ExpungeResult, []int64, error) {
	var ex store.ExpungeResult
	var err error
	if ex.PrevModSeq, ex.HighestModSeq, err = bumpModSeq(ctx, tx, folder); err != nil {
		return ex, nil, err
	}
	del, err := tx.PrepareContext(ctx, `DELETE FROM folder_items WHERE folder_id = ? AND uid = ?`)
	if err != nil {
		return ex, nil, err
	}
	defer del.Close()
	tomb, err := tx.PrepareContext(ctx, `INSERT INTO folder_expunged (folder_id, uid, modseq) VALUES (?, ?, ?)`)
	if err != nil {
		return ex, nil, err
	}
	defer tomb.Close()
	messages := make([]int64, 0, len(items))
	for _, it := range items {
		if _, err := del.ExecContext(ctx, folder, it.UID); err != nil {
			return ex, nil, err
		}
		if _, err := tomb.ExecContext(ctx, folder, it.UID, ex.HighestModSeq); err != nil {
			return ex, nil, err
		}
		ex.UIDs = append(ex.UIDs, it.UID)
		messages = append(messages, it.Message)
	}
	return ex, messages, nil
}

// ExpungeMail removes the items flagged \Deleted and gives back the bodies
// that nothing refers to any more (their metadata stays for message trace,
// with its Deliver event: the message was delivered, then deleted).
func (s *Store) ExpungeMail(ctx context.Context, mailbox, folder int64, uids []store.UIDRange) (store.ExpungeResult, error) {
	var ex store.ExpungeResult
	var rel released
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		f, err := folderState(ctx, tx, mailbox, folder)
		if err != nil {
			return err
		}
		ex.PrevModSeq, ex.HighestModSeq = f.HighestModSeq, f.HighestModSeq
		var items []store.MailItem
		err = eachItem(ctx, tx, folder, uids, func(it store.MailItem, bits int) error {
			if bits&flagDeleted != 0 {
				items = append(items, it)
			}
			return nil
		})
		if err != nil || len(items) == 0 {
			return err
		}
		var messages []int64
		if ex, messages, err = removeItems(ctx, tx, folder, items); err != nil {
			return err
		}
		rel, err = releaseBodies(ctx, tx, messages)
		return err
	})
	if err != nil {
		return store.ExpungeResult{}, err
	}
	s.removeReleased(rel)
	if len(ex.UIDs) > 0 {
		s.changed(mailbox)
	}
	return ex, nil
}

// folderByName finds a folder inside tx, without case.
func folderByName(ctx context.Context, tx *sql.Tx, mailbox int64, name string) (store.MailFolder, error) {
	var f store.MailFolder
	err := scanFolder(tx.QueryRowContext(ctx, `SELECT `+folderCols+` FROM folders f WHERE f.mailbox_id = ? AND f.name = ? COLLATE NOCASE`,
		mailbox, name), &f, false)
	if err == sql.ErrNoRows {
		return f, fmt.Errorf("folder %q: %w", name, store.ErrNotFound)
	}
	return f, err
}

// newUIDValidity is the UIDVALIDITY for a folder created now in a mailbox:
// greater than every one the mailbox ever had, so that a name deleted and
// created again never shows an old UIDVALIDITY with new UIDs (RFC 9051
// section 2.3.1.1). The high-water mark is kept on the mailbox's root
// folder (Top of Information Store), which is never deleted and never
// shown over IMAP.
func newUIDValidity(ctx context.Context, tx *sql.Tx, mailbox int64) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `UPDATE folders SET uid_validity = max(uid_validity + 1, ?,
			(SELECT COALESCE(MAX(uid_validity), 0) + 1 FROM folders WHERE mailbox_id = ?))
		WHERE mailbox_id = ? AND type = 'Root' RETURNING uid_validity`, firstUIDValidity(), mailbox, mailbox).Scan(&v)
	if err == sql.ErrNoRows {
		err = tx.QueryRowContext(ctx, `SELECT max(?, COALESCE(MAX(uid_validity), 0) + 1) FROM folders WHERE mailbox_id = ?`,
			firstUIDValidity(), mailbox).Scan(&v)
	}
	if err != nil {
		return 0, err
	}
	if v > 1<<32-1 {
		return 0, errors.New("UIDVALIDITY exhausted")
	}
	return v, nil
}

// createFolder creates a user folder and any missing folder above it
// (RFC 9051 section 6.3.4: the server creates superior names).
func createFolder(ctx context.Context, tx *sql.Tx, mailbox int64, name string) (store.MailFolder, error) {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], "/")
		if _, err := folderByName(ctx, tx, mailbox, parent); errors.Is(err, store.ErrNotFound) {
			if _, err := insertFolder(ctx, tx, mailbox, parent); err != nil {
				return store.MailFolder{}, err
			}
		} else if err != nil {
			return store.MailFolder{}, err
		}
	}
	if _, err := folderByName(ctx, tx, mailbox, name); err == nil {
		return store.MailFolder{}, fmt.Errorf("folder %q: %w", name, store.ErrConflict)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.MailFolder{}, err
	}
	return insertFolder(ctx, tx, mailbox, name)
}

func insertFolder(ctx context.Context, tx *sql.Tx, mailbox int64, name string) (store.MailFolder, error) {
	v, err := newUIDValidity(ctx, tx, mailbox)
	if err != nil {
		return store.MailFolder{}, err
	}
	var f store.MailFolder
	err = scanFolder(tx.QueryRowContext(ctx, `INSERT INTO folders (mailbox_id, name, type, uid_validity) VALUES (?, ?, ?, ?)
		RETURNING id, name, type, uid_validity, uid_next, highest_modseq, subscribed`, mailbox, name, store.FolderTypeUser, v), &f, false)
	if isConstraint(err) {
		return f, fmt.Errorf("folder %q: %w", name, store.ErrConflict)
	}
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return f, fmt.Errorf("mailbox %d: %w", mailbox, store.ErrNotFound)
	}
	return f, err
}

// CreateMailFolder creates a user folder.
func (s *Store) CreateMailFolder(ctx context.Context, mailbox int64, name string) (store.MailFolder, error) {
	var f store.MailFolder
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		f, err = createFolder(ctx, tx, mailbox, name)
		return err
	})
	return f, err
}

// RenameMailFolder renames a user folder and its subfolders; they keep
// their UIDVALIDITY and UIDs (the messages did not change).
func (s *Store) RenameMailFolder(ctx context.Context, mailbox int64, name, newName string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		f, err := folderByName(ctx, tx, mailbox, name)
		if err != nil {
			return err
		}
		if f.Type != store.FolderTypeUser {
			return fmt.Errorf("folder %q: %w", f.Name, store.ErrDefaultFolder)
		}
		if strings.EqualFold(newName, f.Name) || strings.HasPrefix(strings.ToLower(newName), strings.ToLower(f.Name)+"/") {
			if newName != f.Name && strings.EqualFold(newName, f.Name) {
				// Only the case changes.
				_, err := tx.ExecContext(ctx, `UPDATE folders SET name = ? WHERE id = ?`, newName, f.ID)
				return err
			}
			return fmt.Errorf("folder %q: %w", newName, store.ErrConflict)
		}
		if _, err := folderByName(ctx, tx, mailbox, newName); err == nil {
			return fmt.Errorf("folder %q: %w", newName, store.ErrConflict)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if i := strings.LastIndex(newName, "/"); i > 0 {
			parent := newName[:i]
			if _, err := folderByName(ctx, tx, mailbox, parent); errors.Is(err, store.ErrNotFound) {
				if _, err := createFolder(ctx, tx, mailbox, parent); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		// The folder, then its subfolders (names below it, compared
		// without case like every folder name).
		prefix := f.Name + "/"
		_, err = tx.ExecContext(ctx, `UPDATE folders SET name = ? || substr(name, ?)
			WHERE mailbox_id = ? AND (id = ? OR lower(substr(name, 1, ?)) = lower(?))`,
			newName, len(f.Name)+1, mailbox, f.ID, len(prefix), prefix)
		if isConstraint(err) {
			return fmt.Errorf("folder %q: %w", newName, store.ErrConflict)
		}
		return err
	})
}

// DeleteMailFolder deletes a user folder without subfolders, with its
// items, and releases the bodies nothing else refers to.
func (s *Store) DeleteMailFolder(ctx context.Context, mailbox int64, name string) error {
	var rel released
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		f, err := folderByName(ctx, tx, mailbox, name)
		if err != nil {
			return err
		}
		if f.Type != store.FolderTypeUser {
			return fmt.Errorf("folder %q: %w", f.Name, store.ErrDefaultFolder)
		}
		prefix := f.Name + "/"
		var children int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM folders WHERE mailbox_id = ? AND lower(substr(name, 1, ?)) = lower(?)`,
			mailbox, len(prefix), prefix).Scan(&children); err != nil {
			return err
		}
		if children > 0 {
			return fmt.Errorf("folder %q: %w", f.Name, store.ErrHasChildren)
		}
		var messages []int64
		if err := each(ctx, tx, `SELECT message FROM folder_items WHERE folder_id = ?`, func(rows *sql.Rows) error {
			var m int64
			err := rows.Scan(&m)
			messages = append(messages, m)
			return err
		}, f.ID); err != nil {
			return err
		}
		// The items first, while their folder still names the mailbox:
		// the trigger that keeps mailbox_sizes finds the mailbox through
		// the folder, which a cascade from the folder has already removed
		// (the size stayed too large, and counted against the quota).
		if _, err := tx.ExecContext(ctx, `DELETE FROM folder_items WHERE folder_id = ?`, f.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM folders WHERE id = ?`, f.ID); err != nil {
			return err
		}
		rel, err = releaseBodies(ctx, tx, messages)
		return err
	})
	if err != nil {
		return err
	}
	s.removeReleased(rel)
	s.changed(mailbox)
	return nil
}

// SubscribeMailFolder sets a folder's subscription (RFC 9051 section
// 6.3.7); every folder starts subscribed.
func (s *Store) SubscribeMailFolder(ctx context.Context, mailbox int64, name string, subscribed bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE folders SET subscribed = ? WHERE mailbox_id = ? AND name = ? COLLATE NOCASE`,
			subscribed, mailbox, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("folder %q: %w", name, store.ErrNotFound)
		}
		return nil
	})
}
