-- Chatwoot reconciliation (docs/chatwoot.md "Reconciliation"): one row of run state — the
-- watermark (start of the last complete run), the lease that lets one process run at a time,
-- the last outcome and what was recovered — and, per conversation, the newest Chatwoot message
-- id up to which its messages were read back.
CREATE TABLE chatwoot_reconcile (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    watermark REAL,
    lease_owner TEXT,
    lease_until REAL,
    last_run_at REAL,
    last_success_at REAL,
    last_outcome TEXT,
    last_error TEXT,
    last_conversations INTEGER NOT NULL DEFAULT 0,
    last_messages INTEGER NOT NULL DEFAULT 0,
    total_conversations INTEGER NOT NULL DEFAULT 0,
    total_messages INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE chatwoot_reconciled (
    conversation_id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
