-- What a room needs to be restored on another node or after a crash (issue 14): the class
-- state and the participants whose state a fresh join would not give back. The room task
-- writes them in its group-commit transaction as they change (one upsert per changed row) and
-- reads them when the room is created again; a room that closes while empty deletes them.
--
-- One row per room: the room-wide state, replaced whole on every change.
CREATE TABLE room_states (
    room_id           TEXT     NOT NULL PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    class_state       TEXT     NOT NULL CHECK (class_state IN ('not_started', 'live', 'ended')),
    -- When the class last went live.
    class_started_at  BIGINT,
    -- The student holding the stage (one of the room's participant_states rows).
    presenter_id      TEXT,
    class_mode        TEXT     NOT NULL CHECK (class_mode IN ('lecture', 'seminar')),
    -- Staff let every student speak.
    speak_all         BOOLEAN  NOT NULL,
    -- Participants removed during the current class: a JSON array of ids, sorted.
    banned            TEXT     NOT NULL DEFAULT '[]',
    -- A scheduled session's end warning was given.
    end_warned        BOOLEAN  NOT NULL
);

-- One row per participant with something to restore (a hand up, the stage, a speech grant, a
-- hard mute, a camera allowed or stopped against the mode, let in from the lobby early);
-- deleted when they have nothing left. Names are what attendance also keeps.
CREATE TABLE participant_states (
    room_id         TEXT     NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    participant_id  TEXT     NOT NULL,
    name            TEXT     NOT NULL,
    role            TEXT     NOT NULL CHECK (role IN ('instructor', 'ta', 'student', 'observer')),
    in_lobby        BOOLEAN  NOT NULL,
    hard_muted      BOOLEAN  NOT NULL,
    speak_granted   BOOLEAN  NOT NULL,
    camera_allowed  BOOLEAN  NOT NULL,
    -- A raised hand: when, and its place in the queue (the seq of its hand_raised event).
    hand_raised_at  BIGINT,
    hand_order      BIGINT,
    PRIMARY KEY (room_id, participant_id),
    CHECK ((hand_raised_at IS NULL) = (hand_order IS NULL))
);
