-- Liveness: the score of every check a face login attempt went through
-- (active challenge and passive cues), as one JSON document; NULL when no
-- liveness check ran.
ALTER TABLE login_attempts ADD COLUMN liveness TEXT;
