-- Rooms: scheduled live sessions (a voice/video room open for a time window, linked to a chat
-- channel that gets one reminder before the start). Times are UTC epoch seconds. The lifecycle
-- columns (reminded_at, opened_at, closed_at) are set once each by the scheduler, so reminders
-- and open/close announcements happen exactly once, across restarts too.
CREATE TABLE room_sessions (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    channel_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    host_name TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL CHECK (ends_at > starts_at),
    status TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    cancelled_by TEXT,
    cancelled_at TEXT,
    reminded_at TEXT,
    reminder_message_id TEXT,
    opened_at TEXT,
    closed_at TEXT
);
CREATE INDEX room_sessions_window ON room_sessions (status, ends_at);
CREATE INDEX room_sessions_room ON room_sessions (room, starts_at);
