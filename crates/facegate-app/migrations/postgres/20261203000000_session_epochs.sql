-- Issue 16, finding 6. `session_epoch`: a session is valid only while the
-- epoch it was logged in under is the account's; a password change, a
-- deactivation or "log out everywhere" increments it, ending every session
-- of the account at once on every instance (session ids are stored hashed,
-- so sessions cannot be found by user). `face_added_at`: when a face was
-- last added, until the owner has been told at a password login.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN face_added_at TIMESTAMPTZ;
