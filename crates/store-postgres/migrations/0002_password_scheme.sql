-- The scheme of each stored password, written by the core with the hash, so that reports by
-- scheme need no knowledge of hash formats in SQL. NULL when the user has no password.
ALTER TABLE users ADD COLUMN password_scheme TEXT;

-- Existing rows are classified once, by the prefixes of the stored forms as of this release
-- (see the core's legacy_hash module). starts_with/left, not LIKE, where `_` is a wildcard;
-- `$argon2id$` is tested before `$argon2`.
UPDATE users SET password_scheme = CASE
    WHEN starts_with(password_hash, '$argon2id$') THEN 'argon2id'
    WHEN starts_with(password_hash, '$argon2') THEN 'argon2'
    WHEN left(password_hash, 4) IN ('$2a$', '$2b$', '$2y$') THEN 'bcrypt'
    WHEN starts_with(password_hash, 'pbkdf2_sha256$') THEN 'pbkdf2_sha256'
    WHEN left(password_hash, 3) IN ('$P$', '$H$') THEN 'phpass'
    WHEN starts_with(password_hash, '$md5-salted$') THEN 'md5_salted'
    WHEN starts_with(password_hash, '$sha1$') THEN 'sha1'
    WHEN starts_with(password_hash, '$sha256-salted$') THEN 'sha256_salted'
    WHEN starts_with(password_hash, '$sha256-salt-first$') THEN 'sha256_salt_first'
    ELSE 'unknown' END
WHERE password_hash IS NOT NULL;
