-- Lectern's schema on PostgreSQL: the tables of the SQLite migrations 0001 to 0007, in one file
-- (no PostgreSQL database was ever deployed before this one).
--
-- Same tables, columns, meanings and constraints as on SQLite. What differs:
-- - Surrogate keys are `BIGINT GENERATED ALWAYS AS IDENTITY` (SQLite: INTEGER PRIMARY KEY).
--   Identity values are never reused, like SQLite's AUTOINCREMENT.
-- - Flags are BOOLEAN (SQLite: INTEGER 0/1 checked as such).
-- - Every integer is BIGINT, so the store reads every number as a signed 64-bit value.
-- - Board search is a `search` tsvector column on board_topics and board_replies with a GIN
--   index, written by the store with each post (SQLite: the FTS5 table board_search and its
--   triggers). See `src/postgres/board.rs` for how the text is folded before indexing.
--
-- The tables go into the first schema of the connection's search_path (`public` unless the URL
-- sets `options[search_path]=...`). Times are unix milliseconds (UTC).

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
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id     TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    started_at  BIGINT  NOT NULL,
    ended_at    BIGINT,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);

CREATE INDEX class_sessions_by_room ON class_sessions (room_id, started_at);
-- At most one class runs in a room at a time.
CREATE UNIQUE INDEX class_sessions_one_open ON class_sessions (room_id) WHERE ended_at IS NULL;

-- Courses, their rosters and schedules, and the admin API keys.

CREATE TABLE courses (
    id                   TEXT     NOT NULL PRIMARY KEY,
    title                TEXT     NOT NULL,
    -- IANA name, e.g. Europe/Paris.
    timezone             TEXT     NOT NULL,
    lobby_minutes        BIGINT   NOT NULL CHECK (lobby_minutes >= 0),
    warning_minutes      BIGINT   NOT NULL CHECK (warning_minutes >= 0),
    grace_minutes        BIGINT   NOT NULL CHECK (grace_minutes >= 0),
    auto_start           BOOLEAN  NOT NULL,
    created_at           BIGINT   NOT NULL,
    -- Record every class of the course as it goes live.
    record_sessions      BOOLEAN  NOT NULL DEFAULT FALSE,
    -- Students may download the course's recordings (staff always may).
    recording_downloads  BOOLEAN  NOT NULL DEFAULT FALSE,
    -- The layout a course's rooms start in: `lecture` (one stage) or `seminar` (a gallery).
    class_mode           TEXT     NOT NULL DEFAULT 'lecture'
                                  CHECK (class_mode IN ('lecture', 'seminar'))
);

CREATE TABLE course_members (
    course_id  TEXT  NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    -- The participant id in join tokens (e.g. the LMS user id).
    member_id  TEXT  NOT NULL,
    name       TEXT  NOT NULL,
    email      TEXT,
    role       TEXT  NOT NULL CHECK (role IN ('instructor', 'ta', 'student', 'observer')),
    PRIMARY KEY (course_id, member_id)
);

