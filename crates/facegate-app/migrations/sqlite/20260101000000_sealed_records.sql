-- Photos and kept probes live in the database, sealed like the templates
-- (the media/ directory of files is imported once at start and removed),
-- so that a template, its photo and an attempt with its probe are written
-- and deleted in one transaction, and deleted data is overwritten
-- (secure_delete) instead of left in freed disk blocks.
-- `face_templates.image_path` and `login_attempts.probe_path` /
-- `probe_key_id` only serve that import now; new rows leave them empty.
CREATE TABLE face_photos (
    template_id INTEGER PRIMARY KEY REFERENCES face_templates(id) ON DELETE CASCADE,
    key_id      TEXT NOT NULL,
    sealed      BLOB NOT NULL
);
CREATE INDEX face_photos_key ON face_photos(key_id);

CREATE TABLE login_probes (
    attempt_id INTEGER PRIMARY KEY REFERENCES login_attempts(id) ON DELETE CASCADE,
    key_id     TEXT NOT NULL,
    sealed     BLOB NOT NULL
);
CREATE INDEX login_probes_key ON login_probes(key_id);
DROP INDEX login_attempts_probe;

-- The key check: a constant sealed with the master key when the store is
-- first opened, so a wrong key is refused before anything is written.
CREATE TABLE key_check (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    key_id TEXT NOT NULL,
    sealed BLOB NOT NULL
);

-- One-time steps done at start (`legacy_sealed`: the plaintext templates
-- and the media/ files of older versions were sealed into the database;
-- from then on anything unsealed is refused as tampering).
CREATE TABLE store_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Server-side sessions (created by the session store itself before).
CREATE TABLE IF NOT EXISTS tower_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);
