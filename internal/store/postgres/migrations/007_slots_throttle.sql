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
