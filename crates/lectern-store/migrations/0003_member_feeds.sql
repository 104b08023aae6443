-- Per-member calendar feeds: an unguessable token in the feed URL (calendar apps cannot send
-- headers) stands for one member of one course. One feed per member; creating a new one
-- replaces (revokes) the old, and removing the member removes it.

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
