//! Tests against a real Redis: 127.0.0.1:6379 (or `LECTERN_TEST_REDIS_URL`), each test under its
//! own random key prefix; the partition test starts its own `redis-server`. With
//! `LECTERN_SKIP_REDIS=1` a test whose Redis is unreachable is skipped instead of failing.

mod commands;
mod leases;
mod registry;
mod support;
