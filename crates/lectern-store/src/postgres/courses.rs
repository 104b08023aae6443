//! Courses, rosters, schedules, API keys and calendar feeds on PostgreSQL (see `courses.rs`
//! for the semantics, which are the same).

use lectern_proto::{ClassMode, Role, UnixMillis};
use sqlx::Row;
use sqlx::postgres::{PgExecutor, PgRow};

use super::{PgBackend, finish};
use crate::courses::{ApiKey, Course, CourseMember, StoredSchedule, hash_api_key};
use crate::sqlite::role_from_db;
use crate::{StoreError, from_db, to_db};

const COURSE_COLUMNS: &str = "id, title, timezone, lobby_minutes, warning_minutes, \
                              grace_minutes, auto_start, record_sessions, \
                              recording_downloads, class_mode, created_at";

const INSERT_MEMBER: &str = "INSERT INTO course_members (course_id, member_id, name, email, role) \
                             VALUES ($1, $2, $3, $4, $5)";

fn minutes_from_db(what: &'static str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value}")))
}

fn course_from_row(row: &PgRow) -> Result<Course, StoreError> {
    Ok(Course {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        timezone: row.try_get("timezone")?,
        lobby_minutes: minutes_from_db("lobby_minutes", row.try_get("lobby_minutes")?)?,
        warning_minutes: minutes_from_db("warning_minutes", row.try_get("warning_minutes")?)?,
        grace_minutes: minutes_from_db("grace_minutes", row.try_get("grace_minutes")?)?,
        auto_start: row.try_get("auto_start")?,
        record_sessions: row.try_get("record_sessions")?,
        recording_downloads: row.try_get("recording_downloads")?,
        class_mode: {
            let mode: String = row.try_get("class_mode")?;
            ClassMode::parse(&mode)
                .ok_or_else(|| StoreError::Corrupt(format!("class_mode {mode:?}")))?
        },
        created_at: from_db("created_at", row.try_get("created_at")?)?,
    })
}

fn member_from_row(row: &PgRow) -> Result<CourseMember, StoreError> {
    Ok(CourseMember {
        member_id: row.try_get("member_id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        role: role_from_db(row.try_get("role")?)?,
    })
}

fn schedule_from_row(row: &PgRow) -> Result<StoredSchedule, StoreError> {
    Ok(StoredSchedule {
        id: row.try_get("id")?,
        course_id: row.try_get("course_id")?,
        spec: row.try_get("spec")?,
        created_at: from_db("created_at", row.try_get("created_at")?)?,
    })
}

fn api_key_from_row(row: &PgRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: from_db("created_at", row.try_get("created_at")?)?,
    })
}

/// A unique violation as [`StoreError::Conflict`], a foreign-key violation as the parent course
/// being [`StoreError::NotFound`]; anything else as it is.
fn classify(err: sqlx::Error, what: &'static str, id: &str, course: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            what,
            id: id.to_owned(),
        },
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
            what: "course",
            id: course.to_owned(),
        },
        _ => StoreError::Database(err),
    }
}

async fn write_member<'c>(
    conn: impl PgExecutor<'c>,
    sql: &str,
    course: &str,
    member: &CourseMember,
) -> Result<(), StoreError> {
    sqlx::query(sql)
        .bind(course)
        .bind(&member.member_id)
        .bind(&member.name)
        .bind(&member.email)
        .bind(member.role.as_str())
        .execute(conn)
        .await
        .map_err(|err| classify(err, "member", &member.member_id, course))?;
    Ok(())
}

impl PgBackend {
    /// Runs an UPDATE or DELETE with these text parameters; whether it touched any row.
    async fn changed<'q>(&self, sql: &'q str, params: &[&'q str]) -> Result<bool, StoreError> {
        let mut query = sqlx::query(sql);
        for param in params {
            query = query.bind(*param);
        }
        Ok(query.execute(&self.pool).await?.rows_affected() > 0)
    }

