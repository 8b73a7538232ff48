-- The OpenID Connect provider: clients, codes, tokens, consents and the
-- ID-token signing keys. Codes and tokens are kept as SHA-256 hashes only;
-- client secrets as Argon2 hashes; signing keys sealed with the master key.
-- Times are Unix seconds.
CREATE TABLE oidc_clients (
    client_id                 TEXT PRIMARY KEY NOT NULL,
    name                      TEXT NOT NULL,
    secret_hash               TEXT,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    first_party               BOOLEAN NOT NULL DEFAULT FALSE,
    min_acr                   TEXT,
    created_at                BIGINT NOT NULL
);

CREATE TABLE oidc_codes (
    code_hash      TEXT PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    user_id        BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope          TEXT NOT NULL,
    authn          TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX oidc_codes_expires ON oidc_codes(expires_at);

CREATE TABLE oidc_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    family     TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    authn      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oidc_tokens_family ON oidc_tokens(family);
CREATE INDEX oidc_tokens_user_client ON oidc_tokens(user_id, client_id);
CREATE INDEX oidc_tokens_expires ON oidc_tokens(expires_at);

CREATE TABLE oidc_consents (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients(client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE oidc_signing_keys (
    kid        TEXT PRIMARY KEY NOT NULL,
    key_id     TEXT NOT NULL,
    sealed     BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
