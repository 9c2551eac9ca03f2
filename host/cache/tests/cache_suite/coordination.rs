//! Generic checks of the `Coordination` contract. Expiry is checked with
//! holds of a few hundred milliseconds and waits of twice that, so a slow
//! machine makes them slower, not flaky.

use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

/// Long enough that nothing lapses during a check.
const LONG: Duration = Duration::from_secs(60);
/// Short enough to wait out.
const SHORT: Duration = Duration::from_millis(300);

async fn lapse() {
    tokio::time::sleep(SHORT * 2).await;
}

/// A wall-clock time `after` from now, to the millisecond, so that a
/// backend storing milliseconds gives back exactly what it was told.
fn at(after: Duration) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970");
    let millis = u64::try_from((now + after).as_millis()).expect("a time in range");
    UNIX_EPOCH + Duration::from_millis(millis)
}

pub async fn it_answers(c: Arc<dyn Coordination>) {
    c.ping().await.expect("ping");
    assert!(!c.backend().is_empty());
}

pub async fn claims_are_new_then_in_progress_then_done(c: Arc<dyn Coordination>) {
    assert_eq!(
        c.claim_delivery("d1", LONG).await.expect("claim"),
        Claim::New
    );
    assert_eq!(
        c.claim_delivery("d1", LONG).await.expect("claim"),
        Claim::InProgress
    );
    c.finish_delivery("d1", LONG).await.expect("finish");
    assert_eq!(
        c.claim_delivery("d1", LONG).await.expect("claim"),
        Claim::Done
    );
    assert_eq!(
        c.claim_delivery("d2", LONG).await.expect("claim"),
        Claim::New,
        "another delivery is independent"
    );
}

pub async fn a_released_claim_can_be_taken_again(c: Arc<dyn Coordination>) {
    assert_eq!(
        c.claim_delivery("d", LONG).await.expect("claim"),
        Claim::New
    );
    c.release_delivery("d").await.expect("release");
    assert_eq!(
        c.claim_delivery("d", LONG).await.expect("claim"),
        Claim::New
    );

    // Releasing what was finished must not forget that it was applied.
    c.finish_delivery("d", LONG).await.expect("finish");
    c.release_delivery("d").await.expect("release");
    assert_eq!(
        c.claim_delivery("d", LONG).await.expect("claim"),
        Claim::Done
    );

    c.release_delivery("never-claimed")
        .await
        .expect("releasing an unknown delivery");
}

pub async fn a_claim_not_finished_lapses_after_its_hold(c: Arc<dyn Coordination>) {
    assert_eq!(
        c.claim_delivery("d", SHORT).await.expect("claim"),
        Claim::New
    );
    assert_eq!(
        c.claim_delivery("d", SHORT).await.expect("claim"),
        Claim::InProgress
    );
    lapse().await;
    assert_eq!(
        c.claim_delivery("d", LONG).await.expect("claim"),
        Claim::New,
        "a holder that died must not block a redelivery for ever"
    );
}

pub async fn a_finished_delivery_is_forgotten_after_keep(c: Arc<dyn Coordination>) {
    assert_eq!(
        c.claim_delivery("d", LONG).await.expect("claim"),
        Claim::New
    );
    c.finish_delivery("d", SHORT).await.expect("finish");
    assert_eq!(
        c.claim_delivery("d", LONG).await.expect("claim"),
        Claim::Done
    );
    lapse().await;
    assert_eq!(
        c.claim_delivery("d", LONG).await.expect("claim"),
        Claim::New
    );
}

pub async fn locks_are_exclusive_until_unlocked(c: Arc<dyn Coordination>) {
    let first = c
        .try_lock("sync:github", LONG)
        .await
        .expect("lock")
        .expect("a free lock is taken");
    assert_eq!(c.try_lock("sync:github", LONG).await.expect("lock"), None);
    assert!(
        c.try_lock("sync:okta", LONG).await.expect("lock").is_some(),
        "another lock is independent"
    );

    let wrong = LockToken("not-the-token".into());
    assert!(!c.unlock("sync:github", &wrong).await.expect("unlock"));
    assert_eq!(
        c.try_lock("sync:github", LONG).await.expect("lock"),
        None,
        "a wrong token released nothing"
    );

    assert!(c.unlock("sync:github", &first).await.expect("unlock"));
    assert!(
        !c.unlock("sync:github", &first).await.expect("unlock"),
        "released already"
    );
    let second = c
        .try_lock("sync:github", LONG)
        .await
        .expect("lock")
        .expect("a released lock is free");
    assert_ne!(first, second, "each holder gets its own token");
}

pub async fn only_the_holder_extends_a_lock(c: Arc<dyn Coordination>) {
    let token = c
        .try_lock("l", SHORT)
        .await
        .expect("lock")
        .expect("a free lock is taken");
    let wrong = LockToken("not-the-token".into());
    assert!(!c.extend_lock("l", &wrong, LONG).await.expect("extend"));
    assert!(c.extend_lock("l", &token, LONG).await.expect("extend"));
    lapse().await;
    assert_eq!(
        c.try_lock("l", LONG).await.expect("lock"),
        None,
        "the extension outlived the first ttl"
    );
    assert!(c.unlock("l", &token).await.expect("unlock"));
}

