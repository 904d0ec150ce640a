-- Chatwoot bridge: members mapped to Chatwoot contacts, the mirrored conversations and messages
-- (the agents' inbox and the members' support history), webhook delivery ids (replay and
-- deduplication window, processed after the 2xx), and the durable outbound queue.
CREATE TABLE chatwoot_contacts (
    user_id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    identifier TEXT NOT NULL UNIQUE,
    identifier_hash TEXT,
    contact_id INTEGER UNIQUE,
    source_id TEXT,
    conversation_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE chatwoot_conversations (
    id INTEGER PRIMARY KEY,
    inbox_id INTEGER,
    user_id TEXT,
    contact_id INTEGER,
    contact TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'open',
    assignee TEXT,
    team TEXT,
    labels TEXT NOT NULL DEFAULT '[]',
    priority TEXT,
    snoozed_until TEXT,
    created_at INTEGER,
    last_activity_at INTEGER,
    source_updated_at REAL NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX chatwoot_conversations_user ON chatwoot_conversations (user_id);
CREATE INDEX chatwoot_conversations_activity ON chatwoot_conversations (status, last_activity_at);

CREATE TABLE chatwoot_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    chatwoot_id INTEGER UNIQUE,
    conversation_id INTEGER,
    user_id TEXT,
    message_type TEXT NOT NULL CHECK (message_type IN ('incoming', 'outgoing', 'template')),
    private INTEGER NOT NULL DEFAULT 0,
    text TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('member', 'agent', 'chatwoot')),
    author_id TEXT,
    author_name TEXT NOT NULL,
    author_kind TEXT NOT NULL,
    client_id TEXT,
    status TEXT NOT NULL,
    attachments TEXT NOT NULL DEFAULT '[]',
    agents_notified INTEGER NOT NULL DEFAULT 0,
    member_notified INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX chatwoot_messages_user ON chatwoot_messages (user_id, seq);
CREATE INDEX chatwoot_messages_conversation ON chatwoot_messages (conversation_id, seq);
CREATE UNIQUE INDEX chatwoot_messages_idempotency ON chatwoot_messages (origin, author_id, client_id)
    WHERE client_id IS NOT NULL;

CREATE TABLE chatwoot_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    body BLOB,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    locked_until REAL
);
CREATE INDEX chatwoot_deliveries_pending ON chatwoot_deliveries (state, received_at);
CREATE INDEX chatwoot_deliveries_expiry ON chatwoot_deliveries (expires_at);

CREATE TABLE chatwoot_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    locked_until REAL,
    last_error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX chatwoot_outbox_head ON chatwoot_outbox (order_key, state, seq);
CREATE INDEX chatwoot_outbox_due ON chatwoot_outbox (state, next_attempt_at);
