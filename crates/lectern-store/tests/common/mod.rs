//! Runs each store test on both backends: a SQLite file in a temporary directory, and a
//! PostgreSQL schema of its own.
//!
//! A test is an `async fn NAME(db: Db)`; `both_backends!(NAME, ...)` makes the tests
//! `sqlite::NAME` and `postgres::NAME` from it. Each PostgreSQL test creates a schema with a
//! random name, opens its stores with `options[search_path]=<schema>` (so every pooled
//! connection uses it) and drops it at the end, whether the test passed or not: parallel tests
//! and parallel runs never see each other's tables.
//!
//! PostgreSQL is at `LECTERN_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! If it cannot be reached, the PostgreSQL tests fail and say what to start, unless
//! `LECTERN_SKIP_POSTGRES=1`, which skips them with a message.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lectern_store::Store;
use sqlx::{Connection, FromRow, PgConnection, postgres::PgRow, sqlite::SqliteRow};
use tempfile::TempDir;

pub const POSTGRES_URL_ENV: &str = "LECTERN_TEST_POSTGRES_URL";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const SKIP_POSTGRES_ENV: &str = "LECTERN_SKIP_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database: a temporary SQLite file, or a PostgreSQL schema of its own.
#[derive(Debug)]
pub struct TestDb {
    pub kind: Kind,
    url: String,
    /// SQLite: the directory holding the file.
    dir: Option<TempDir>,
    /// PostgreSQL: the schema, and the server URL it lives on.
    schema: Option<(String, String)>,
}

pub type Db = Arc<TestDb>;

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is skipped.
    pub async fn create(kind: Kind) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("lectern.db").display());
                Some(TestDb {
                    kind,
                    url,
                    dir: Some(dir),
                    schema: None,
                })
            }
            Kind::Postgres => {
                if std::env::var(SKIP_POSTGRES_ENV).is_ok_and(|v| v == "1") {
                    eprintln!("skipped: the PostgreSQL half of this test ({SKIP_POSTGRES_ENV}=1)");
                    return None;
                }
                let server = postgres_url();
                let schema = format!("lectern_test_{:016x}", rand::random::<u64>());
                let mut conn = connect_or_explain(&server).await;
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let sep = if server.contains('?') { '&' } else { '?' };
                let url = format!("{server}{sep}options[search_path]={schema}");
                Some(TestDb {
                    kind,
                    url,
                    dir: None,
                    schema: Some((schema, server)),
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQLite file's directory (SQLite only).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    /// One row of raw SQL, bypassing the store (the SQL must read the same on both engines).
    pub async fn raw_row<T>(&self, sql: &str) -> T
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        match self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("{}?mode=ro", self.url))
                    .await
                    .unwrap();
                let row = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                row
            }
            Kind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                let row = sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap();
                conn.close().await.unwrap();
                row
            }
        }
    }

    /// Drops the PostgreSQL schema and everything in it.
    pub async fn remove(&self) {
        if let Some((schema, server)) = &self.schema {
            let mut conn = connect_or_explain(server).await;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    }
}

pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A connection to the test server, or a panic that says what to start.
async fn connect_or_explain(url: &str) -> PgConnection {
    let attempt = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url)).await;
    let reason = match attempt {
        Ok(Ok(conn)) => return conn,
        Ok(Err(err)) => err.to_string(),
        Err(_) => "no answer within 10 s".to_owned(),
    };
    panic!(
        "PostgreSQL is not reachable ({reason}). The store tests run on SQLite and on \
         PostgreSQL: start PostgreSQL (e.g. `pg_ctlcluster 15 main start`, or \
         `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test \
         postgres:15`) and set {POSTGRES_URL_ENV} if it is not at {DEFAULT_POSTGRES_URL}, or set \
         {SKIP_POSTGRES_ENV}=1 to skip the PostgreSQL tests."
    );
}

/// Runs `body` on a fresh database of `kind`, then drops the database, even if `body` panicked
/// (the panic is passed on).
pub async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::create(kind).await else {
        return;
    };
    let db = Arc::new(db);
    let result = tokio::spawn(body(db.clone())).await;
    db.remove().await;
    if let Err(err) = result {
        match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(err) => panic!("the test task failed: {err}"),
        }
    }
}

/// `both_backends!(a, b)`: tests `sqlite::a`, `postgres::a`, `sqlite::b`, ... running the
/// `async fn a(db: Db)` of the enclosing module on each backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::Kind::Sqlite, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::Kind::Postgres, super::$name).await;
                }
            )*
        }
    };
}