pub async fn a_lock_expires_after_its_ttl(c: Arc<dyn Coordination>) {
    let old = c
        .try_lock("l", SHORT)
        .await
        .expect("lock")
        .expect("a free lock is taken");
    lapse().await;
    assert!(
        !c.extend_lock("l", &old, LONG).await.expect("extend"),
        "an expired lock cannot be extended"
    );
    let new = c
        .try_lock("l", LONG)
        .await
        .expect("lock")
        .expect("an expired lock is free");
    assert!(
        !c.unlock("l", &old).await.expect("unlock"),
        "the old holder cannot release the new holder's lock"
    );
    assert!(c.unlock("l", &new).await.expect("unlock"));
}

pub async fn kv_values_round_trip_as_bytes(c: Arc<dyn Coordination>) {
    let every_byte: Vec<u8> = (0..=255).collect();
    let key = "cursor: ünïcode and spaces";
    assert_eq!(c.kv_get("p", key).await.expect("get"), None);
    c.kv_set("p", key, &every_byte).await.expect("set");
    assert_eq!(c.kv_get("p", key).await.expect("get"), Some(every_byte));

    c.kv_set("p", key, b"").await.expect("set");
    assert_eq!(
        c.kv_get("p", key).await.expect("get"),
        Some(Vec::new()),
        "an empty value is a value, not an absence"
    );

    let large = vec![0xA5; 1 << 20];
    c.kv_set("p", "large", &large).await.expect("set");
    assert_eq!(c.kv_get("p", "large").await.expect("get"), Some(large));

    c.kv_delete("p", key).await.expect("delete");
    assert_eq!(c.kv_get("p", key).await.expect("get"), None);
    c.kv_delete("p", "never-set").await.expect("delete");
}

pub async fn kv_scopes_are_isolated(c: Arc<dyn Coordination>) {
    c.kv_set("a", "k", b"1").await.expect("set");
    c.kv_set("b", "k", b"2").await.expect("set");
    // Scopes and keys that would run together if joined naively.
    c.kv_set("a:b", "c", b"3").await.expect("set");
    c.kv_set("a", "b:c", b"4").await.expect("set");

    assert_eq!(c.kv_get("a", "k").await.expect("get"), Some(b"1".to_vec()));
    assert_eq!(c.kv_get("b", "k").await.expect("get"), Some(b"2".to_vec()));
    assert_eq!(
        c.kv_get("a:b", "c").await.expect("get"),
        Some(b"3".to_vec())
    );
    assert_eq!(
        c.kv_get("a", "b:c").await.expect("get"),
        Some(b"4".to_vec())
    );
    assert_eq!(c.kv_get("c", "k").await.expect("get"), None);

    c.kv_delete("b", "k").await.expect("delete");
    assert_eq!(c.kv_get("b", "k").await.expect("get"), None);
    assert_eq!(c.kv_get("a", "k").await.expect("get"), Some(b"1".to_vec()));
}

pub async fn budgets_expire_at_their_reset(c: Arc<dyn Coordination>) {
    let scope = "github@api.github.com:443";
    assert_eq!(c.budget(scope).await.expect("budget"), None);

    let exhausted = Budget {
        remaining: 0,
        reset: at(SHORT),
    };
    c.record_budget(scope, exhausted).await.expect("record");
    assert_eq!(c.budget(scope).await.expect("budget"), Some(exhausted));
    assert_eq!(
        c.budget("other@api.github.com:443").await.expect("budget"),
        None,
        "budgets are per scope"
    );
    lapse().await;
    assert_eq!(
        c.budget(scope).await.expect("budget"),
        None,
        "a budget is gone once it reset"
    );

    let plenty = Budget {
        remaining: 4999,
        reset: at(LONG),
    };
    let less = Budget {
        remaining: 4998,
        reset: at(LONG),
    };
    c.record_budget(scope, plenty).await.expect("record");
    c.record_budget(scope, less).await.expect("record");
    assert_eq!(
        c.budget(scope).await.expect("budget"),
        Some(less),
        "the last word counts"
    );

    let past = Budget {
        remaining: 0,
        reset: UNIX_EPOCH + Duration::from_secs(1_500_000_000),
    };
    c.record_budget(scope, past).await.expect("record");
    assert_eq!(
        c.budget(scope).await.expect("budget"),
        None,
        "a reset in the past means the budget refilled"
    );
}

pub async fn twin_version_counts_changes(c: Arc<dyn Coordination>) {
    assert_eq!(c.twin_version().await.expect("version"), 0);
    assert_eq!(c.bump_twin_version().await.expect("bump"), 1);
    assert_eq!(c.bump_twin_version().await.expect("bump"), 2);
    assert_eq!(c.twin_version().await.expect("version"), 2);
}
