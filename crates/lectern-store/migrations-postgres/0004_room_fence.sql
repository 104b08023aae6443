-- Store-side fencing (issue 14): the newest lease fencing token a write of the room carried,
-- as in the SQLite migration 0010_room_fence.sql. NULL: no fenced write yet.
ALTER TABLE rooms ADD COLUMN fence_token BIGINT CHECK (fence_token >= 0);
