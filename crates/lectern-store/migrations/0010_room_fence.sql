-- Store-side fencing (issue 14): the newest lease fencing token a write of the room carried.
-- On several nodes each room runs under a Redis lease whose token grows with every claim;
-- `write_batch` raises this column to its token in the batch's transaction and refuses a batch
-- whose token is older (a node that stalled past its lease). NULL: no fenced write yet (a
-- single node never sets it).
ALTER TABLE rooms ADD COLUMN fence_token BIGINT CHECK (fence_token >= 0);
