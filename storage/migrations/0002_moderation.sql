-- Moderation: held messages, reports, sanctions, appeals, per-channel policies, and the
-- append-only, hash-chained audit log (content kept by reference and hash, never inline).
CREATE TABLE moderation_holds (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    text TEXT,
    client_id TEXT,
    thread_id TEXT,
    labels TEXT NOT NULL DEFAULT '[]',
    scores TEXT NOT NULL DEFAULT '{}',
    reasons TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    message_id TEXT,
    created_at TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    decision_reason TEXT
);
CREATE INDEX moderation_holds_status ON moderation_holds (status, created_at);
CREATE UNIQUE INDEX moderation_holds_idempotency ON moderation_holds (channel_id, author_id, client_id)
    WHERE client_id IS NOT NULL;

CREATE TABLE moderation_reports (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    reporter_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at TEXT NOT NULL,
    resolved_by TEXT,
    resolved_at TEXT,
    resolution TEXT
);
CREATE INDEX moderation_reports_status ON moderation_reports (status, created_at);
CREATE UNIQUE INDEX moderation_reports_once ON moderation_reports (message_id, reporter_id);

CREATE TABLE moderation_sanctions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('mute', 'ban', 'kick')),
    channel_id TEXT,
    reason TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at REAL,
    lifted_by TEXT,
    lifted_at TEXT
);
CREATE INDEX moderation_sanctions_user ON moderation_sanctions (user_id, lifted_at);

CREATE TABLE moderation_appeals (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    subject_type TEXT NOT NULL CHECK (subject_type IN ('sanction', 'hold')),
    subject_id TEXT NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'upheld', 'overturned')),
    created_at TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    decision_reason TEXT
);
CREATE UNIQUE INDEX moderation_appeals_once ON moderation_appeals (subject_type, subject_id, user_id);

CREATE TABLE moderation_policies (
    channel_id TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}',
    correlation_id TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
