//! Stored changes reach the sink after the identity provider has its
//! answer: in the order that keeps a group's members ahead of it, without
//! losing a change written meanwhile, and without one the sink refuses
//! holding up the rest.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on a broken setup"
)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use org_mesh_scim::{
    EmbeddedRepository, HandedOver, MemoryRepository, ResourceKind, ScimRepository, ScimService,
    StoredResource,
};
use serde_json::{Value, json};

use crate::common::{Event, Server, patch_op, start};

/// Deactivates user `id` as Okta does.
async fn deactivate(server: &Server, id: &str) {
    let r = server
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "value": {"active": false}}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn created(server: &Server, path: &str, body: Value) -> String {
    let r = server.post(path, &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_write_is_answered_before_the_sink_sees_it_and_kept_while_the_sink_is_down() {
    let server = start().await;
    server.sink.failing.store(true, Ordering::SeqCst);
    let id = created(
        &server,
        "/Users",
        json!({"userName": "kept@example.com", "active": true}),
    )
    .await;
    assert!(server.sink.events().is_empty(), "answered before handing");
    deactivate(&server, &id).await;

    let down = server.service.hand_over_unsent().await;
    assert!(
        down.is_err_and(|e| e.to_string().contains("not accepting")),
        "the sink's problem is named"
    );
    assert_eq!(
        server.service.unsent().await.unwrap(),
        1,
        "one per resource"
    );
    let r = server.get(&format!("/Users/{id}")).await;
    assert_eq!(r.body["active"], false, "the accepted change is kept");

    server.sink.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        server.service.hand_over_new().await.unwrap(),
        HandedOver {
            handed: 1,
            refused: 0
        }
    );
    assert_eq!(server.sink.last(&id).unwrap()["active"], false);
    assert_eq!(server.service.hand_over_unsent().await.unwrap().handed, 0);
    assert_eq!(server.service.unsent().await.unwrap(), 0);

    // A deletion the sink could not take is handed over later, though the
    // identity provider's retry only gets a 404.
    server.sink.failing.store(true, Ordering::SeqCst);
    assert_eq!(server.delete(&format!("/Users/{id}")).await.status, 204);
    assert!(server.service.hand_over_new().await.is_err());
    server.sink.failing.store(false, Ordering::SeqCst);
    assert_eq!(server.delete(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(server.service.hand_over_new().await.unwrap().handed, 1);
    assert!(server.sink.last(&id).is_none(), "the deletion reached it");
}

#[tokio::test]
async fn a_change_the_sink_refuses_does_not_hold_up_the_others() {
    let server = start().await;
    let refused = created(
        &server,
        "/Users",
        json!({"userName": "refused@example.com"}),
    )
    .await;
    let fine = created(&server, "/Users", json!({"userName": "fine@example.com"})).await;
    assert_eq!(
        server.service.hand_over_new().await.unwrap(),
        HandedOver {
            handed: 1,
            refused: 1
        }
    );
    assert_eq!(server.sink.offer_sizes(), [2], "offered together");
    assert!(server.sink.last(&fine).is_some());

    // Not offered again after each write, only by a full hand-over.
    created(&server, "/Users", json!({"userName": "next@example.com"})).await;
    assert_eq!(
        server.service.hand_over_new().await.unwrap(),
        HandedOver {
            handed: 1,
            refused: 1
        }
    );
    assert_eq!(server.sink.offers(&refused), 1);
    assert_eq!(server.service.hand_over_unsent().await.unwrap().refused, 1);
    assert_eq!(server.sink.offers(&refused), 2);

    // A later change of the refused user is offered at once.
    let r = server
        .patch(
            &format!("/Users/{refused}"),
            &patch_op(json!([{"op": "replace", "path": "userName", "value": "taken@example.com"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        server.service.hand_over_new().await.unwrap(),
        HandedOver {
            handed: 1,
            refused: 0
        }
    );
    assert_eq!(server.service.unsent().await.unwrap(), 0);
}

#[tokio::test]
async fn a_group_reaches_the_sink_after_the_users_it_lists() {
    let server = start().await;
    server.sink.failing.store(true, Ordering::SeqCst);
    let group = created(&server, "/Groups", json!({"displayName": "Admins"})).await;
    let user = created(&server, "/Users", json!({"userName": "ada@example.com"})).await;
    let r = server
        .patch(
            &format!("/Groups/{group}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": user}]}])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // The user's latest change is now written after the group's.
    deactivate(&server, &user).await;

    server.sink.failing.store(false, Ordering::SeqCst);
    server.sink.events.lock().unwrap().clear();
    assert_eq!(server.service.hand_over_unsent().await.unwrap().handed, 2);
    let order: Vec<(ResourceKind, Value)> = server
        .sink
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Upserted(_, kind, r) | Event::Deleted(_, kind, r) => (kind, r),
        })
        .collect();
    assert_eq!(order[0].0, ResourceKind::User, "{order:?}");
    assert_eq!(order[0].1["active"], false);
    assert_eq!(order[1].0, ResourceKind::Group, "{order:?}");
    assert_eq!(order[1].1["members"][0]["value"], user.as_str());
}

/// What `sent` leaves when a later change of the same resource was
/// written between reading the unsent changes and marking one sent.
async fn a_later_change_stays_unsent(repo: &dyn ScimRepository) {
    let version = |n: u64| StoredResource {
        id: "u1".to_owned(),
        seq: 1,
        resource: json!({"id": "u1", "userName": "ada@example.com", "n": n}),
    };
    repo.put("okta", ResourceKind::User, &version(1))
        .await
        .unwrap();
    let first = repo.unsent().await.unwrap().remove(0);
    repo.put("okta", ResourceKind::User, &version(2))
        .await
        .unwrap();
    repo.sent(std::slice::from_ref(&first)).await.unwrap();
    let left = repo.unsent().await.unwrap();
    assert_eq!(left.len(), 1, "the later change is kept");
    assert_eq!(left[0].resource.resource["n"], 2);
    assert!(left[0].written > first.written);

    let second = left[0].clone();
    repo.delete("okta", ResourceKind::User, "u1").await.unwrap();
    repo.sent(std::slice::from_ref(&second)).await.unwrap();
    let left = repo.unsent().await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].deleted, "the deletion is kept");
    repo.sent(&left).await.unwrap();
    assert!(repo.unsent().await.unwrap().is_empty());
}

