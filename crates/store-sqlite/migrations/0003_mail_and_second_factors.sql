-- Mail and second factors (SQLite). Mirrors store-postgres/migrations/0003_mail_and_second_factors.sql.

-- A self-service change of e-mail address waits here until the new address is verified; the
-- address in `email` stays the login meanwhile.
ALTER TABLE users ADD COLUMN pending_email TEXT;

-- The durable outbox: a message is queued in the transaction of the event that causes it and
-- delivered by a sender task. A row says what to send and to whom, never a secret: links are
-- made when the message is sent. Rows are claimed with a lease (locked_until), so two senders
-- never deliver one message, and deleted once delivered.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    recipient TEXT,
    payload TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until INTEGER,
    last_error TEXT,
    failed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE failed_at IS NULL;

-- A user's TOTP authenticator: the secret, sealed with the server's secret key; confirmed once
-- the user proved it with a first code. last_used_step makes a code good once per time step.
CREATE TABLE totp_credentials (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret BLOB NOT NULL,
    confirmed_at INTEGER,
    last_used_step INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Single-use recovery codes, stored as their SHA-256.
CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX recovery_codes_user_hash_key ON recovery_codes (user_id, code_hash);

-- The server's own secret key, for deployments that configure none (see docs/configuration.md:
-- secrets): one row, made at first use.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
