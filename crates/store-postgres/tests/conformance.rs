//! The store conformance suite on PostgreSQL. Needs a PostgreSQL server (see README: Tests).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use portcullis_store_postgres::testing::TestDatabase;
use portcullis_store_postgres::{PostgresOptions, PostgresStore};
use portcullis_store_tests::TestDb;

async fn db() -> TestDb {
    let database = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let url = database.url().to_owned();
    let store = PostgresStore::open(&url, PostgresOptions { max_connections: 8, ..Default::default() }).await.unwrap();
    TestDb::new(
        Arc::new(store),
        Box::new(move || {
            let url = url.clone();
            Box::pin(async move {
                Arc::new(PostgresStore::open(&url, PostgresOptions::default()).await.unwrap())
                    as Arc<dyn portcullis_core::store::Store>
            })
        }),
        Box::new(database),
    )
}

portcullis_store_tests::conformance_suite!(db());
