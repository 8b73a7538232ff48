-- Liveness challenges, kept in the database rather than in the session so
-- that taking one is a single atomic step: of several concurrent answers
-- to one challenge, exactly one is judged. No biometric data.
CREATE TABLE liveness_challenges (
    id         TEXT PRIMARY KEY NOT NULL,
    payload    TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX liveness_challenges_expiry ON liveness_challenges(expires_at);
