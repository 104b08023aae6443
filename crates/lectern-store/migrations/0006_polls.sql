-- Live polls, stored with the session's room (issue 13).
--
-- A poll is keyed by its room and `poll_id`, the seq of the `poll_started` event that opened it.
-- `options` is a JSON array of strings, `choices` a JSON array of option indices (both short and
-- read whole; TEXT works the same in PostgreSQL).
CREATE TABLE polls (
    room_id        TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    poll_id        BIGINT  NOT NULL CHECK (poll_id >= 0),
    question       TEXT    NOT NULL,
    options        TEXT    NOT NULL,
    multiple       BOOLEAN NOT NULL,
    anonymous      BOOLEAN NOT NULL,
    asked_by       TEXT    NOT NULL,
    asked_by_name  TEXT    NOT NULL,
    started_at     BIGINT  NOT NULL,
    -- NULL while open (or when the server stopped before it ended; see close_open_polls).
    ended_at       BIGINT,
    -- When staff showed the results to the class, if they did.
    shared_at      BIGINT,
    PRIMARY KEY (room_id, poll_id)
);

-- One row per answer. For an anonymous poll nothing names who answered, nor when:
-- participant_id, name and answered_at are NULL.
CREATE TABLE poll_answers (
    id              INTEGER NOT NULL PRIMARY KEY,
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
