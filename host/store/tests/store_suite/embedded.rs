//! The suite on the redb store, and what only a file can show: restarts,
//! corruption, schema versions.

use std::path::Path;

use org_mesh_store::{EmbeddedStore, StoreError};

use super::*;

pub fn store() -> Arc<dyn GraphStore> {
    Arc::new(EmbeddedStore::in_memory().expect("in-memory store"))
}

shared_suite!(backend_suite, store);

async fn open(path: &Path) -> Arc<dyn GraphStore> {
    Arc::new(EmbeddedStore::open(path).await.expect("open"))
}

fn one_node(key: &str) -> Batch {
    batch(vec![node("Account", key, &[])], vec![], vec![])
}

/// Everything, the log included, survives closing and reopening, and
/// seqs continue where they stopped.
#[tokio::test]
async fn restart_durability() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/folders/twin.redb");
    let store = open(&path).await;
    store
        .apply("github", at(0), one_node("github:ann"))
        .await
        .expect("apply");
    store
        .apply("github", at(1), one_node("github:bo"))
        .await
        .expect("apply");
    let before = store.snapshot().await.expect("snapshot");
    drop(store);

    let store = open(&path).await;
    assert_eq!(store.snapshot().await.expect("snapshot"), before);
    store
        .apply("github", at(2), one_node("github:cy"))
        .await
        .expect("apply");
    let seq = |key: &str| {
        let store = Arc::clone(&store);
        let id = EntityId::Node(NodeRef::new("Account", key));
        async move { store.history(&id).await.expect("history")[0].seq }
    };
    assert_eq!(
        (
            seq("github:ann").await,
            seq("github:bo").await,
            seq("github:cy").await
        ),
        (1, 2, 3)
    );
}

fn assert_names(err: &StoreError, path: &Path) {
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "{message:?} should name {path:?}"
    );
}

/// Damaged, foreign or unreadable files are errors naming the file.
#[tokio::test]
async fn corrupt_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, b"not a database, just text".repeat(400)).expect("write");
    let err = EmbeddedStore::open(&garbage)
        .await
        .expect_err("garbage opens");
    assert_names(&err, &garbage);

    let damaged = dir.path().join("damaged.redb");
    let store = open(&damaged).await;
    for i in 0..50 {
        let b = one_node(&format!("github:user{i}"));
        store.apply("github", at(i), b).await.expect("apply");
    }
    drop(store);
    let mut bytes = std::fs::read(&damaged).expect("read");
    // Everything past the first page: the header stays readable, so
    // only the page checksums can catch it.
    for b in bytes.iter_mut().skip(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&damaged, bytes).expect("write");
    let err = EmbeddedStore::open(&damaged)
        .await
        .expect_err("damaged opens");
    let corrupted = matches!(
        &err,
        StoreError::Open {
            source: redb::Error::Corrupted(_),
            ..
        }
    );
    assert!(corrupted, "{err:?}");
    assert_names(&err, &damaged);

    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).expect("mkdir");
    let err = EmbeddedStore::open(&folder)
        .await
        .expect_err("a folder opens");
    assert_names(&err, &folder);
}

/// A file written before the store kept a count per label is counted once
/// when opened, and counts as before.
#[tokio::test]
async fn a_version_1_file_is_counted_when_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("twin.redb");
    let store = open(&path).await;
    let nodes = vec![
        node("Account", "github:ann", &[]),
        node("Account", "github:bo", &[]),
        node("Organisation", "github:acme", &[]),
    ];
    store
        .apply("github", at(0), batch(nodes, vec![], vec![]))
        .await
        .expect("apply");
    let before = store.counts().await.expect("counts");
    drop(store);
    // Version 1's layout: everything but the counts.
    {
        let db = redb::Database::create(&path).expect("reopen");
        let txn = db.begin_write().expect("begin");
        let counts: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("label_counts");
        assert!(txn.delete_table(counts).expect("delete"));
        txn.commit().expect("commit");
    }
    write_u64(&path, "meta", "schema_version", 1);
    let store = open(&path).await;
    assert_eq!(store.counts().await.expect("counts"), before);
    store
        .apply("github", at(1), one_node("github:cy"))
        .await
        .expect("apply");
    assert_eq!(store.counts().await.expect("counts")["Account"], 3);
}

/// A file from another schema version, or another program, is refused.
#[tokio::test]
async fn unknown_schema_or_foreign_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let newer = dir.path().join("newer.redb");
    drop(open(&newer).await);
    write_u64(&newer, "meta", "schema_version", 99);
    let err = EmbeddedStore::open(&newer)
        .await
        .expect_err("newer schema opens");
    assert!(
        matches!(err, StoreError::SchemaVersion { found: 99, .. }),
        "{err:?}"
    );
    assert_names(&err, &newer);

    let foreign = dir.path().join("foreign.redb");
    write_u64(&foreign, "settings", "volume", 11);
    let err = EmbeddedStore::open(&foreign)
        .await
        .expect_err("foreign file opens");
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    assert_names(&err, &foreign);
}

/// Writes one value with redb directly, as another program would.
fn write_u64(path: &Path, table: &str, key: &str, value: u64) {
    let definition: redb::TableDefinition<&str, u64> = redb::TableDefinition::new(table);
    let db = redb::Database::create(path).expect("create");
    let txn = db.begin_write().expect("begin");
    txn.open_table(definition)
        .expect("table")
        .insert(key, value)
        .expect("insert");
    txn.commit().expect("commit");
}
