//! The embedded repository keeps resources and their order across reopening.

use std::path::Path;
use std::sync::Arc;

use org_mesh_scim::EmbeddedRepository;
use serde_json::json;

use crate::common::{Server, q, start_with};

/// The store at `path` once the server that had it open lets go: its task
/// is aborted with it, which takes a moment to release the file.
#[expect(
    clippy::unwrap_used,
    reason = "a store that cannot be reopened fails the test"
)]
async fn reopen(path: &Path) -> Arc<EmbeddedRepository> {
    let mut reopened = EmbeddedRepository::open(path);
    for _ in 0..50 {
        if reopened.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        reopened = EmbeddedRepository::open(path);
    }
    Arc::new(reopened.unwrap())
}

#[tokio::test]
async fn embedded_repository_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim/store.redb");
    let (user_id, group_id) = {
        let repo = Arc::new(EmbeddedRepository::open(&path).unwrap());
        let server = start_with(repo, None).await;
        let u = server
            .post(
                "/Users",
                &json!({"userName": "durable@example.com", "active": true}),
            )
            .await;
        assert_eq!(u.status, 201);
        server
            .post("/Users", &json!({"userName": "second@example.com"}))
            .await;
        let g = server
            .post(
                "/Groups",
                &json!({"displayName": "Durable", "members": [{"value": u.body["id"]}]}),
            )
            .await;
        assert_eq!(g.status, 201);
        let r = server
            .patch(
                &format!("/Users/{}", u.body["id"].as_str().unwrap()),
                &json!({"Operations": [{"op": "replace", "value": {"active": false}}]}),
            )
            .await;
        assert_eq!(r.status, 200);
        (
            u.body["id"].as_str().unwrap().to_owned(),
            g.body["id"].as_str().unwrap().to_owned(),
        )
    };
    let server = start_with(reopen(&path).await, None).await;
    let u = server.get(&format!("/Users/{user_id}")).await;
    assert_eq!(u.status, 200);
    assert_eq!(u.body["userName"], "durable@example.com");
    assert_eq!(u.body["active"], false);
    let g = server.get(&format!("/Groups/{group_id}")).await;
    assert_eq!(g.body["members"][0]["value"], user_id.as_str());
    let list = server.get("/Users").await.body;
    assert_eq!(list["Resources"][0]["userName"], "durable@example.com");
    assert_eq!(list["Resources"][1]["userName"], "second@example.com");
    let third = server
        .post("/Users", &json!({"userName": "third@example.com"}))
        .await;
    assert_eq!(third.status, 201);
    assert_eq!(
        server.get("/Users").await.body["Resources"][2]["userName"],
        "third@example.com"
    );
    let dup = server
        .post("/Users", &json!({"userName": "Durable@Example.com"}))
        .await;
    assert_eq!(dup.status, 409);
}

/// A change answered but not yet handed over is still noted as unsent
/// after the store is reopened, as after a crash between the answer and
/// the hand-over, and the next service hands it over.
#[tokio::test]
async fn an_unsent_change_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim.redb");
    let id = {
        let server = start_with(Arc::new(EmbeddedRepository::open(&path).unwrap()), None).await;
        let r = server
            .post("/Users", &json!({"userName": "crash@example.com"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(server.sink.events().is_empty(), "nothing handed over yet");
        r.body["id"].as_str().unwrap().to_owned()
    };
    let server = start_with(reopen(&path).await, None).await;
    assert_eq!(server.service.unsent().await.unwrap(), 1);
    assert_eq!(server.service.hand_over_unsent().await.unwrap().handed, 1);
    assert_eq!(
        server.sink.last(&id).unwrap()["userName"],
        "crash@example.com"
    );
    assert_eq!(server.service.hand_over_unsent().await.unwrap().handed, 0);
    assert_eq!(server.service.unsent().await.unwrap(), 0);
}

/// The users whose `userName` the filter `userName eq "<name>"` matches.
async fn named(server: &Server, name: &str) -> Vec<String> {
    let filter = format!("userName eq \"{name}\"");
    let list = server.get(&format!("/Users?filter={}", q(&filter))).await;
    assert_eq!(list.status, 200, "{}", list.body);
    list.body["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_name_look_up_follows_renames_and_removals_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim.redb");
    let id = {
        let server = start_with(Arc::new(EmbeddedRepository::open(&path).unwrap()), None).await;
        let u = server
            .post("/Users", &json!({"userName": "Ada@Example.com"}))
            .await;
        assert_eq!(u.status, 201);
        let id = u.body["id"].as_str().unwrap().to_owned();
        server
            .post("/Users", &json!({"userName": "other@example.com"}))
            .await;
        // userName compares case-insensitively, in the look-up and in the
        // uniqueness check alike.
        assert_eq!(named(&server, "ada@example.COM").await, vec![id.clone()]);
        let again = server
            .post("/Users", &json!({"userName": "ada@example.com"}))
            .await;
        assert_eq!(again.status, 409, "{}", again.body);
        let renamed = server
            .patch(
                &format!("/Users/{id}"),
                &json!({"Operations": [{"op": "replace", "path": "userName", "value": "ada.l@example.com"}]}),
            )
            .await;
        assert_eq!(renamed.status, 200, "{}", renamed.body);
        assert!(named(&server, "ada@example.com").await.is_empty());
        id
    };
    let server = start_with(reopen(&path).await, None).await;
    assert_eq!(named(&server, "ADA.L@example.com").await, vec![id.clone()]);
    // The old name is free again; the new one is taken.
    let reused = server
        .post("/Users", &json!({"userName": "ada@example.com"}))
        .await;
    assert_eq!(reused.status, 201, "{}", reused.body);
    let taken = server
        .post("/Users", &json!({"userName": "Ada.L@example.com"}))
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert_eq!(server.delete(&format!("/Users/{id}")).await.status, 204);
    assert!(named(&server, "ada.l@example.com").await.is_empty());
    assert_eq!(named(&server, "other@example.com").await.len(), 1);
}

#[tokio::test]
async fn a_store_written_before_the_name_index_gets_one_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim.redb");
    let id = {
        let server = start_with(Arc::new(EmbeddedRepository::open(&path).unwrap()), None).await;
        let u = server
            .post("/Users", &json!({"userName": "early@example.com"}))
            .await;
        u.body["id"].as_str().unwrap().to_owned()
    };
    // What a file from before the index holds: no index table, no mark.
    {
        let db = loop {
            match redb::Database::open(&path) {
                Ok(db) => break db,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        let txn = db.begin_write().unwrap();
        let names: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("scim_names");
        assert!(txn.delete_table(names).unwrap());
        let counters: redb::TableDefinition<&str, u64> =
            redb::TableDefinition::new("scim_counters");
        assert!(
            txn.open_table(counters)
                .unwrap()
                .remove("names_indexed")
                .unwrap()
                .is_some()
        );
        txn.commit().unwrap();
    }
    let server = start_with(reopen(&path).await, None).await;
    assert_eq!(named(&server, "early@example.com").await, [id]);
    let twin = server
        .post("/Users", &json!({"userName": "EARLY@example.com"}))
        .await;
    assert_eq!(twin.status, 409, "{}", twin.body);
}
