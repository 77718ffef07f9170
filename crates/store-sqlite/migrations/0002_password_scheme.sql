-- The scheme of each stored password, written by the core with the hash, so that reports by
-- scheme need no knowledge of hash formats in SQL. NULL when the user has no password.
ALTER TABLE users ADD COLUMN password_scheme TEXT;

-- Existing rows are classified once, by the prefixes of the stored forms as of this release
-- (see the core's legacy_hash module). Case-sensitive prefix tests: LIKE would treat `_` as a
-- wildcard and ignore case.
UPDATE users SET password_scheme = CASE
    WHEN substr(password_hash, 1, 10) = '$argon2id$' THEN 'argon2id'
    WHEN substr(password_hash, 1, 7) = '$argon2' THEN 'argon2'
    WHEN substr(password_hash, 1, 4) IN ('$2a$', '$2b$', '$2y$') THEN 'bcrypt'
    WHEN substr(password_hash, 1, 14) = 'pbkdf2_sha256$' THEN 'pbkdf2_sha256'
    WHEN substr(password_hash, 1, 3) IN ('$P$', '$H$') THEN 'phpass'
    WHEN substr(password_hash, 1, 12) = '$md5-salted$' THEN 'md5_salted'
    WHEN substr(password_hash, 1, 6) = '$sha1$' THEN 'sha1'
    WHEN substr(password_hash, 1, 15) = '$sha256-salted$' THEN 'sha256_salted'
    WHEN substr(password_hash, 1, 19) = '$sha256-salt-first$' THEN 'sha256_salt_first'
    ELSE 'unknown' END
WHERE password_hash IS NOT NULL;
