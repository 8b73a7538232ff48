-- facegate on PostgreSQL: the tables of the SQLite store in their current
-- shape (migrations/sqlite), with PostgreSQL's types. Biometric data is
-- only ever stored sealed by the application (AES-256-GCM envelopes with
-- the id of the sealing key): no plaintext column exists for it, and no
-- sealed column may go without its key id.

CREATE TABLE users (
    id                BIGSERIAL PRIMARY KEY,
    username          TEXT NOT NULL,
    email             TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    is_active         BOOLEAN NOT NULL DEFAULT TRUE,
    is_staff          BOOLEAN NOT NULL DEFAULT FALSE,
    is_superuser      BOOLEAN NOT NULL DEFAULT FALSE,
    face_failures     INTEGER NOT NULL DEFAULT 0,
    face_locked_until TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
-- Usernames are ASCII (see domain::Username): lower() is SQLite's NOCASE.
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE face_templates (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model_id   TEXT NOT NULL,
    embedding  BYTEA NOT NULL,
    key_id     TEXT NOT NULL,
    quality    REAL NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX face_templates_user ON face_templates(user_id);
CREATE INDEX face_templates_model ON face_templates(model_id);
CREATE INDEX face_templates_key ON face_templates(key_id);

CREATE TABLE face_photos (
    template_id BIGINT PRIMARY KEY REFERENCES face_templates(id) ON DELETE CASCADE,
    key_id      TEXT NOT NULL,
    sealed      BYTEA NOT NULL
);
CREATE INDEX face_photos_key ON face_photos(key_id);

CREATE TABLE login_attempts (
    id               BIGSERIAL PRIMARY KEY,
    at               TIMESTAMPTZ NOT NULL,
    claimed_username TEXT,
    user_id          BIGINT REFERENCES users(id) ON DELETE SET NULL,
    client_addr      TEXT NOT NULL,
    method           TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    best_score       REAL,
    reason           TEXT NOT NULL,
    liveness         TEXT
);
CREATE INDEX login_attempts_at ON login_attempts(at);
CREATE INDEX login_attempts_user ON login_attempts(user_id);

CREATE TABLE login_probes (
    attempt_id BIGINT PRIMARY KEY REFERENCES login_attempts(id) ON DELETE CASCADE,
    key_id     TEXT NOT NULL,
    sealed     BYTEA NOT NULL
);
CREATE INDEX login_probes_key ON login_probes(key_id);

-- The append-only security audit trail.
CREATE TABLE audit_events (
    id              BIGSERIAL PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL,
    kind            TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    actor_user_id   BIGINT,
    subject_user_id BIGINT,
    username        TEXT,
    client_addr     TEXT,
    score           REAL,
    detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_kind ON audit_events(kind);
CREATE INDEX audit_events_subject ON audit_events(subject_user_id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- The key check: a constant sealed with the master key when the store is
-- first opened, so a wrong key is refused before anything is written.
CREATE TABLE key_check (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    key_id TEXT NOT NULL,
    sealed BYTEA NOT NULL
);

-- Server-side sessions (tower-sessions' PostgreSQL store, in this schema).
CREATE TABLE tower_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BYTEA NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);
CREATE INDEX tower_sessions_expiry ON tower_sessions(expiry_date);
