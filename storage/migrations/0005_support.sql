-- Support inbox: routing and SLA state per conversation (also the analytics' facts), the SLA
-- breaches (one row per breach: the unique key makes escalation exactly-once across restarts),
-- and what routing knows of a member (roles, persona, language) from their last support message.
CREATE TABLE support_profiles (
    user_id TEXT PRIMARY KEY,
    roles TEXT NOT NULL DEFAULT '[]',
    persona TEXT,
    language TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE support_conversations (
    conversation_id INTEGER PRIMARY KEY,
    inbox_id INTEGER,
    language TEXT,
    policy TEXT,
    opened_at REAL NOT NULL,
    -- 0: first seen long after its creation (imported): no SLA, times not measured
    fresh INTEGER NOT NULL DEFAULT 1,
    first_response_at REAL,
    resolved_at REAL,
    first_response_due_at REAL,
    next_response_due_at REAL,
    resolution_due_at REAL,
    breached TEXT NOT NULL DEFAULT '[]',
    routed_rule TEXT,
    assignee_id INTEGER,
    assignee_name TEXT,
    team_id INTEGER,
    team_name TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX support_conversations_opened ON support_conversations (opened_at);
CREATE INDEX support_conversations_first_due ON support_conversations (first_response_due_at);
CREATE INDEX support_conversations_next_due ON support_conversations (next_response_due_at);
CREATE INDEX support_conversations_resolution_due ON support_conversations (resolution_due_at);

CREATE TABLE support_breaches (
    id TEXT PRIMARY KEY,
    conversation_id INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('first_response', 'next_response', 'resolution')),
    policy TEXT NOT NULL,
    due_at REAL NOT NULL,
    breached_at REAL NOT NULL,
    assignee_id INTEGER,
    assignee_name TEXT,
    team_id INTEGER,
    team_name TEXT,
    announced INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conversation_id, kind, due_at)
);
CREATE INDEX support_breaches_time ON support_breaches (breached_at);
CREATE INDEX support_breaches_unannounced ON support_breaches (announced);
