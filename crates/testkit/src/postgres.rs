//! Fresh PostgreSQL databases for tests: one per test, created on the server named by
//! `PORTCULLIS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! dropped when the handle is dropped.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, PgConnection};

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for as long as this value.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin: String,
}

impl TestDatabase {
    /// Creates an empty database. Fails with a message that says how to provide PostgreSQL.
    pub async fn create() -> Result<Self, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin = admin_url();
        let suffix = u64::from_le_bytes(portcullis_core::secret::random_bytes::<8>().map_err(|e| e.to_string())?);
        let name = format!(
            "portcullis_test_{}_{}_{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            suffix & 0xffff_ffff
        );
        let mut conn = PgConnection::connect(&admin).await.map_err(|e| {
            format!(
                "PostgreSQL is needed for this test but {admin} is unreachable ({e}). Start it (see README: Tests) \
                 or point PORTCULLIS_TEST_POSTGRES_URL at a server where this user may create databases."
            )
        })?;
        let sql = format!("CREATE DATABASE \"{name}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("create database: {e}"))?;
        let _ = conn.close().await;
        let url = replace_database(&admin, &name);
        Ok(Self { name, url, admin })
    }

    /// URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs outside any runtime guarantee; do the work on a thread with its own.
        let t = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = t.join();
    }
}

fn replace_database(url: &str, db: &str) -> String {
    // postgres://user@host:port/dbname?params -> same with another dbname
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end).unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::replace_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(super::replace_database("postgres://h", "x"), "postgres://h/x");
    }
}
