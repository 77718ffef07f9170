//! One conformance suite for every [`Store`] implementation. The behaviour of storage —
//! normalised uniqueness per tenant, races, cascades, expiry, the revocation feed — is written
//! once here and run against SQLite and PostgreSQL by [`conformance_suite!`].
//!
//! ```ignore
//! async fn db() -> portcullis_store_tests::TestDb { /* a fresh, migrated database */ }
//! portcullis_store_tests::conformance_suite!(db());
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod admin_cases;
pub mod cases;
pub mod journey_cases;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portcullis_core::store::Store;

type Reopen = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn Store>> + Send>> + Send + Sync>;

/// A fresh, migrated database for one test, with a way to open a second, independent handle
/// on it (as another node or process would).
pub struct TestDb {
    /// The store under test.
    pub store: Arc<dyn Store>,
    reopen: Reopen,
    _guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("store", &self.store).finish_non_exhaustive()
    }
}

impl TestDb {
    /// Wraps a store; `reopen` opens another handle on the same database; `guard` is dropped
    /// with the test (e.g. to delete the database).
    pub fn new(store: Arc<dyn Store>, reopen: Reopen, guard: Box<dyn Any + Send + Sync>) -> Self {
        Self { store, reopen, _guard: guard }
    }

    /// A second handle on the same database.
    pub async fn second_handle(&self) -> Arc<dyn Store> {
        (self.reopen)().await
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh database from
/// `$db` (an expression evaluating to a future of [`TestDb`]).
#[macro_export]
macro_rules! conformance_suite {
    ($db:expr) => {
        $crate::conformance_suite!(@cases $db;
            default_tenant_exists,
            tenants_round_trip_with_unique_slugs,
            users_round_trip_every_field,
            identifiers_are_unique_per_tenant_in_normalised_form,
            concurrent_inserts_of_one_email_let_exactly_one_through,
            users_are_found_by_each_login_key,
            updates_apply_changes_and_refuse_conflicts_whole,
            disabling_a_user_ends_their_sessions,
            deleting_a_user_cascades_and_ends_sessions,
            password_changes_compare_and_end_sessions,
            roles_and_attributes_are_unique_and_stay_in_their_tenant,
            sessions_round_trip_and_belong_to_their_user,
            touches_never_move_time_back,
            expired_sessions_are_swept,
            the_revocation_feed_reports_ended_sessions_across_handles,
            failed_multi_row_writes_leave_nothing_behind,
            sessions_open_only_against_the_checked_password_of_a_live_account,
            a_username_match_wins_over_a_phone_match_even_against_users_without_usernames,
            tenants_are_listed_found_by_domain_and_updated,
            users_are_listed_searched_filtered_and_paged,
            imports_skip_taken_identifiers_and_keep_the_rest,
            api_keys_round_trip_and_revoke_within_their_tenant,
            one_time_tokens_work_once_even_when_raced,
            audit_events_are_filtered_and_paged_newest_first,
            roles_and_attributes_are_deleted_with_their_grants,
            an_update_with_a_new_password_is_one_transaction,
            a_unit_of_work_commits_all_its_writes_or_none,
            the_outbox_hands_each_message_to_one_sender_until_it_is_done,
            a_totp_code_is_good_once_per_time_step_even_when_raced,
            a_recovery_code_is_good_once_even_when_raced,
            tokens_of_a_purpose_are_counted_and_spent_together,
            links_within_a_limit_are_counted_atomically_across_handles,
            a_pending_email_waits_beside_the_login_address,
            every_node_gets_the_same_server_secret,
            a_picture_is_replaced_whole_and_stays_in_its_tenant
        );
    };
    (@cases $db:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let db = $db.await;
                $crate::cases::$case(&db).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn names(dir: &str) -> BTreeSet<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir).join("migrations");
        std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Every migration that has been released, with the SHA-256 of its text. A released
    /// migration never changes (a database that ran it would refuse to start): changes go in a
    /// new file, whose checksum is added here when it is released.
    const RELEASED: &[(&str, &str, &str)] = &[
        ("store-sqlite", "0001_initial.sql", "df604e6d1acaca3521ea419779ff09baf3bf910358f5f59985e47a583a614431"),
        ("store-postgres", "0001_initial.sql", "ab46df66aa93049f911174110f93f5b252c3cc0629d1804e34942e260d932207"),
        (
            "store-sqlite",
            "0002_password_scheme.sql",
            "d700b9e4287f712882de71c55d752ee3e115531d46a054a9ddb2e02a02d97832",
        ),
        (
            "store-postgres",
            "0002_password_scheme.sql",
            "b2612f532287c7101e76f11102a608ee355e4586cde37bdb26df870e13e02c16",
        ),
        (
            "store-sqlite",
            "0003_mail_and_second_factors.sql",
            "a52d60fe514774d55fdce70d04d60252758b468b3563fc723117c5773fc7a349",
        ),
        (
            "store-postgres",
            "0003_mail_and_second_factors.sql",
            "42520771f0dd82ecc2fa7a4a3dccf00265a83ec62626f9e6fe7ad33dfb9c1a5c",
        ),
        ("store-sqlite", "0004_avatars.sql", "c49be36138fb35725852810539289b6036204697644a1853c8589dd1ec527665"),
        ("store-postgres", "0004_avatars.sql", "41b0d2278ed7bcbe5f02000dfcf909c69a0499a76c711d17514d7372a1c0e00e"),
    ];

    #[test]
    fn released_migrations_are_frozen() {
        use sha2::Digest as _;
        for (krate, file, want) in RELEASED {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(krate).join("migrations").join(file);
            let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let got = hex::encode(sha2::Sha256::digest(&text));
            assert_eq!(got, *want, "{krate}/migrations/{file} was released and must not change: add a new migration");
        }
        let released: BTreeSet<&str> = RELEASED.iter().map(|(_, f, _)| *f).collect();
        for name in names("store-sqlite") {
            assert!(released.contains(name.as_str()), "{name}: record its checksum here once it is released");
        }
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let sqlite = names("store-sqlite");
        let postgres = names("store-postgres");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres, "every migration must exist for both backends, under the same name");
    }
}