    pub(crate) async fn create_course(&self, course: &Course) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO courses ({COURSE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        sqlx::query(&sql)
            .bind(&course.id)
            .bind(&course.title)
            .bind(&course.timezone)
            .bind(i64::from(course.lobby_minutes))
            .bind(i64::from(course.warning_minutes))
            .bind(i64::from(course.grace_minutes))
            .bind(course.auto_start)
            .bind(course.record_sessions)
            .bind(course.recording_downloads)
            .bind(course.class_mode.as_str())
            .bind(to_db("time", course.created_at)?)
            .execute(&self.pool)
            .await
            .map_err(|err| classify(err, "course", &course.id, &course.id))?;
        Ok(())
    }

    pub(crate) async fn list_courses(&self) -> Result<Vec<Course>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COURSE_COLUMNS} FROM courses ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(course_from_row).collect()
    }

    pub(crate) async fn course(&self, id: &str) -> Result<Option<Course>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COURSE_COLUMNS} FROM courses WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(course_from_row).transpose()
    }

    pub(crate) async fn add_member(
        &self,
        course: &str,
        member: &CourseMember,
    ) -> Result<(), StoreError> {
        write_member(&self.pool, INSERT_MEMBER, course, member).await
    }

    pub(crate) async fn upsert_members(
        &self,
        course: &str,
        members: &[CourseMember],
    ) -> Result<(), StoreError> {
        let sql = format!(
            "{INSERT_MEMBER} ON CONFLICT (course_id, member_id) DO UPDATE SET \
             name = excluded.name, email = excluded.email, role = excluded.role"
        );
        let mut tx = self.pool.begin().await?;
        let result = async {
            for member in members {
                write_member(&mut *tx, &sql, course, member).await?;
            }
            Ok(())
        }
        .await;
        finish(tx, result).await
    }

    pub(crate) async fn remove_member(
        &self,
        course: &str,
        member: &str,
    ) -> Result<bool, StoreError> {
        let sql = "DELETE FROM course_members WHERE course_id = $1 AND member_id = $2";
        self.changed(sql, &[course, member]).await
    }

    pub(crate) async fn set_member_role(
        &self,
        course: &str,
        member: &str,
        role: Role,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE course_members SET role = $1 WHERE course_id = $2 AND member_id = $3";
        self.changed(sql, &[role.as_str(), course, member]).await
    }

    pub(crate) async fn members(
        &self,
        course: &str,
        only: Option<&str>,
    ) -> Result<Vec<CourseMember>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id, name, email, role FROM course_members \
             WHERE course_id = $1 AND ($2::TEXT IS NULL OR member_id = $2) ORDER BY member_id",
        )
        .bind(course)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_from_row).collect()
    }

    pub(crate) async fn add_schedule(&self, schedule: &StoredSchedule) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schedules (id, course_id, spec, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&schedule.id)
        .bind(&schedule.course_id)
        .bind(&schedule.spec)
        .bind(to_db("time", schedule.created_at)?)
        .execute(&self.pool)
        .await
        .map_err(|err| classify(err, "schedule", &schedule.id, &schedule.course_id))?;
        Ok(())
    }

    pub(crate) async fn schedules(&self, course: &str) -> Result<Vec<StoredSchedule>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, course_id, spec, created_at FROM schedules \
             WHERE course_id = $1 ORDER BY created_at, id",
        )
        .bind(course)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    pub(crate) async fn delete_schedule(&self, course: &str, id: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM schedules WHERE course_id = $1 AND id = $2";
        self.changed(sql, &[course, id]).await
    }

    pub(crate) async fn create_api_key(
        &self,
        id: &str,
        name: &str,
        key: &str,
        now: UnixMillis,
    ) -> Result<ApiKey, StoreError> {
        sqlx::query("INSERT INTO api_keys (id, name, hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(name)
            .bind(hash_api_key(key))
            .bind(to_db("time", now)?)
            .execute(&self.pool)
            .await
            .map_err(|err| classify(err, "api key", id, ""))?;
        Ok(ApiKey {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: now,
        })
    }

    pub(crate) async fn verify_api_key(&self, key: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM api_keys WHERE hash = $1")
            .bind(hash_api_key(key))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    pub(crate) async fn set_member_feed(
        &self,
        course: &str,
        member: &str,
        token: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO member_feeds (course_id, member_id, token_hash, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (course_id, member_id) \
             DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at",
        )
        .bind(course)
        .bind(member)
        .bind(hash_api_key(token))
        .bind(to_db("time", now)?)
        .execute(&self.pool)
        .await
        .map_err(|err| classify(err, "member", member, course))?;
        Ok(())
    }

    pub(crate) async fn revoke_member_feed(
        &self,
        course: &str,
        member: &str,
    ) -> Result<bool, StoreError> {
        let sql = "DELETE FROM member_feeds WHERE course_id = $1 AND member_id = $2";
        self.changed(sql, &[course, member]).await
    }

    pub(crate) async fn member_by_feed(
        &self,
        token: &str,
    ) -> Result<Option<(String, CourseMember)>, StoreError> {
        let row = sqlx::query(
            "SELECT f.course_id, m.member_id, m.name, m.email, m.role FROM member_feeds f \
             JOIN course_members m ON m.course_id = f.course_id AND m.member_id = f.member_id \
             WHERE f.token_hash = $1",
        )
        .bind(hash_api_key(token))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some((row.try_get("course_id")?, member_from_row(&row)?)))
    }
}
