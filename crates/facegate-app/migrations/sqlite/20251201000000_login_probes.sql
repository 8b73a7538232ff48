-- Retention: the probe image a face login was matched on, kept only when
-- `probe_retention_days` > 0. `probe_path` is the sealed file under
-- `media/probes/` (NULL: none kept, or already purged) and `probe_key_id`
-- the key that sealed it, so a lost or wrong key is caught at start and
-- `facegate rotate-key` re-seals it.
ALTER TABLE login_attempts ADD COLUMN probe_path TEXT;
ALTER TABLE login_attempts ADD COLUMN probe_key_id TEXT;
CREATE INDEX login_attempts_probe ON login_attempts(at) WHERE probe_path IS NOT NULL;
CREATE INDEX login_attempts_user ON login_attempts(user_id);
