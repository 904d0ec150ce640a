-- Channels, messages, read state. Seqs are allocated in channels.last_seq inside the writing
-- transaction, so they are gap-free per channel.
CREATE TABLE channels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('public', 'private', 'announcement', 'dm')),
    read_roles TEXT NOT NULL DEFAULT '[]',
    post_roles TEXT NOT NULL DEFAULT '[]',
    members TEXT,
    created_at TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    author_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    text TEXT NOT NULL,
    client_id TEXT,
    thread_id TEXT,
    created_at TEXT NOT NULL,
    edited_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    reactions TEXT NOT NULL DEFAULT '{}'
);

CREATE UNIQUE INDEX messages_channel_seq ON messages (channel_id, seq);
CREATE UNIQUE INDEX messages_idempotency ON messages (channel_id, author_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX messages_thread ON messages (thread_id, seq) WHERE thread_id IS NOT NULL;

CREATE TABLE read_state (
    user_id TEXT NOT NULL,
    channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);
