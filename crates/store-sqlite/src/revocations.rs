//! The revocation feed: the `session_revocations` table, appended to in the transaction that
//! ends sessions and polled by every process (ids are assigned in commit order).

use std::time::Duration;

use futures::StreamExt as _;
use portcullis_core::clock::Timestamp;
use portcullis_core::ids::UserId;
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{Revocation, RevocationFeed, RevocationStore, StoreError, StoreResult};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::{SqliteStore, map_err};

/// Appends revocations (one per ended session) to the feed, in the caller's transaction.
pub(crate) async fn record_revocations(
    conn: &mut SqliteConnection,
    hashes: &[Vec<u8>],
    now: Timestamp,
) -> StoreResult<()> {
    for h in hashes {
        sqlx::query("INSERT INTO session_revocations (token_hash, created_at, updated_at) VALUES (?1, ?2, ?2)")
            .bind(h.clone())
            .bind(now.unix_micros())
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl RevocationStore for SqliteStore {
    async fn revocations(&self) -> StoreResult<RevocationFeed> {
        let start: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM session_revocations")
            .fetch_one(&self.feed)
            .await
            .map_err(map_err)?;
        let state = FeedState { pool: self.feed.clone(), cursor: start, every: self.options.revocation_poll_interval };
        let batches = futures::stream::unfold(state, |mut st| async move {
            tokio::time::sleep(st.every).await;
            let batch = st.poll().await;
            Some((batch, st))
        });
        Ok(Box::pin(batches.flat_map(|b: Vec<StoreResult<Revocation>>| futures::stream::iter(b))))
    }
}

struct FeedState {
    pool: SqlitePool,
    cursor: i64,
    every: Duration,
}

impl FeedState {
    async fn poll(&mut self) -> Vec<StoreResult<Revocation>> {
        let rows =
            sqlx::query("SELECT id, token_hash, user_id FROM session_revocations WHERE id > ?1 ORDER BY id LIMIT 1000")
                .bind(self.cursor)
                .fetch_all(&self.pool)
                .await;
        let rows = match rows {
            Ok(r) => r,
            Err(e) => return vec![Err(map_err(e))],
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = match row.try_get("id") {
                Ok(id) => id,
                Err(e) => return vec![Err(map_err(e))],
            };
            // Move past the row whatever it holds, so one bad row cannot stall the feed.
            self.cursor = id;
            out.push(decode_revocation(&row));
        }
        out
    }
}

fn decode_revocation(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Revocation> {
    let hash: Option<Vec<u8>> = row.try_get("token_hash").map_err(map_err)?;
    let user: Option<i64> = row.try_get("user_id").map_err(map_err)?;
    Ok(match (hash, user) {
        (Some(h), _) => Revocation::Session(
            TokenHash::from_slice(&h).ok_or_else(|| StoreError::Corrupt("revocation token hash".into()))?,
        ),
        (None, Some(u)) => Revocation::User(UserId(u)),
        (None, None) => Revocation::All,
    })
}
