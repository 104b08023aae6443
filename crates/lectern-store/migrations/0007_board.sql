-- The course discussion board (issue 13): topics, replies, per-member read marks and a
-- full-text index.
--
-- Portable like 0001 for the tables (INTEGER ids, TEXT member ids, BIGINT times in unix
-- milliseconds, INTEGER 0/1 booleans). The full-text index is SQLite's FTS5; PostgreSQL will use
-- a tsvector column with a GIN index in its own migration instead.
--
-- Numbered 0007: 0006 belongs to the live polls of the same issue. sqlx applies every migration
-- it has not applied yet, in version order, so the gap (and 0006 arriving later) is fine.

CREATE TABLE board_topics (
    id                INTEGER  NOT NULL PRIMARY KEY AUTOINCREMENT,
    course_id         TEXT     NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    -- The participant id of the author's join token, their display name and role at the time.
    author_id         TEXT     NOT NULL,
    author_name       TEXT     NOT NULL,
    author_role       TEXT     NOT NULL CHECK (author_role IN ('instructor', 'ta', 'student', 'observer')),
    -- Empty once deleted (the text is gone; the row and its replies stay).
    title             TEXT     NOT NULL,
    body              TEXT     NOT NULL,
    -- A question to the staff: only staff and this member (the asker) may read the topic.
    -- NULL for a topic every member reads.
    private_to        TEXT,
    pinned            INTEGER  NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    locked            INTEGER  NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    created_at        BIGINT   NOT NULL,
    edited_at         BIGINT,
    deleted_at        BIGINT,
    deleted_by        TEXT,
    -- The topic's creation or its latest reply: lists are ordered by it.
    last_activity_at  BIGINT   NOT NULL,
    -- A topic made from a live chat message: the message's room and seq, its sender's display
    -- name and when it was sent.
    source_room       TEXT,
    source_seq        BIGINT,
    source_name       TEXT,
    source_sent_at    BIGINT,
    UNIQUE (source_room, source_seq)
);

CREATE INDEX board_topics_by_course ON board_topics (course_id, pinned, last_activity_at);

CREATE TABLE board_replies (
    id           INTEGER  NOT NULL PRIMARY KEY AUTOINCREMENT,
    topic_id     INTEGER  NOT NULL REFERENCES board_topics (id) ON DELETE CASCADE,
    author_id    TEXT     NOT NULL,
    author_name  TEXT     NOT NULL,
    author_role  TEXT     NOT NULL CHECK (author_role IN ('instructor', 'ta', 'student', 'observer')),
    -- Empty once deleted.
    body         TEXT     NOT NULL,
    created_at   BIGINT   NOT NULL,
    edited_at    BIGINT,
    deleted_at   BIGINT,
    deleted_by   TEXT
);

CREATE INDEX board_replies_by_topic ON board_replies (topic_id, id);

-- How far a member has read a topic: every reply up to `last_reply_id` (0: the topic itself,
-- no reply yet). No row: the member never opened the topic.
CREATE TABLE board_reads (
    topic_id       INTEGER  NOT NULL REFERENCES board_topics (id) ON DELETE CASCADE,
    member_id      TEXT     NOT NULL,
    last_reply_id  INTEGER  NOT NULL,
    read_at        BIGINT   NOT NULL,
    PRIMARY KEY (topic_id, member_id)
);

-- Titles and bodies of the posts that are not deleted. A topic is indexed under rowid -id, a
-- reply under rowid +id (AUTOINCREMENT ids are positive), so one index serves both and a row
-- is found by its rowid. Kept in step by the triggers below; a deleted post leaves the index.
CREATE VIRTUAL TABLE board_search USING fts5 (
    title,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER board_topics_ai AFTER INSERT ON board_topics
WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO board_search (rowid, title, body) VALUES (-new.id, new.title, new.body);
END;

CREATE TRIGGER board_topics_au AFTER UPDATE OF title, body, deleted_at ON board_topics
BEGIN
    DELETE FROM board_search WHERE rowid = -old.id;
    INSERT INTO board_search (rowid, title, body)
        SELECT -new.id, new.title, new.body WHERE new.deleted_at IS NULL;
END;

CREATE TRIGGER board_topics_ad AFTER DELETE ON board_topics
BEGIN
    DELETE FROM board_search WHERE rowid = -old.id;
END;

CREATE TRIGGER board_replies_ai AFTER INSERT ON board_replies
WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO board_search (rowid, title, body) VALUES (new.id, '', new.body);
END;

CREATE TRIGGER board_replies_au AFTER UPDATE OF body, deleted_at ON board_replies
BEGIN
    DELETE FROM board_search WHERE rowid = old.id;
    INSERT INTO board_search (rowid, title, body)
        SELECT new.id, '', new.body WHERE new.deleted_at IS NULL;
END;

CREATE TRIGGER board_replies_ad AFTER DELETE ON board_replies
BEGIN
    DELETE FROM board_search WHERE rowid = old.id;
END;
