-- Profile pictures (PostgreSQL). Mirrors store-sqlite/migrations/0004_avatars.sql.

-- The current picture's version: it is part of the picture's URLs, so a new picture gets new
-- URLs and an old one can be cached for ever. NULL: no picture (a generated one is shown).
ALTER TABLE users ADD COLUMN avatar_version TEXT;

-- Each upload, re-encoded at every size. Replaced as a whole when the user uploads again.
CREATE TABLE avatar_images (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    size TEXT NOT NULL,
    version TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, size)
);