CREATE TABLE schedules (
    id          TEXT    NOT NULL PRIMARY KEY,
    course_id   TEXT    NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    -- The REST API's schedule object as JSON text, validated by the server.
    spec        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE INDEX schedules_by_course ON schedules (course_id, created_at);

CREATE TABLE api_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    -- SHA-256 of the whole key, lowercase hex. The key itself is shown once and never stored.
    hash        TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

-- Per-member calendar feeds: one per member; a new one replaces the old.
CREATE TABLE member_feeds (
    course_id   TEXT    NOT NULL,
    member_id   TEXT    NOT NULL,
    -- SHA-256 of the token, lowercase hex (like api_keys.hash). The token is shown once.
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (course_id, member_id),
    FOREIGN KEY (course_id, member_id)
        REFERENCES course_members (course_id, member_id) ON DELETE CASCADE
);

-- Recordings of classes. The media and event log are files in `dir` (under recording.dir).
CREATE TABLE recordings (
    id           TEXT     NOT NULL PRIMARY KEY,
    room_id      TEXT     NOT NULL,
    -- The course part of the room name. Not a foreign key: rooms of unscheduled classes have a
    -- course name but no course row.
    course_id    TEXT     NOT NULL,
    title        TEXT     NOT NULL,
    state        TEXT     NOT NULL CHECK (state IN ('recording', 'processing', 'ready', 'failed')),
    started_at   BIGINT   NOT NULL,
    ended_at     BIGINT,
    duration_ms  BIGINT   NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    bytes        BIGINT   NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    -- Stopped by a crash (found open at the next start): plays up to the last flush.
    interrupted  BOOLEAN  NOT NULL DEFAULT FALSE,
    stop_reason  TEXT,
    error        TEXT,
    dir          TEXT     NOT NULL
);

CREATE INDEX recordings_by_course ON recordings (course_id, started_at);
CREATE INDEX recordings_by_state ON recordings (state);

-- Live polls, keyed by room and the seq of the event that opened them. `options` and `choices`
-- are JSON arrays as text, as on SQLite.
CREATE TABLE polls (
    room_id        TEXT     NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    poll_id        BIGINT   NOT NULL CHECK (poll_id >= 0),
    question       TEXT     NOT NULL,
    options        TEXT     NOT NULL,
    multiple       BOOLEAN  NOT NULL,
    anonymous      BOOLEAN  NOT NULL,
    asked_by       TEXT     NOT NULL,
    asked_by_name  TEXT     NOT NULL,
    started_at     BIGINT   NOT NULL,
    ended_at       BIGINT,
    shared_at      BIGINT,
    PRIMARY KEY (room_id, poll_id)
);

-- For an anonymous poll nothing names who answered, nor when.
CREATE TABLE poll_answers (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id         TEXT    NOT NULL,
    poll_id         BIGINT  NOT NULL,
    participant_id  TEXT,
    name            TEXT,
    choices         TEXT    NOT NULL,
    answered_at     BIGINT,
    FOREIGN KEY (room_id, poll_id) REFERENCES polls (room_id, poll_id) ON DELETE CASCADE,
    CHECK ((participant_id IS NULL) = (name IS NULL))
);

CREATE INDEX poll_answers_by_poll ON poll_answers (room_id, poll_id);
-- A participant answers a poll once.
CREATE UNIQUE INDEX poll_answers_once ON poll_answers (room_id, poll_id, participant_id)
    WHERE participant_id IS NOT NULL;

-- The course discussion board.

CREATE TABLE board_topics (
    id                BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    course_id         TEXT     NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    author_id         TEXT     NOT NULL,
    author_name       TEXT     NOT NULL,
    author_role       TEXT     NOT NULL CHECK (author_role IN ('instructor', 'ta', 'student', 'observer')),
    -- Empty once deleted (the text is gone; the row and its replies stay).
    title             TEXT     NOT NULL,
    body              TEXT     NOT NULL,
    -- A question to the staff: only staff and this member may read the topic.
    private_to        TEXT,
    pinned            BOOLEAN  NOT NULL DEFAULT FALSE,
    locked            BOOLEAN  NOT NULL DEFAULT FALSE,
    created_at        BIGINT   NOT NULL,
    edited_at         BIGINT,
    deleted_at        BIGINT,
    deleted_by        TEXT,
    last_activity_at  BIGINT   NOT NULL,
    source_room       TEXT,
    source_seq        BIGINT,
    source_name       TEXT,
    source_sent_at    BIGINT,
    -- The folded title (weight A) and body (weight B); empty once deleted.
    search            TSVECTOR NOT NULL DEFAULT ''::tsvector,
    UNIQUE (source_room, source_seq)
);

CREATE INDEX board_topics_by_course ON board_topics (course_id, pinned, last_activity_at);
CREATE INDEX board_topics_search ON board_topics USING GIN (search);

CREATE TABLE board_replies (
    id           BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic_id     BIGINT   NOT NULL REFERENCES board_topics (id) ON DELETE CASCADE,
    author_id    TEXT     NOT NULL,
    author_name  TEXT     NOT NULL,
    author_role  TEXT     NOT NULL CHECK (author_role IN ('instructor', 'ta', 'student', 'observer')),
    body         TEXT     NOT NULL,
    created_at   BIGINT   NOT NULL,
    edited_at    BIGINT,
    deleted_at   BIGINT,
    deleted_by   TEXT,
    -- The folded body (weight B); empty once deleted.
    search       TSVECTOR NOT NULL DEFAULT ''::tsvector
);

CREATE INDEX board_replies_by_topic ON board_replies (topic_id, id);
CREATE INDEX board_replies_search ON board_replies USING GIN (search);

-- How far a member has read a topic: every reply up to `last_reply_id` (0: none yet).
CREATE TABLE board_reads (
    topic_id       BIGINT  NOT NULL REFERENCES board_topics (id) ON DELETE CASCADE,
    member_id      TEXT    NOT NULL,
    last_reply_id  BIGINT  NOT NULL,
    read_at        BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, member_id)
);
