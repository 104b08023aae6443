-- Recordings of classes (issue 12) and the course settings that govern them.
--
-- Portable like 0001: TEXT ids, BIGINT times (unix milliseconds, UTC), INTEGER 0/1 booleans.
-- The media and the event log are files in the recording's folder (`dir`, under the server's
-- `recording.dir`); this table holds what lists and permissions need.

CREATE TABLE recordings (
    id           TEXT    NOT NULL PRIMARY KEY,
    room_id      TEXT    NOT NULL,
    -- The course part of the room name (the room name up to its first dot). Not a foreign
    -- key: rooms of unscheduled classes have a course name but no course row.
    course_id    TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('recording', 'processing', 'ready', 'failed')),
    started_at   BIGINT  NOT NULL,
    ended_at     BIGINT,
    duration_ms  BIGINT  NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    bytes        BIGINT  NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    -- Stopped by a crash (found open at the next start): plays up to the last flush.
    interrupted  INTEGER NOT NULL DEFAULT 0 CHECK (interrupted IN (0, 1)),
    -- Why recording stopped (`stopped`, `class_ended`, `disk_full`, `failed`, `shutdown`).
    stop_reason  TEXT,
    -- What went wrong, for state `failed` (no user text, no paths outside `dir`).
    error        TEXT,
    -- The recording's folder, relative to `recording.dir`.
    dir          TEXT    NOT NULL
);

CREATE INDEX recordings_by_course ON recordings (course_id, started_at);
CREATE INDEX recordings_by_state ON recordings (state);

-- Record every class of the course as it goes live.
ALTER TABLE courses ADD COLUMN record_sessions INTEGER NOT NULL DEFAULT 0
    CHECK (record_sessions IN (0, 1));
-- Students may download the course's recordings (staff always may).
ALTER TABLE courses ADD COLUMN recording_downloads INTEGER NOT NULL DEFAULT 0
    CHECK (recording_downloads IN (0, 1));