#[tokio::test]
async fn marking_a_change_sent_keeps_a_later_one_in_memory() {
    a_later_change_stays_unsent(&MemoryRepository::new()).await;
}

#[tokio::test]
async fn marking_a_change_sent_keeps_a_later_one_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let repo = EmbeddedRepository::open(dir.path().join("scim.redb")).unwrap();
    a_later_change_stays_unsent(&repo).await;
}

/// With a full hand-over an hour apart, only the wake-up each write gives
/// can bring its change to the sink within the wait.
#[tokio::test]
async fn each_write_wakes_the_hand_over() {
    let server = start().await;
    let looping = tokio::spawn(ScimService::hand_over_as_stored(
        Arc::downgrade(&server.service),
        Duration::from_secs(3600),
        Duration::ZERO,
    ));
    let id = created(&server, "/Users", json!({"userName": "ada@example.com"})).await;
    deactivate(&server, &id).await;
    let mut reached = false;
    for _ in 0..200 {
        if server.sink.last(&id).is_some_and(|r| r["active"] == false) {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    looping.abort();
    assert!(reached, "the change never reached the sink");
    assert_eq!(server.service.unsent().await.unwrap(), 0);
}

/// Writes that follow the one that woke the hand-over within its wait go
/// over with it, in one offer. The wait here is long enough that five
/// writes in a row fit in it on any machine.
#[tokio::test]
async fn writes_right_behind_a_wake_up_go_over_with_it() {
    let server = start().await;
    let looping = tokio::spawn(ScimService::hand_over_as_stored(
        Arc::downgrade(&server.service),
        Duration::from_secs(3600),
        Duration::from_secs(5),
    ));
    // The loop's first round, a full one, finds nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..5 {
        let name = format!("user{i}@example.com");
        created(&server, "/Users", json!({"userName": name})).await;
    }
    let mut handed = false;
    for _ in 0..200 {
        if server.service.unsent().await.unwrap() == 0 {
            handed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    looping.abort();
    assert!(handed, "the writes never reached the sink");
    assert_eq!(server.sink.offer_sizes(), [5], "one offer for the five");
}

/// Changes that waited (an import outrunning the twin, or a sink that was
/// down) go to the sink together, a bounded number at a time, in order.
#[tokio::test]
async fn waiting_changes_reach_the_sink_together() {
    let server = start().await;
    server.sink.failing.store(true, Ordering::SeqCst);
    let group = created(&server, "/Groups", json!({"displayName": "Everyone"})).await;
    let mut users = Vec::new();
    for i in 0..300 {
        let name = format!("user{i}@example.com");
        users.push(created(&server, "/Users", json!({"userName": name})).await);
    }
    let members: Vec<Value> = users.iter().map(|id| json!({"value": id})).collect();
    let r = server
        .patch(
            &format!("/Groups/{group}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": members}])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(server.service.hand_over_unsent().await.is_err());

    server.sink.failing.store(false, Ordering::SeqCst);
    server.sink.events.lock().unwrap().clear();
    server.sink.offers_made.lock().unwrap().clear();
    assert_eq!(
        server.service.hand_over_new().await.unwrap(),
        HandedOver {
            handed: 301,
            refused: 0
        }
    );
    assert_eq!(server.sink.offer_sizes(), [256, 45]);
    let ids: Vec<String> = server
        .sink
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Upserted(_, _, r) | Event::Deleted(_, _, r) => {
                r["id"].as_str().unwrap().to_owned()
            }
        })
        .collect();
    let mut expected = users.clone();
    expected.push(group);
    assert_eq!(ids, expected, "users in the order written, then the group");
    assert_eq!(server.service.unsent().await.unwrap(), 0);
}

/// Marking several changes sent at once keeps those rewritten meanwhile.
async fn sent_together_keeps_the_rewritten(repo: &dyn ScimRepository) {
    let version = |id: &str, n: u64| StoredResource {
        id: id.to_owned(),
        seq: 1,
        resource: json!({"id": id, "userName": format!("{id}@example.com"), "n": n}),
    };
    for id in ["a", "b", "c"] {
        repo.put("okta", ResourceKind::User, &version(id, 1))
            .await
            .unwrap();
    }
    let read = repo.unsent().await.unwrap();
    repo.put("okta", ResourceKind::User, &version("b", 2))
        .await
        .unwrap();
    repo.sent(&read).await.unwrap();
    let left = repo.unsent().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].resource.resource["id"], "b");
    assert_eq!(left[0].resource.resource["n"], 2);
}

#[tokio::test]
async fn marking_changes_sent_together_keeps_the_rewritten_in_memory() {
    sent_together_keeps_the_rewritten(&MemoryRepository::new()).await;
}

#[tokio::test]
async fn marking_changes_sent_together_keeps_the_rewritten_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let repo = EmbeddedRepository::open(dir.path().join("scim.redb")).unwrap();
    sent_together_keeps_the_rewritten(&repo).await;
}
