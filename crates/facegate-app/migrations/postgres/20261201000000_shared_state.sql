-- What several instances on this database share beyond the records: liveness
-- challenges (taken once), rate-limit counters, periodic jobs run once per
-- period, and the change feed that keeps every instance's template cache
-- current (NOTIFY facegate_changes). None of it holds biometric data.

CREATE TABLE liveness_challenges (
    id         TEXT PRIMARY KEY,
    payload    TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX liveness_challenges_expiry ON liveness_challenges(expires_at);

-- One row per counted hit of a rate-limit key (a client address or a
-- claimed username) within its window, and the refusals not yet reported.
CREATE TABLE rate_hits (
    key TEXT NOT NULL,
    at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX rate_hits_key_at ON rate_hits(key, at);
CREATE INDEX rate_hits_at ON rate_hits(at);

CREATE TABLE rate_refusals (
    key         TEXT PRIMARY KEY,
    unreported  BIGINT NOT NULL,
    last_report TIMESTAMPTZ
);

-- One hit of key k against at most lim hits per win, in one atomic step
-- (serialised per key by a transaction-level advisory lock). Returns -1
-- when allowed, 0 when refused, n > 0 when refused and this refusal is to
-- be reported for n refusals (at most one report per key and window).
CREATE FUNCTION facegate_rate_hit(k TEXT, lim INTEGER, win INTERVAL) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    n    BIGINT;
    last TIMESTAMPTZ;
    t    TIMESTAMPTZ := clock_timestamp();
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('facegate.rate:' || k, 0));
    DELETE FROM rate_hits WHERE key = k AND at <= t - win;
    SELECT count(*) INTO n FROM rate_hits WHERE key = k;
    IF n < lim THEN
        INSERT INTO rate_hits (key, at) VALUES (k, t);
        RETURN -1;
    END IF;
    INSERT INTO rate_refusals AS r (key, unreported) VALUES (k, 1)
        ON CONFLICT (key) DO UPDATE SET unreported = r.unreported + 1
        RETURNING r.unreported, r.last_report INTO n, last;
    IF last IS NULL OR last <= t - win THEN
        UPDATE rate_refusals SET unreported = 0, last_report = t WHERE key = k;
        RETURN n;
    END IF;
    RETURN 0;
END
$$;

-- When each periodic job (the retention sweep) last ran, on any instance.
CREATE TABLE periodic_runs (
    job      TEXT PRIMARY KEY,
    last_run TIMESTAMPTZ NOT NULL
);

-- The change feed: a committed change to the templates or to whether an
-- account is active announces the user's id (or '*' for many users) on
-- the channel facegate_changes.
CREATE FUNCTION facegate_templates_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
    u BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT count(DISTINCT user_id), min(user_id) INTO n, u FROM changed_rows_old;
    ELSE
        SELECT count(DISTINCT user_id), min(user_id) INTO n, u FROM changed_rows_new;
    END IF;
    IF n = 1 THEN
        PERFORM pg_notify('facegate_changes', u::text);
    ELSIF n > 1 THEN
        PERFORM pg_notify('facegate_changes', '*');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER face_templates_inserted AFTER INSERT ON face_templates
    REFERENCING NEW TABLE AS changed_rows_new
    FOR EACH STATEMENT EXECUTE FUNCTION facegate_templates_changed();
CREATE TRIGGER face_templates_deleted AFTER DELETE ON face_templates
    REFERENCING OLD TABLE AS changed_rows_old
    FOR EACH STATEMENT EXECUTE FUNCTION facegate_templates_changed();

CREATE FUNCTION facegate_user_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('facegate_changes', OLD.id::text);
    ELSE
        PERFORM pg_notify('facegate_changes', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_activity_changed AFTER UPDATE OF is_active ON users
    FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION facegate_user_changed();
CREATE TRIGGER users_deleted AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION facegate_user_changed();
