-- Quizzes of a course and students' attempts at them, on PostgreSQL: the tables of the SQLite
-- migration 0008_quizzes.sql (docs/QUIZZES.md).
--
-- Same tables, columns, meanings and constraints as on SQLite. What differs, as in 0001:
-- surrogate keys are `BIGINT GENERATED ALWAYS AS IDENTITY` (never reused, like AUTOINCREMENT),
-- `published` is BOOLEAN, and every integer is BIGINT. Times are unix milliseconds (UTC). The
-- server validates the quiz JSON (lectern-quiz) before it is written; the store never parses it.

CREATE TABLE quizzes (
    id          BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    course_id   TEXT     NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    -- The quiz's title, copied out of `spec` for lists.
    title       TEXT     NOT NULL,
    -- The authored quiz with its keys: the JSON of lectern_quiz::Quiz.
    spec        TEXT     NOT NULL,
    -- Students see (and may attempt) only published quizzes.
    published   BOOLEAN  NOT NULL DEFAULT FALSE,
    created_at  BIGINT   NOT NULL,
    updated_at  BIGINT   NOT NULL
);

CREATE INDEX quizzes_by_course ON quizzes (course_id, id);

CREATE TABLE quiz_attempts (
    id            BIGINT            GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quiz_id       BIGINT            NOT NULL REFERENCES quizzes (id) ON DELETE CASCADE,
    -- The participant id of the student's join token, and their display name then.
    member_id     TEXT              NOT NULL,
    member_name   TEXT              NOT NULL,
    -- 1 for the member's first attempt at the quiz, then 2, 3...
    number        BIGINT            NOT NULL CHECK (number >= 1),
    -- The shuffle seed of this attempt (the order of questions and choices it shows).
    seed          BIGINT            NOT NULL,
    started_at    BIGINT            NOT NULL,
    -- NULL while the attempt is open; set once, with answers, result and score.
    submitted_at  BIGINT,
    -- The submitted answers (JSON list of lectern_quiz::QuestionAnswer).
    answers       TEXT,
    -- The graded attempt (JSON of lectern_quiz::GradedAttempt).
    result        TEXT,
    score         DOUBLE PRECISION,
    max_score     DOUBLE PRECISION  NOT NULL,
    -- Two starts racing for the same number: one of them fails here.
    UNIQUE (quiz_id, member_id, number)
);

CREATE INDEX quiz_attempts_by_member ON quiz_attempts (quiz_id, member_id, number);
