-- Encryption at rest: each face template records the id of the key that
-- sealed its embedding and photo (NULL: a legacy plaintext record, sealed by
-- `facegate rotate-key`).
ALTER TABLE face_templates ADD COLUMN key_id TEXT;
CREATE INDEX face_templates_key ON face_templates(key_id);

-- The append-only security audit trail.
CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    actor_user_id   INTEGER,
    subject_user_id INTEGER,
    username        TEXT,
    client_addr     TEXT,
    score           REAL,
    detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_kind ON audit_events(kind);
CREATE INDEX audit_events_subject ON audit_events(subject_user_id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
