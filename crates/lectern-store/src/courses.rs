//! Courses, rosters, schedules and admin API keys (`migrations/0002_courses.sql`).
//!
//! The store checks only what the database can: ids exist or clash. Everything else (timezones,
//! schedule specs, roles from user input) is validated by the server's service layer first.

use lectern_proto::{ClassMode, Role, UnixMillis};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteExecutor};

use crate::row::Columns;
use crate::sqlite::{SqliteBackend, finish};
use crate::{Backend, Store, StoreError, classify, to_db};

/// A course and its room timing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub id: String,
    pub title: String,
    /// IANA timezone name.
    pub timezone: String,
    pub lobby_minutes: u32,
    pub warning_minutes: u32,
    pub grace_minutes: u32,
    pub auto_start: bool,
    /// Record every class of the course as it goes live.
    pub record_sessions: bool,
    /// Students may download the course's recordings (staff always may).
    pub recording_downloads: bool,
    /// The layout its rooms start in (`migrations/0005_class_mode.sql`).
    pub class_mode: ClassMode,
    pub created_at: UnixMillis,
}

/// One person on a course's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseMember {
    /// The participant id their join tokens carry.
    pub member_id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
}

/// A course schedule: `spec` is the JSON the server validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchedule {
    pub id: String,
    pub course_id: String,
    pub spec: String,
    pub created_at: UnixMillis,
}

/// An admin API key's record; the key itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: UnixMillis,
}

/// The stored form of an API key: SHA-256, lowercase hex. Keys are long random strings, so a
/// fast unsalted hash is enough (nothing to brute-force), and it lets the lookup use an index.
pub fn hash_api_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Creates a course; [`StoreError::Conflict`] if the id is taken.
    pub async fn create_course(&self, course: &Course) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.create_course(course).await,
            Backend::Postgres(db) => db.create_course(course).await,
        }
    }

    /// Every course, by id.
    pub async fn list_courses(&self) -> Result<Vec<Course>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.list_courses().await,
            Backend::Postgres(db) => db.list_courses().await,
        }
    }

    pub async fn course(&self, id: &str) -> Result<Option<Course>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.course(id).await,
            Backend::Postgres(db) => db.course(id).await,
        }
    }

    /// Adds one member; [`StoreError::Conflict`] if already on the roster,
    /// [`StoreError::NotFound`] if the course does not exist.
    pub async fn add_member(&self, course: &str, member: &CourseMember) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.add_member(course, member).await,
            Backend::Postgres(db) => db.add_member(course, member).await,
        }
    }

    /// Adds or updates (name, email, role) every member in ONE transaction: all or nothing.
    pub async fn upsert_members(
        &self,
        course: &str,
        members: &[CourseMember],
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.upsert_members(course, members).await,
            Backend::Postgres(db) => db.upsert_members(course, members).await,
        }
    }

    /// Removes a member; whether they were on the roster.
    pub async fn remove_member(&self, course: &str, member: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.remove_member(course, member).await,
            Backend::Postgres(db) => db.remove_member(course, member).await,
        }
    }

    /// Changes a member's role; whether they were on the roster.
    pub async fn set_member_role(
        &self,
        course: &str,
        member: &str,
        role: Role,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.set_member_role(course, member, role).await,
            Backend::Postgres(db) => db.set_member_role(course, member, role).await,
        }
    }

    /// The roster, by member id.
    pub async fn members(&self, course: &str) -> Result<Vec<CourseMember>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.members(course, None).await,
            Backend::Postgres(db) => db.members(course, None).await,
        }
    }

    pub async fn member(
        &self,
        course: &str,
        member: &str,
    ) -> Result<Option<CourseMember>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => Ok(db.members(course, Some(member)).await?.pop()),
            Backend::Postgres(db) => Ok(db.members(course, Some(member)).await?.pop()),
        }
    }

    /// Adds a schedule; [`StoreError::NotFound`] if the course does not exist.
    pub async fn add_schedule(&self, schedule: &StoredSchedule) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.add_schedule(schedule).await,
            Backend::Postgres(db) => db.add_schedule(schedule).await,
        }
    }

    /// The course's schedules, oldest first.
    pub async fn schedules(&self, course: &str) -> Result<Vec<StoredSchedule>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.schedules(course).await,
            Backend::Postgres(db) => db.schedules(course).await,
        }
    }

    /// Deletes a schedule of the course; whether it existed.
    pub async fn delete_schedule(&self, course: &str, id: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.delete_schedule(course, id).await,
            Backend::Postgres(db) => db.delete_schedule(course, id).await,
        }
    }

    /// Stores a new API key by its hash. `key` is the secret the caller shows once.
    pub async fn create_api_key(
        &self,
        id: &str,
        name: &str,
        key: &str,
        now: UnixMillis,
    ) -> Result<ApiKey, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.create_api_key(id, name, key, now).await,
            Backend::Postgres(db) => db.create_api_key(id, name, key, now).await,
        }
    }

    /// The key's record if `key` is a stored API key.
    pub async fn verify_api_key(&self, key: &str) -> Result<Option<ApiKey>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.verify_api_key(key).await,
            Backend::Postgres(db) => db.verify_api_key(key).await,
        }
    }

    /// Stores a member's calendar feed token by its hash, replacing (revoking) any earlier one.
    /// [`StoreError::NotFound`] if the member is not on the course's roster.
    pub async fn set_member_feed(
        &self,
        course: &str,
        member: &str,
        token: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.set_member_feed(course, member, token, now).await,
            Backend::Postgres(db) => db.set_member_feed(course, member, token, now).await,
        }
    }

    /// Revokes a member's calendar feed; whether there was one.
    pub async fn revoke_member_feed(&self, course: &str, member: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.revoke_member_feed(course, member).await,
            Backend::Postgres(db) => db.revoke_member_feed(course, member).await,
        }
    }

    /// The member a calendar feed token stands for: `(course id, member)`.
    pub async fn member_by_feed(
        &self,
        token: &str,
    ) -> Result<Option<(String, CourseMember)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.member_by_feed(token).await,
            Backend::Postgres(db) => db.member_by_feed(token).await,
        }
    }
}

