//! Courses, rosters, schedules, API keys and calendar feeds on PostgreSQL (see `courses.rs`
//! for the semantics, which are the same).

use lectern_proto::{Role, UnixMillis};
use sqlx::Row;
use sqlx::postgres::PgExecutor;

use super::{PgBackend, finish};
use crate::courses::{
    ApiKey, Course, CourseMember, StoredSchedule, api_key_from_row, course_from_row, hash_api_key,
    member_from_row, schedule_from_row,
};
use crate::{StoreError, classify, to_db};

const COURSE_COLUMNS: &str = "id, title, timezone, lobby_minutes, warning_minutes, \
                              grace_minutes, auto_start, record_sessions, \
                              recording_downloads, class_mode, created_at";

const INSERT_MEMBER: &str = "INSERT INTO course_members (course_id, member_id, name, email, role) \
                             VALUES ($1, $2, $3, $4, $5)";

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
        .map_err(|err| classify(err, ("member", &member.member_id), ("course", course)))?;
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
            .map_err(|err| classify(err, ("course", &course.id), ("course", &course.id)))?;
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
        .map_err(|err| {
            classify(
                err,
                ("schedule", &schedule.id),
                ("course", &schedule.course_id),
            )
        })?;
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
            .map_err(|err| classify(err, ("api key", id), ("course", "")))?;
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
        .map_err(|err| classify(err, ("member", member), ("course", course)))?;
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
