//! The revocation feed: `LISTEN/NOTIFY` on the channel [`REVOCATION_CHANNEL`]. Writes that end
//! sessions notify in their own transaction, so every node hears of it on commit.

use futures::StreamExt as _;
use portcullis_core::ids::UserId;
use portcullis_core::secret::TokenHash;
use portcullis_core::store::{Revocation, RevocationFeed, RevocationStore, StoreError, StoreResult};
use sqlx::PgConnection;
use sqlx::postgres::PgListener;

use crate::{PostgresStore, REVOCATION_CHANNEL, map_err};

/// How long the listener waits before trying again after an error, so a dead server is not
/// hammered.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// Notifies the feed of ended sessions (one notification each, delivered on commit).
pub(crate) async fn notify_revocations(conn: &mut PgConnection, hashes: &[Vec<u8>]) -> StoreResult<()> {
    if hashes.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, 's:' || encode(h, 'hex')) FROM unnest($2::bytea[]) AS h")
        .bind(REVOCATION_CHANNEL)
        .bind(hashes)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

fn parse_payload(p: &str) -> StoreResult<Revocation> {
    let bad = || StoreError::Corrupt(format!("revocation payload {p:?}"));
    if let Some(hex) = p.strip_prefix("s:") {
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(Revocation::Session(TokenHash(out)))
    } else if let Some(id) = p.strip_prefix("u:") {
        Ok(Revocation::User(UserId(id.parse().map_err(|_| bad())?)))
    } else {
        Err(bad())
    }
}

#[async_trait::async_trait]
impl RevocationStore for PostgresStore {
    async fn revocations(&self) -> StoreResult<RevocationFeed> {
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(map_err)?;
        listener.listen(REVOCATION_CHANNEL).await.map_err(map_err)?;
        let stream = futures::stream::unfold(listener, |mut l| async move {
            let item = match l.try_recv().await {
                Ok(Some(n)) => parse_payload(n.payload()),
                // The connection dropped; notifications may have been missed while it was
                // down. The listener reconnects on the next call.
                Ok(None) => Err(StoreError::Unavailable("revocation listener reconnecting".into())),
                Err(e) => {
                    tokio::time::sleep(LISTEN_RETRY).await;
                    Err(map_err(e))
                }
            };
            Some((item, l))
        });
        Ok(stream.boxed())
    }
}