const COURSE_COLUMNS: &str = "id, title, timezone, lobby_minutes, warning_minutes, \
                              grace_minutes, auto_start, record_sessions, \
                              recording_downloads, class_mode, created_at";

/// Adds one roster row; `upsert_members` appends its `ON CONFLICT` clause.
const INSERT_MEMBER: &str = "INSERT INTO course_members (course_id, member_id, name, email, role) \
                             VALUES (?, ?, ?, ?, ?)";

pub(crate) fn minutes_from_db(what: &'static str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value}")))
}

pub(crate) fn course_from_row(row: &impl Columns) -> Result<Course, StoreError> {
    let mode = row.text("class_mode")?;
    Ok(Course {
        id: row.text("id")?,
        title: row.text("title")?,
        timezone: row.text("timezone")?,
        lobby_minutes: minutes_from_db("lobby_minutes", row.int("lobby_minutes")?)?,
        warning_minutes: minutes_from_db("warning_minutes", row.int("warning_minutes")?)?,
        grace_minutes: minutes_from_db("grace_minutes", row.int("grace_minutes")?)?,
        auto_start: row.flag("auto_start")?,
        record_sessions: row.flag("record_sessions")?,
        recording_downloads: row.flag("recording_downloads")?,
        class_mode: ClassMode::parse(&mode)
            .ok_or_else(|| StoreError::Corrupt(format!("class_mode {mode:?}")))?,
        created_at: row.unsigned("created_at")?,
    })
}

pub(crate) fn member_from_row(row: &impl Columns) -> Result<CourseMember, StoreError> {
    Ok(CourseMember {
        member_id: row.text("member_id")?,
        name: row.text("name")?,
        email: row.opt_text("email")?,
        role: row.role("role")?,
    })
}

pub(crate) fn schedule_from_row(row: &impl Columns) -> Result<StoredSchedule, StoreError> {
    Ok(StoredSchedule {
        id: row.text("id")?,
        course_id: row.text("course_id")?,
        spec: row.text("spec")?,
        created_at: row.unsigned("created_at")?,
    })
}

pub(crate) fn api_key_from_row(row: &impl Columns) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.text("id")?,
        name: row.text("name")?,
        created_at: row.unsigned("created_at")?,
    })
}

/// Writes one roster row with `sql` ([`INSERT_MEMBER`], perhaps with an upsert clause).
async fn write_member<'c>(
    conn: impl SqliteExecutor<'c>,
    sql: &str,
    course: &str,
    member: &CourseMember,
) -> Result<(), StoreError> {
    let query = sqlx::query(sql)
        .bind(course)
        .bind(&member.member_id)
        .bind(&member.name)
        .bind(&member.email)
        .bind(member.role.as_str());
    insert(conn, query, "member", &member.member_id, course).await
}

/// Runs an INSERT with `conn`; a violated constraint as [`classify`] reads it.
async fn insert<'c, 'q>(
    conn: impl SqliteExecutor<'c>,
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    what: &'static str,
    id: &str,
    course: &str,
) -> Result<(), StoreError> {
    query
        .execute(conn)
        .await
        .map_err(|err| classify(err, (what, id), ("course", course)))?;
    Ok(())
}

impl SqliteBackend {
    /// Runs an UPDATE or DELETE with these text parameters; whether it touched any row.
    async fn changed<'q>(&self, sql: &'q str, params: &[&'q str]) -> Result<bool, StoreError> {
        let mut query = sqlx::query(sql);
        for param in params {
            query = query.bind(*param);
        }
        Ok(query.execute(&self.writer).await?.rows_affected() > 0)
    }

