-- Lectern's first schema.
--
-- Portable on purpose: the PostgreSQL backend will use the same tables, columns and constraints
-- (BIGINT for times and sequence numbers, TEXT for ids, partial indexes, ON CONFLICT upserts).
-- Only the surrogate keys differ: `INTEGER PRIMARY KEY` here (SQLite's rowid), `BIGINT GENERATED
-- ALWAYS AS IDENTITY` there.
--
-- Times are unix milliseconds (UTC). Sequence numbers are the room's event numbers. Both are u64
-- in Rust and must fit in a signed 64-bit column; the store refuses larger values.

CREATE TABLE rooms (
    id          TEXT    NOT NULL PRIMARY KEY,
    title       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    -- The highest event number the room task has committed. Events that leave no row (hand
    -- raised, media changed, ...) still consume numbers, and numbers must never be reused.
    last_seq    BIGINT  NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

CREATE TABLE chat_messages (
    room_id      TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq          BIGINT  NOT NULL CHECK (seq >= 0),
    sender_id    TEXT    NOT NULL,
    sender_name  TEXT    NOT NULL,
    sender_role  TEXT    NOT NULL CHECK (sender_role IN ('instructor', 'ta', 'student', 'observer')),
    target_kind  TEXT    NOT NULL CHECK (target_kind IN ('everyone', 'staff', 'participant')),
    -- Set exactly when target_kind = 'participant'.
    target_id    TEXT,
    body         TEXT    NOT NULL,
    sent_at      BIGINT  NOT NULL,
    -- Deleted messages are kept for the record (moderation review) and hidden from participants.
    deleted_at   BIGINT,
    deleted_by   TEXT,
    PRIMARY KEY (room_id, seq),
    CHECK ((target_kind = 'participant') = (target_id IS NOT NULL)),
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);

CREATE TABLE attendance (
    id              INTEGER NOT NULL PRIMARY KEY,
    room_id         TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    participant_id  TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('instructor', 'ta', 'student', 'observer')),
    joined_at       BIGINT  NOT NULL,
    -- NULL while the participant is in the room (or the server stopped before they left).
    left_at         BIGINT,
    CHECK (left_at IS NULL OR left_at >= joined_at)
);

CREATE INDEX attendance_by_participant ON attendance (room_id, participant_id, joined_at);
CREATE INDEX attendance_open ON attendance (room_id) WHERE left_at IS NULL;

CREATE TABLE moderation_log (
    room_id    TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    -- The event that carried the action: one entry per event.
    seq        BIGINT  NOT NULL CHECK (seq >= 0),
    action     TEXT    NOT NULL,
    actor_id   TEXT    NOT NULL,
    target_id  TEXT,
    at         BIGINT  NOT NULL,
    PRIMARY KEY (room_id, seq)
);

CREATE TABLE class_sessions (
    id          INTEGER NOT NULL PRIMARY KEY,
    room_id     TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    started_at  BIGINT  NOT NULL,
    ended_at    BIGINT,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);

CREATE INDEX class_sessions_by_room ON class_sessions (room_id, started_at);
-- At most one class runs in a room at a time.
CREATE UNIQUE INDEX class_sessions_one_open ON class_sessions (room_id) WHERE ended_at IS NULL;
