-- Accounts, face templates and the login audit trail.
CREATE TABLE users (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    username          TEXT NOT NULL COLLATE NOCASE UNIQUE,
    email             TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    is_active         INTEGER NOT NULL DEFAULT 1,
    is_staff          INTEGER NOT NULL DEFAULT 0,
    is_superuser      INTEGER NOT NULL DEFAULT 0,
    face_failures     INTEGER NOT NULL DEFAULT 0,
    face_locked_until INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE face_templates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model_id   TEXT NOT NULL,
    embedding  BLOB NOT NULL,
    quality    REAL NOT NULL,
    image_path TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX face_templates_user ON face_templates(user_id);
CREATE INDEX face_templates_model ON face_templates(model_id);

CREATE TABLE login_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               INTEGER NOT NULL,
    claimed_username TEXT,
    user_id          INTEGER REFERENCES users(id) ON DELETE SET NULL,
    client_addr      TEXT NOT NULL,
    method           TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    best_score       REAL,
    reason           TEXT NOT NULL
);
CREATE INDEX login_attempts_at ON login_attempts(at);