    async fn create_course(&self, course: &Course) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO courses ({COURSE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let query = sqlx::query(&sql)
            .bind(&course.id)
            .bind(&course.title)
            .bind(&course.timezone)
            .bind(i64::from(course.lobby_minutes))
            .bind(i64::from(course.warning_minutes))
            .bind(i64::from(course.grace_minutes))
            .bind(i64::from(course.auto_start))
            .bind(i64::from(course.record_sessions))
            .bind(i64::from(course.recording_downloads))
            .bind(course.class_mode.as_str())
            .bind(to_db("time", course.created_at)?);
        insert(&self.writer, query, "course", &course.id, &course.id).await
    }

    async fn list_courses(&self) -> Result<Vec<Course>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COURSE_COLUMNS} FROM courses ORDER BY id"))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(course_from_row).collect()
    }

    async fn course(&self, id: &str) -> Result<Option<Course>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COURSE_COLUMNS} FROM courses WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(course_from_row).transpose()
    }

    async fn add_member(&self, course: &str, member: &CourseMember) -> Result<(), StoreError> {
        write_member(&self.writer, INSERT_MEMBER, course, member).await
    }

    async fn upsert_members(
        &self,
        course: &str,
        members: &[CourseMember],
    ) -> Result<(), StoreError> {
        let sql = format!(
            "{INSERT_MEMBER} ON CONFLICT (course_id, member_id) DO UPDATE SET \
             name = excluded.name, email = excluded.email, role = excluded.role"
        );
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let result = async {
            for member in members {
                write_member(&mut *tx, &sql, course, member).await?;
            }
            Ok(())
        }
        .await;
        finish(tx, result).await?;
        Ok(())
    }

    async fn remove_member(&self, course: &str, member: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM course_members WHERE course_id = ? AND member_id = ?";
        self.changed(sql, &[course, member]).await
    }

    async fn set_member_role(
        &self,
        course: &str,
        member: &str,
        role: Role,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE course_members SET role = ? WHERE course_id = ? AND member_id = ?";
        self.changed(sql, &[role.as_str(), course, member]).await
    }

    async fn members(
        &self,
        course: &str,
        only: Option<&str>,
    ) -> Result<Vec<CourseMember>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id, name, email, role FROM course_members \
             WHERE course_id = ?1 AND (?2 IS NULL OR member_id = ?2) ORDER BY member_id",
        )
        .bind(course)
        .bind(only)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(member_from_row).collect()
    }

    async fn add_schedule(&self, schedule: &StoredSchedule) -> Result<(), StoreError> {
        let sql = "INSERT INTO schedules (id, course_id, spec, created_at) VALUES (?, ?, ?, ?)";
        let query = sqlx::query(sql)
            .bind(&schedule.id)
            .bind(&schedule.course_id)
            .bind(&schedule.spec)
            .bind(to_db("time", schedule.created_at)?);
        insert(
            &self.writer,
            query,
            "schedule",
            &schedule.id,
            &schedule.course_id,
        )
        .await
    }

    async fn schedules(&self, course: &str) -> Result<Vec<StoredSchedule>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, course_id, spec, created_at FROM schedules \
             WHERE course_id = ? ORDER BY created_at, id",
        )
        .bind(course)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn delete_schedule(&self, course: &str, id: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM schedules WHERE course_id = ? AND id = ?";
        self.changed(sql, &[course, id]).await
    }

    async fn create_api_key(
        &self,
        id: &str,
        name: &str,
        key: &str,
        now: UnixMillis,
    ) -> Result<ApiKey, StoreError> {
        let sql = "INSERT INTO api_keys (id, name, hash, created_at) VALUES (?, ?, ?, ?)";
        let query = sqlx::query(sql)
            .bind(id)
            .bind(name)
            .bind(hash_api_key(key))
            .bind(to_db("time", now)?);
        insert(&self.writer, query, "api key", id, "").await?;
        Ok(ApiKey {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: now,
        })
    }

    async fn verify_api_key(&self, key: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM api_keys WHERE hash = ?")
            .bind(hash_api_key(key))
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn set_member_feed(
        &self,
        course: &str,
        member: &str,
        token: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO member_feeds (course_id, member_id, token_hash, created_at) \
                   VALUES (?, ?, ?, ?) \
                   ON CONFLICT (course_id, member_id) \
                   DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at";
        let query = sqlx::query(sql)
            .bind(course)
            .bind(member)
            .bind(hash_api_key(token))
            .bind(to_db("time", now)?);
        insert(&self.writer, query, "member", member, course).await
    }

    async fn revoke_member_feed(&self, course: &str, member: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM member_feeds WHERE course_id = ? AND member_id = ?";
        self.changed(sql, &[course, member]).await
    }

    async fn member_by_feed(
        &self,
        token: &str,
    ) -> Result<Option<(String, CourseMember)>, StoreError> {
        let row = sqlx::query("SELECT course_id, member_id FROM member_feeds WHERE token_hash = ?")
            .bind(hash_api_key(token))
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let course: String = row.try_get("course_id")?;
        let member: String = row.try_get("member_id")?;
        let found = self.members(&course, Some(&member)).await?.pop();
        Ok(found.map(|m| (course, m)))
    }
}
