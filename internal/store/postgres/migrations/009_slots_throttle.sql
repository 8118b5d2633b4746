-- Limits several nodes share (issue 14): each mailbox's concurrent SMTP
-- AUTH connections (limits.ConnectionSlots) and each client address's
-- failed sign-ins (auth.AddressThrottle), counted in the database so that
-- spreading connections or guesses over the nodes gains nothing.

-- connection_slots: one row per connection slot held, named by the node
-- holding it (its queue node name) and a number that node gave it. A slot
-- counts while its lease runs: the holding node renews the leases of the
-- slots it holds (a heartbeat, every third of the lease) and deletes its
-- rows when their connections end, so that the slots of a node that died
-- (SIGKILL, power loss) come free when their leases end, without anyone
-- cleaning up after it. Times are the database's clock, the one clock all
-- nodes share.
CREATE TABLE connection_slots (
	node       TEXT NOT NULL,
	holder     BIGINT NOT NULL,
	mailbox_id BIGINT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (node, holder)
);
CREATE INDEX connection_slots_mailbox ON connection_slots (mailbox_id);

-- postern_acquire_slot takes one of mailbox mb's max_slots connection
-- slots for (node_id, holder_id) with a lease of lease_ms, if one is free,
-- and says whether it did: one round trip per authenticated connection.
-- Slots whose lease ended are free and their rows go. A
-- transaction-scoped advisory lock on the mailbox (two-key form, class 2;
-- class 1 is postern_reserve_send's) makes acquisitions of one mailbox,
-- from any node, run one at a time, so two nodes never both take the
-- last slot. As for the sending counters, the commit does not wait for
-- the WAL flush: a database crash can forget a slot taken in its last
-- moment (then a mailbox may briefly hold one connection more), whereas
-- waiting would add a disk flush to every sign-in.
CREATE FUNCTION postern_acquire_slot(mb BIGINT, node_id TEXT, holder_id BIGINT, max_slots INTEGER, lease_ms BIGINT)
RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
	held INTEGER;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	PERFORM pg_advisory_xact_lock(2, hashint8(mb));
	DELETE FROM connection_slots WHERE mailbox_id = mb AND expires_at <= clock_timestamp();
	SELECT COUNT(*) INTO held FROM connection_slots WHERE mailbox_id = mb;
	IF held >= max_slots THEN
		RETURN false;
	END IF;
	INSERT INTO connection_slots (node, holder, mailbox_id, expires_at)
		VALUES (node_id, holder_id, mb, clock_timestamp() + lease_ms * INTERVAL '1 millisecond');
	RETURN true;
END;
$$;

-- postern_release_slot frees a slot when its connection ends. Its commit
-- does not wait for the WAL flush either: a database crash can at worst
-- bring back a released slot's row, which the holding node's next
-- heartbeat deletes (it no longer holds that slot).
CREATE FUNCTION postern_release_slot(node_id TEXT, holder_id BIGINT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	DELETE FROM connection_slots WHERE node = node_id AND holder = holder_id;
END;
$$;

-- auth_failures: the failed sign-ins of each client address (IPv4, or an
-- IPv6 /64), auth.Throttle's table shared by every node. Times are the
-- nodes' clocks in Unix milliseconds, as the in-memory throttle's are the
-- node's. inflight counts attempts reserved and not yet ended; it counts
-- only until inflight_until (renewed by every reservation), so that the
-- attempts of a node that died while checking them stop holding the
-- address's budget after a while instead of for ever.
CREATE TABLE auth_failures (
	source         TEXT PRIMARY KEY,
	failures       INTEGER NOT NULL DEFAULT 0,
	inflight       INTEGER NOT NULL DEFAULT 0,
	inflight_until BIGINT NOT NULL DEFAULT 0,
	last_ms        BIGINT NOT NULL DEFAULT 0,
	blocked_until  BIGINT NOT NULL DEFAULT 0
);

-- auth_failures_size counts auth_failures' rows, so that the cap on
-- tracked addresses (ThrottleConfig.MaxTracked) is kept without counting
-- the table at every new address: a flood from many addresses cannot grow
-- the table without bound.
CREATE TABLE auth_failures_size (
	one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
	n   BIGINT NOT NULL
);
INSERT INTO auth_failures_size VALUES (true, 0);

-- postern_throttle_sweep drops the records that no longer count (not
-- blocked, their failures out of the window, no attempt in flight), then,
-- while more than keep remain (keep < 0: no cap), arbitrary ones without
-- attempts in flight, then any, as auth.Throttle's sweep does; it sets and
-- returns the row count. The caller holds or takes the size row's lock.
CREATE FUNCTION postern_throttle_sweep(now_ms BIGINT, window_ms BIGINT, keep BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
	cnt BIGINT;
BEGIN
	PERFORM 1 FROM auth_failures_size FOR UPDATE;
	DELETE FROM auth_failures WHERE blocked_until <= now_ms AND now_ms - last_ms > window_ms
		AND (inflight = 0 OR inflight_until <= now_ms);
	SELECT COUNT(*) INTO cnt FROM auth_failures;
	IF keep >= 0 AND cnt > keep THEN
		DELETE FROM auth_failures WHERE source IN (SELECT source FROM auth_failures
			WHERE inflight = 0 OR inflight_until <= now_ms LIMIT cnt - keep);
		SELECT COUNT(*) INTO cnt FROM auth_failures;
	END IF;
	IF keep >= 0 AND cnt > keep THEN
		DELETE FROM auth_failures WHERE source IN (SELECT source FROM auth_failures LIMIT cnt - keep);
		SELECT COUNT(*) INTO cnt FROM auth_failures;
	END IF;
	UPDATE auth_failures_size SET n = cnt;
	RETURN cnt;
END;
$$;

-- postern_throttle_new makes src's record (the size row's lock held until
-- commit), sweeping the table down to nine tenths of max_tracked first
-- when it is full. The caller holds src's advisory lock.
CREATE FUNCTION postern_throttle_new(src TEXT, now_ms BIGINT, window_ms BIGINT, max_tracked INTEGER) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
	cnt BIGINT;
BEGIN
	SELECT n INTO cnt FROM auth_failures_size FOR UPDATE;
	IF cnt >= max_tracked THEN
		cnt := postern_throttle_sweep(now_ms, window_ms, max_tracked - max_tracked / 10 - 1);
	END IF;
	UPDATE auth_failures_size SET n = cnt + 1;
	INSERT INTO auth_failures (source) VALUES (src);
END;
$$;

-- postern_throttle_reserve is auth.Throttle.Reserve in one round trip:
-- verdict 0 (admit: one more attempt in flight), 1 (blocked) or 2
-- (pending: failures and attempts in flight fill the budget), and the
-- address's failures, from which the caller computes the delay. A
-- transaction-scoped advisory lock on the address (class 3) makes the
-- reservations of one address, from any node, run one at a time.
CREATE FUNCTION postern_throttle_reserve(src TEXT, now_ms BIGINT, window_ms BIGINT, block_after INTEGER,
	max_tracked INTEGER, flight_ms BIGINT, OUT verdict INTEGER, OUT failure_count INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
	f auth_failures%ROWTYPE;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	PERFORM pg_advisory_xact_lock(3, hashtext(src));
	SELECT * INTO f FROM auth_failures WHERE source = src;
	IF NOT FOUND THEN
		PERFORM postern_throttle_new(src, now_ms, window_ms, max_tracked);
		SELECT * INTO f FROM auth_failures WHERE source = src;
		f.last_ms := now_ms;
	END IF;
	IF f.inflight_until <= now_ms THEN
		f.inflight := 0;
	END IF;
	IF now_ms < f.blocked_until THEN
		verdict := 1;
		failure_count := f.failures;
		RETURN;
	END IF;
	IF now_ms - f.last_ms > window_ms THEN
		-- The failures left the window: the address starts afresh.
		f.failures := 0;
		IF f.inflight = 0 THEN
			f.last_ms := now_ms;
		END IF;
	END IF;
	failure_count := f.failures;
	IF f.failures + f.inflight >= block_after THEN
		verdict := 2;
	ELSE
		verdict := 0;
		f.inflight := f.inflight + 1;
		f.inflight_until := now_ms + flight_ms;
	END IF;
	UPDATE auth_failures SET failures = f.failures, inflight = f.inflight, inflight_until = f.inflight_until,
		last_ms = f.last_ms WHERE source = src;
END;
$$;

-- postern_throttle_done is auth.Attempt.Done in one round trip: the
-- attempt leaves the flight; a failure is counted and the BLOCK_AFTER-th
-- blocks the address for block_for_ms, after which it starts afresh.
CREATE FUNCTION postern_throttle_done(src TEXT, now_ms BIGINT, failed BOOLEAN, window_ms BIGINT, block_after INTEGER,
	block_for_ms BIGINT, max_tracked INTEGER) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
	f auth_failures%ROWTYPE;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	PERFORM pg_advisory_xact_lock(3, hashtext(src));
	SELECT * INTO f FROM auth_failures WHERE source = src;
	IF NOT FOUND THEN
		-- Swept while in flight (the table was full).
		IF NOT failed THEN
			RETURN;
		END IF;
		PERFORM postern_throttle_new(src, now_ms, window_ms, max_tracked);
		SELECT * INTO f FROM auth_failures WHERE source = src;
	END IF;
	IF f.inflight_until <= now_ms THEN
		f.inflight := 0;
	END IF;
	IF now_ms >= f.blocked_until AND now_ms - f.last_ms > window_ms THEN
		f.failures := 0;
		IF f.inflight = 0 THEN
			-- The record had expired: as a new one.
			f.blocked_until := 0;
		END IF;
	END IF;
	IF f.inflight > 0 THEN
		f.inflight := f.inflight - 1;
	END IF;
	IF failed THEN
		f.failures := f.failures + 1;
		f.last_ms := now_ms;
		IF f.failures >= block_after THEN
			f.blocked_until := now_ms + block_for_ms;
			f.failures := 0;
		END IF;
	END IF;
	UPDATE auth_failures SET failures = f.failures, inflight = f.inflight, last_ms = f.last_ms,
		blocked_until = f.blocked_until WHERE source = src;
END;
$$;

-- lockout_accounts: auth.Lockout's failure records (the per-account smart
-- lockout), one per account key (a mailbox, or a name tried), shared by
-- every node. bad holds the keyed digests of the last three wrong
-- passwords counted, newest first (the key is derived from the nodes'
-- shared secret key, so a copy of the database cannot test guesses
-- against them). inflight counts only until inflight_until, as in
-- auth_failures. Times are Unix milliseconds of the nodes' clocks.
CREATE TABLE lockout_accounts (
	account        TEXT PRIMARY KEY,
	failures       INTEGER NOT NULL DEFAULT 0,
	inflight       INTEGER NOT NULL DEFAULT 0,
	inflight_until BIGINT NOT NULL DEFAULT 0,
	level          INTEGER NOT NULL DEFAULT 0,
	last_ms        BIGINT NOT NULL DEFAULT 0,
	locked_until   BIGINT NOT NULL DEFAULT 0,
	bad            BIGINT[] NOT NULL DEFAULT '{}'
);

-- lockout_familiar: the addresses (IPv4, or IPv6 /64) each account
-- signed in from with the right password, and when; at most
-- FamiliarPerAccount per account, the most recent (seq orders those of
-- one millisecond as they came).
CREATE TABLE lockout_familiar (
	account TEXT NOT NULL,
	source  TEXT NOT NULL,
	seen_ms BIGINT NOT NULL,
	seq     BIGINT GENERATED ALWAYS AS IDENTITY,
	PRIMARY KEY (account, source)
);

-- lockout_size counts the accounts of each table, for the cap
-- (LockoutConfig.MaxAccounts) without counting a table at every new one.
CREATE TABLE lockout_size (
	tbl TEXT PRIMARY KEY,
	n   BIGINT NOT NULL
);
INSERT INTO lockout_size VALUES ('accounts', 0), ('familiar', 0);

-- postern_lockout_sweep drops the failure records that no longer count,
-- then, while more than keep remain (keep < 0: no cap), arbitrary ones
-- neither locked nor in flight, then any, as auth.Lockout's sweep does.
CREATE FUNCTION postern_lockout_sweep(now_ms BIGINT, window_ms BIGINT, keep BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
	cnt BIGINT;
BEGIN
	PERFORM 1 FROM lockout_size WHERE tbl = 'accounts' FOR UPDATE;
	DELETE FROM lockout_accounts WHERE now_ms - GREATEST(last_ms, locked_until) > window_ms
		AND (inflight = 0 OR inflight_until <= now_ms);
	SELECT COUNT(*) INTO cnt FROM lockout_accounts;
	IF keep >= 0 AND cnt > keep THEN
		DELETE FROM lockout_accounts WHERE account IN (SELECT account FROM lockout_accounts
			WHERE (inflight = 0 OR inflight_until <= now_ms) AND locked_until <= now_ms LIMIT cnt - keep);
		SELECT COUNT(*) INTO cnt FROM lockout_accounts;
	END IF;
	IF keep >= 0 AND cnt > keep THEN
		DELETE FROM lockout_accounts WHERE account IN (SELECT account FROM lockout_accounts LIMIT cnt - keep);
		SELECT COUNT(*) INTO cnt FROM lockout_accounts;
	END IF;
	UPDATE lockout_size SET n = cnt WHERE tbl = 'accounts';
	RETURN cnt;
END;
$$;

-- postern_lockout_sweep_familiar drops expired familiar addresses, then
-- arbitrary accounts' lists while more than keep accounts remain.
CREATE FUNCTION postern_lockout_sweep_familiar(now_ms BIGINT, familiar_ms BIGINT, keep BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
	cnt BIGINT;
BEGIN
	PERFORM 1 FROM lockout_size WHERE tbl = 'familiar' FOR UPDATE;
	DELETE FROM lockout_familiar WHERE now_ms - seen_ms > familiar_ms;
	SELECT COUNT(DISTINCT account) INTO cnt FROM lockout_familiar;
	IF keep >= 0 AND cnt > keep THEN
		DELETE FROM lockout_familiar WHERE account IN (SELECT DISTINCT account FROM lockout_familiar LIMIT cnt - keep);
		SELECT COUNT(DISTINCT account) INTO cnt FROM lockout_familiar;
	END IF;
	UPDATE lockout_size SET n = cnt WHERE tbl = 'familiar';
	RETURN cnt;
END;
$$;

-- postern_lockout_begin is auth.Lockout.Begin in one round trip: whether
-- src is familiar for acct (then nothing is counted), else whether acct
-- is locked (locked, or failures and attempts in flight fill the
-- threshold), else one more attempt in flight. A transaction-scoped
-- advisory lock on the account (class 4) makes the sign-ins of one
-- account, from any node, run one at a time.
CREATE FUNCTION postern_lockout_begin(acct TEXT, src TEXT, now_ms BIGINT, threshold INTEGER, window_ms BIGINT,
	familiar_ms BIGINT, max_accounts INTEGER, flight_ms BIGINT, OUT familiar BOOLEAN, OUT locked BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
	a lockout_accounts%ROWTYPE;
	cnt BIGINT;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	PERFORM pg_advisory_xact_lock(4, hashtext(acct));
	familiar := EXISTS (SELECT 1 FROM lockout_familiar f WHERE f.account = acct AND f.source = src
		AND now_ms - f.seen_ms <= familiar_ms);
	locked := false;
	IF familiar THEN
		RETURN;
	END IF;
	SELECT * INTO a FROM lockout_accounts WHERE account = acct;
	IF FOUND THEN
		IF a.inflight_until <= now_ms THEN
			a.inflight := 0;
		END IF;
		IF now_ms - GREATEST(a.last_ms, a.locked_until) > window_ms THEN
			-- Expired: a fresh record, keeping the attempts in flight.
			a.failures := 0; a.level := 0; a.locked_until := 0; a.bad := '{}'; a.last_ms := now_ms;
		END IF;
		IF now_ms < a.locked_until OR a.failures + a.inflight >= threshold THEN
			locked := true;
		END IF;
	ELSE
		SELECT n INTO cnt FROM lockout_size WHERE tbl = 'accounts' FOR UPDATE;
		IF cnt >= max_accounts THEN
			cnt := postern_lockout_sweep(now_ms, window_ms, max_accounts - max_accounts / 10 - 1);
		END IF;
		UPDATE lockout_size SET n = cnt + 1 WHERE tbl = 'accounts';
		INSERT INTO lockout_accounts (account) VALUES (acct);
		SELECT * INTO a FROM lockout_accounts WHERE account = acct;
		a.last_ms := now_ms;
	END IF;
	IF NOT locked THEN
		a.inflight := a.inflight + 1;
		a.inflight_until := now_ms + flight_ms;
	END IF;
	UPDATE lockout_accounts SET failures = a.failures, inflight = a.inflight, inflight_until = a.inflight_until,
		level = a.level, last_ms = a.last_ms, locked_until = a.locked_until, bad = a.bad WHERE account = acct;
END;
$$;

-- postern_lockout_done is auth.SignIn.Done in one round trip: a right
-- password makes src familiar for acct (the most recent per_account
-- addresses are kept); the attempt leaves the flight; a wrong one, unless
-- src is familiar or the same wrong password was counted recently, is
-- counted, and the threshold-th locks the account for duration_ms
-- doubling with each lockout in a run, at most max_duration_ms, after
-- which the first failure locks it again.
CREATE FUNCTION postern_lockout_done(acct TEXT, src TEXT, is_familiar BOOLEAN, failed BOOLEAN, succeeded BOOLEAN,
	digest BIGINT, now_ms BIGINT, threshold INTEGER, window_ms BIGINT, duration_ms BIGINT, max_duration_ms BIGINT,
	familiar_ms BIGINT, per_account INTEGER, max_accounts INTEGER) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
	a lockout_accounts%ROWTYPE;
	cnt BIGINT;
	d BIGINT;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	PERFORM pg_advisory_xact_lock(4, hashtext(acct));
	IF succeeded THEN
		IF NOT EXISTS (SELECT 1 FROM lockout_familiar f WHERE f.account = acct) THEN
			SELECT n INTO cnt FROM lockout_size WHERE tbl = 'familiar' FOR UPDATE;
			IF cnt >= max_accounts THEN
				cnt := postern_lockout_sweep_familiar(now_ms, familiar_ms, max_accounts - max_accounts / 10 - 1);
			END IF;
			UPDATE lockout_size SET n = cnt + 1 WHERE tbl = 'familiar';
		END IF;
		DELETE FROM lockout_familiar f WHERE f.account = acct AND (f.source = src OR now_ms - f.seen_ms > familiar_ms);
		INSERT INTO lockout_familiar (account, source, seen_ms) VALUES (acct, src, now_ms);
		DELETE FROM lockout_familiar f WHERE f.account = acct AND f.source IN (SELECT g.source FROM lockout_familiar g
			WHERE g.account = acct ORDER BY g.seen_ms DESC, g.seq DESC OFFSET per_account);
	END IF;
	IF is_familiar THEN
		RETURN;
	END IF;
	SELECT * INTO a FROM lockout_accounts WHERE account = acct;
	IF FOUND THEN
		IF a.inflight_until <= now_ms THEN
			a.inflight := 0;
		END IF;
		IF now_ms - GREATEST(a.last_ms, a.locked_until) > window_ms THEN
			a.failures := 0; a.level := 0; a.locked_until := 0; a.bad := '{}';
			IF a.inflight > 0 THEN
				a.last_ms := now_ms;
				a.inflight := a.inflight - 1;
			ELSE
				-- As if the record were gone: nothing to count unless failed.
				a.last_ms := 0;
			END IF;
		ELSIF a.inflight > 0 THEN
			a.inflight := a.inflight - 1;
		END IF;
	ELSIF NOT failed THEN
		RETURN;
	ELSE
		-- Swept while in flight (the table was full).
		SELECT n INTO cnt FROM lockout_size WHERE tbl = 'accounts' FOR UPDATE;
		IF cnt >= max_accounts THEN
			cnt := postern_lockout_sweep(now_ms, window_ms, max_accounts - max_accounts / 10 - 1);
		END IF;
		UPDATE lockout_size SET n = cnt + 1 WHERE tbl = 'accounts';
		INSERT INTO lockout_accounts (account) VALUES (acct);
		SELECT * INTO a FROM lockout_accounts WHERE account = acct;
	END IF;
	IF failed AND NOT (digest = ANY (a.bad)) THEN
		a.bad := (ARRAY[digest] || a.bad)[1:3];
		a.failures := a.failures + 1;
		a.last_ms := now_ms;
		IF a.failures >= threshold THEN
			d := duration_ms * (1::BIGINT << LEAST(a.level, 20));
			IF d <= 0 OR d > max_duration_ms THEN
				d := max_duration_ms;
			END IF;
			a.locked_until := now_ms + d;
			a.level := a.level + 1;
			a.failures := threshold - 1;
		END IF;
	END IF;
	UPDATE lockout_accounts SET failures = a.failures, inflight = a.inflight, level = a.level, last_ms = a.last_ms,
		locked_until = a.locked_until, bad = a.bad WHERE account = acct;
END;
$$;
