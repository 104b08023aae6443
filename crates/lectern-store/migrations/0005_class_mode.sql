-- The layout a course's rooms start in: `lecture` (one stage) or `seminar` (a gallery of
-- cameras, everyone may speak).
ALTER TABLE courses ADD COLUMN class_mode TEXT NOT NULL DEFAULT 'lecture'
    CHECK (class_mode IN ('lecture', 'seminar'));
