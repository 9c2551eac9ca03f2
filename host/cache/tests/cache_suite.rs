//! The cache suite. `coordination` takes any `Arc<dyn Coordination>` and
//! `queue` any `Arc<dyn WorkQueue>`, so every backend runs the same checks:
//! `memory` and `local` run them in the process and on a redb file (and add
//! what only a file can show: reopening), `redis` on a Redis server whose
//! URL is in `ORG_MESH_TEST_REDIS_URL`; `conformance/redis/run start DIR`
//! starts one.

#![expect(
    clippy::expect_used,
    reason = "a test fails by panicking, with a message saying what broke"
)]

use std::sync::Arc;
use std::time::Duration;

use org_mesh_cache::{Budget, Claim, Coordination, LockToken, Work, WorkQueue};

/// Runs the named checks on one backend. `$setup` is an async fn taking the
/// test's name and giving a guard to hold for the whole test (a temporary
/// folder, say) and the handle the check gets.
macro_rules! backend_tests {
    ($setup:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, handle) = $setup(stringify!($name)).await;
                $module::$name(handle).await;
            }
        )*
    };
}

/// The coordination checks every backend must pass, named once so none can
/// be forgotten for one of them.
macro_rules! coordination_suite {
    ($setup:path) => {
        backend_tests!(
            $setup;
            coordination::it_answers,
            coordination::claims_are_new_then_in_progress_then_done,
            coordination::a_released_claim_can_be_taken_again,
            coordination::a_claim_not_finished_lapses_after_its_hold,
            coordination::a_finished_delivery_is_forgotten_after_keep,
            coordination::locks_are_exclusive_until_unlocked,
            coordination::only_the_holder_extends_a_lock,
            coordination::a_lock_expires_after_its_ttl,
            coordination::kv_values_round_trip_as_bytes,
            coordination::kv_scopes_are_isolated,
            coordination::budgets_expire_at_their_reset,
            coordination::twin_version_counts_changes,
        );
    };
}

/// The work queue checks every backend must pass.
macro_rules! queue_suite {
    ($setup:path) => {
        backend_tests!(
            $setup;
            queue::work_is_handed_out_once_and_gone_when_acked,
            queue::payloads_round_trip_as_bytes,
            queue::next_wakes_up_for_a_push,
            queue::concurrent_consumers_get_different_items,
            queue::a_dead_consumers_work_is_reclaimed_after_min_idle,
            queue::acknowledging_twice_is_harmless,
        );
    };
}

#[path = "cache_suite/coordination.rs"]
mod coordination;

#[path = "cache_suite/queue.rs"]
mod queue;

#[path = "cache_suite/memory.rs"]
mod memory;

#[path = "cache_suite/local.rs"]
mod local;

#[path = "cache_suite/redis.rs"]
mod redis;
