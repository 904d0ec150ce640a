-- Secrets Gigvora issues, stored only as argon2id hashes: API keys for bots and integrations
-- (shown once at creation) and one-time codes (room PINs, invite codes) that expire and are
-- single-use.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT,
    revoked_by TEXT
);

CREATE TABLE one_time_codes (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    subject TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at TEXT,
    used_by TEXT,
    failed_attempts INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX one_time_codes_open ON one_time_codes (purpose, subject, expires_at)
    WHERE used_at IS NULL;
