-- What a room needs to be restored on another node or after a crash, on PostgreSQL: the
-- tables of the SQLite migration 0009_room_state.sql, with the same columns, meanings and
-- constraints (BOOLEAN flags and BIGINT integers on both).

CREATE TABLE room_states (
    room_id           TEXT     NOT NULL PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    class_state       TEXT     NOT NULL CHECK (class_state IN ('not_started', 'live', 'ended')),
    class_started_at  BIGINT,
    presenter_id      TEXT,
    class_mode        TEXT     NOT NULL CHECK (class_mode IN ('lecture', 'seminar')),
    speak_all         BOOLEAN  NOT NULL,
    -- A JSON array of participant ids, sorted.
    banned            TEXT     NOT NULL DEFAULT '[]',
    end_warned        BOOLEAN  NOT NULL
);

CREATE TABLE participant_states (
    room_id         TEXT     NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    participant_id  TEXT     NOT NULL,
    name            TEXT     NOT NULL,
    role            TEXT     NOT NULL CHECK (role IN ('instructor', 'ta', 'student', 'observer')),
    in_lobby        BOOLEAN  NOT NULL,
    hard_muted      BOOLEAN  NOT NULL,
    speak_granted   BOOLEAN  NOT NULL,
    camera_allowed  BOOLEAN  NOT NULL,
    hand_raised_at  BIGINT,
    hand_order      BIGINT,
    PRIMARY KEY (room_id, participant_id),
    CHECK ((hand_raised_at IS NULL) = (hand_order IS NULL))
);
