//! The store conformance suite: the same checks, through the store's own
//! interface, against every backend — a real SQLite file and a real
//! PostgreSQL server (see `facegate_testkit::postgres`). Each check gets a fresh
//! store; a backend passes when every check does.

mod accounts;
mod attempts;
mod keys;
mod oidc;
mod shared;
mod subject;
mod templates;

/// Declares every check once per backend: `sqlite::name` and
/// `postgres::name`.
macro_rules! conformance {
    ($($module:ident :: $check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let s = crate::subject::Subject::new(crate::subject::Kind::Sqlite).await;
                    crate::$module::$check(s).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let s = crate::subject::Subject::new(crate::subject::Kind::Postgres).await;
                    crate::$module::$check(s).await;
                }
            )*
        }
    };
}

conformance!(
    accounts::users_are_created_found_and_changed,
    accounts::usernames_are_unique_ignoring_case,
    accounts::a_batch_of_users_is_all_or_nothing,
    accounts::face_failures_lock_exactly_at_the_threshold,
    accounts::the_audit_trail_filters_and_refuses_changes,
    accounts::sessions_are_kept_and_expire,
    accounts::migrations_run_once_when_instances_start_together,
    templates::templates_round_trip_with_their_photos,
    templates::matching_sees_active_users_of_the_model,
    templates::matching_reads_a_large_gallery_whole,
    templates::biometric_data_is_sealed_at_rest,
    templates::deleting_templates_deletes_their_photos,
    templates::deleting_a_user_leaves_nothing_of_them,
    attempts::attempts_keep_their_probes_sealed,
    attempts::retention_deletes_old_attempts_and_probes,
    keys::a_wrong_key_is_refused_before_anything_is_written,
    keys::keys_rotate_record_by_record,
    keys::unsealed_or_moved_records_are_refused_and_audited,
    shared::a_challenge_is_taken_once,
    shared::rate_limits_hold_across_instances,
    shared::a_periodic_job_runs_once_per_period,
    shared::an_exclusive_lock_has_one_holder,
    shared::changes_are_announced_to_every_instance,
    shared::the_audit_trail_stays_whole_and_ordered_with_two_writers,
    oidc::clients_codes_and_tokens_round_trip,
    oidc::signing_keys_are_sealed_and_rotate_with_the_master_key,
);
