-- Courses, their rosters and schedules, and the admin API keys.
--
-- Portable like 0001: TEXT ids, BIGINT times (unix milliseconds, UTC), INTEGER 0/1 booleans
-- checked as such, no engine-specific types. A schedule's recurrence is stored as JSON text
-- (the REST API's schedule object), validated by the server before it is written.

CREATE TABLE courses (
    id               TEXT     NOT NULL PRIMARY KEY,
    title            TEXT     NOT NULL,
    -- IANA name, e.g. Europe/Paris.
    timezone         TEXT     NOT NULL,
    lobby_minutes    INTEGER  NOT NULL CHECK (lobby_minutes >= 0),
    warning_minutes  INTEGER  NOT NULL CHECK (warning_minutes >= 0),
    grace_minutes    INTEGER  NOT NULL CHECK (grace_minutes >= 0),
    auto_start       INTEGER  NOT NULL CHECK (auto_start IN (0, 1)),
    created_at       BIGINT   NOT NULL
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
