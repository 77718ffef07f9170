-- Initial schema (SQLite). Mirrors store-postgres/migrations/0001_initial.sql: same tables and
-- columns; timestamps are INTEGER microseconds since the Unix epoch, booleans INTEGER 0/1,
-- JSON TEXT. Forward-only: never edit a migration once it has landed; add a new one.

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    policy TEXT NOT NULL DEFAULT '{}',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);

-- The default tenant always exists; /v1/... without a tenant prefix serves it.
INSERT INTO tenants (id, slug, name, created_at, updated_at)
VALUES (1, 'default', 'Default', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER), CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));

-- A domain belongs to at most one tenant (buddycloud-style user@domain logins, Host headers).
CREATE TABLE tenant_domains (
    domain TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX tenant_domains_tenant_idx ON tenant_domains (tenant_id);

-- AUTOINCREMENT: the id of a deleted user is never given to somebody else.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username TEXT,
    username_norm TEXT,
    email TEXT,
    email_norm TEXT,
    email_verified_at INTEGER,
    phone TEXT,
    phone_norm TEXT,
    phone_verified_at INTEGER,
    password_hash TEXT,
    -- Moves on every change of password (not on re-encoding it): a log-in opens its session
    -- only if the version it checked is still current.
    password_version INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('active', 'pending', 'disabled')),
    first_name TEXT,
    last_name TEXT,
    nickname TEXT,
    display_name TEXT,
    display_status TEXT,
    gender TEXT,
    bio TEXT,
    language TEXT,
    website TEXT,
    occupation TEXT,
    cellphone TEXT,
    fax TEXT,
    address_line1 TEXT,
    address_line2 TEXT,
    city TEXT,
    state TEXT,
    postal_code TEXT,
    country TEXT,
    avatar_url TEXT,
    cover_url TEXT,
    billing_first_name TEXT,
    billing_last_name TEXT,
    billing_company TEXT,
    billing_address_line1 TEXT,
    billing_address_line2 TEXT,
    billing_city TEXT,
    billing_state TEXT,
    billing_postal_code TEXT,
    billing_country TEXT,
    billing_phone TEXT,
    billing_fax TEXT,
    billing_email TEXT,
    birth_date TEXT,
    newsletter INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_login_at INTEGER,
    password_changed_at INTEGER
);
-- Uniqueness per tenant on the normalised forms; NULLs (absent identifiers) never collide.
CREATE UNIQUE INDEX users_username_key ON users (tenant_id, username_norm);
CREATE UNIQUE INDEX users_email_key ON users (tenant_id, email_norm);
CREATE UNIQUE INDEX users_phone_key ON users (tenant_id, phone_norm);
CREATE INDEX users_tenant_created_idx ON users (tenant_id, created_at);

CREATE TABLE attribute_definitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('string', 'integer', 'number', 'boolean', 'date')),
    required INTEGER NOT NULL DEFAULT 0,
    user_editable INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX attribute_definitions_name_key ON attribute_definitions (tenant_id, name);

CREATE TABLE user_attributes (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    attribute_id INTEGER NOT NULL REFERENCES attribute_definitions (id) ON DELETE CASCADE,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, attribute_id)
);
CREATE INDEX user_attributes_attribute_idx ON user_attributes (attribute_id);

CREATE TABLE roles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_norm TEXT NOT NULL,
    description TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX roles_name_key ON roles (tenant_id, name_norm);

CREATE TABLE user_roles (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_idx ON user_roles (role_id);

-- Sessions: only the SHA-256 of the token is stored.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    idle_timeout_secs INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    user_agent TEXT,
    ip TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Opening a session is a log-in: record it on the user in the same statement, so a log-in is
-- one atomic write (one fsync) rather than a transaction of several.
CREATE TRIGGER sessions_record_login AFTER INSERT ON sessions
BEGIN
    UPDATE users SET last_login_at = NEW.created_at WHERE id = NEW.user_id;
END;

-- The revocation feed of this backend: every write that ends sessions appends here in the same
-- transaction, and every process polls it (ids are assigned in commit order; AUTOINCREMENT
-- keeps them from being reused after old rows are pruned).
CREATE TABLE session_revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB,
    user_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((token_hash IS NULL) <> (user_id IS NULL))
);
CREATE INDEX session_revocations_created_idx ON session_revocations (created_at);

-- One-time tokens (e-mail verification, password reset, log-in links): hashed, single-use,
-- expiring, bound to a purpose.
CREATE TABLE one_time_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX one_time_tokens_hash_key ON one_time_tokens (token_hash);
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_expires_idx ON one_time_tokens (expires_at);

-- API keys: shown once, stored as SHA-256, found by their public prefix. A key without a tenant
-- is an operator key.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash BLOB NOT NULL,
    scopes TEXT NOT NULL DEFAULT '[]',
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix);
CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

-- Security events. No foreign key to users: the record outlives the account.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER,
    user_id INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX audit_events_tenant_created_idx ON audit_events (tenant_id, created_at);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, created_at);
CREATE INDEX audit_events_action_idx ON audit_events (action, created_at);
