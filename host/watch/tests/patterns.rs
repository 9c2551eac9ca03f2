//! The ways folders really get updated, each on a real folder, each checking
//! the exact sequence of content versions the watcher reports. Expected
//! versions are the content hashes of plain folders built with the expected
//! files, so every test also checks which files count and what they hold.
//!
//! Every wait is bounded (generously: the machine running this may be small
//! and busy), so a broken watcher fails the test instead of hanging it, and
//! no test asserts how fast anything happened.

// The Kubernetes layout needs symbolic links, and the watcher is only
// exercised here on Linux.
#![cfg(unix)]
#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test helpers fail the test by panicking"
)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use org_mesh_watch::{Change, ContentHash, FolderWatch, WatchOptions, content_hash};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

/// Longest any single expected Change may take to arrive.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched for.
const SILENCE: Duration = Duration::from_millis(800);

fn options() -> WatchOptions {
    WatchOptions {
        // Longer than the default so that a test step split by the
        // scheduler is still one burst.
        quiet: Duration::from_millis(300),
        max_delay: Duration::from_secs(3),
        ..WatchOptions::default()
    }
}

fn write(dir: &Path, relative: &str, content: &[u8]) {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent folder");
    }
    fs::write(&path, content).expect("write file");
}

/// The hash of a plain folder holding exactly `files`.
fn expected(files: &[(&str, &[u8])]) -> ContentHash {
    let dir = tempfile::tempdir().expect("tempdir");
    for (relative, content) in files {
        write(dir.path(), relative, content);
    }
    content_hash(dir.path()).expect("hash expected folder").0
}

fn names(files: &[(&str, &[u8])]) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = files.iter().map(|(name, _)| PathBuf::from(name)).collect();
    names.sort();
    names
}

async fn next_change(changes: &mut Receiver<Change>) -> Change {
    match timeout(PATIENCE, changes.recv()).await {
        Ok(Some(change)) => change,
        Ok(None) => panic!("the watcher stopped"),
        Err(_) => panic!("no change within {PATIENCE:?}"),
    }
}

/// Collects changes until one has `last`, then checks that nothing follows
/// and that each change's `previous` is the one before it.
async fn versions_until(
    changes: &mut Receiver<Change>,
    start: ContentHash,
    last: ContentHash,
) -> Vec<Change> {
    let mut seen = Vec::new();
    let mut previous = start;
    loop {
        let change = next_change(changes).await;
        assert_eq!(change.previous, previous, "changes must chain");
        assert_ne!(
            change.hash, change.previous,
            "a change must change something"
        );
        previous = change.hash;
        let done = change.hash == last;
        seen.push(change);
        if done {
            break;
        }
    }
    assert_silent(changes).await;
    seen
}

async fn assert_silent(changes: &mut Receiver<Change>) {
    if let Ok(change) = timeout(SILENCE, changes.recv()).await {
        panic!("expected no change, got {change:?}");
    }
}

fn hashes(changes: &[Change]) -> Vec<ContentHash> {
    changes.iter().map(|change| change.hash).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_save_through_temporary_file_is_one_version() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "policy.rego", b"package a\nallow := false\n");
    write(dir.path(), "other.rego", b"package b\n");
    let (watch, mut changes) = FolderWatch::start(dir.path(), options()).unwrap();
    let start = watch.current();
    assert_eq!(
        start,
        expected(&[
            ("policy.rego", b"package a\nallow := false\n"),
            ("other.rego", b"package b\n"),
        ])
    );

    // Like vim: a swap file while editing, a backup, then the new content
    // written to a temporary name and renamed over the original.
    write(dir.path(), ".policy.rego.swp", b"swap");
    write(dir.path(), "policy.rego~", b"package a\nallow := false\n");
    write(dir.path(), "policy.rego.tmp", b"package a\nallow := true\n");
    fs::rename(
        dir.path().join("policy.rego.tmp"),
        dir.path().join("policy.rego"),
    )
    .unwrap();
    fs::remove_file(dir.path().join("policy.rego~")).unwrap();
    fs::remove_file(dir.path().join(".policy.rego.swp")).unwrap();

    let saved: &[(&str, &[u8])] = &[
        ("policy.rego", b"package a\nallow := true\n"),
        ("other.rego", b"package b\n"),
    ];
    let seen = versions_until(&mut changes, start, expected(saved)).await;
    assert_eq!(hashes(&seen), vec![expected(saved)]);
    assert_eq!(seen[0].files, names(saved));
    assert_eq!(seen[0].dir, dir.path());
    assert_eq!(watch.current(), expected(saved));
}

/// Lays out a version the way kubelet's atomic writer does: the files in a
/// new timestamped folder, a `..data_tmp` link to it renamed over `..data`,
/// visible links through `..data` for new names, stale visible links
/// removed, and the previous timestamped folder deleted.
fn kubelet_write(dir: &Path, version: &str, files: &[(&str, &[u8])]) {
    let old = fs::read_link(dir.join("..data")).ok();
    let stamp = format!("..2026_12_04_18_00_00.{version}");
    for (name, content) in files {
        write(&dir.join(&stamp), name, content);
    }
    std::os::unix::fs::symlink(&stamp, dir.join("..data_tmp")).expect("link ..data_tmp");
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap ..data");
    for (name, _) in files {
        let link = dir.join(name);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), link).expect("visible link");
        }
    }
    for entry in fs::read_dir(dir).expect("list folder") {
        let entry = entry.expect("list folder");
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !files.iter().any(|(file, _)| *file == name) {
            fs::remove_file(entry.path()).expect("remove stale link");
        }
    }
    if let Some(old) = old {
        fs::remove_dir_all(dir.join(old)).expect("remove previous version");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_configmap_swap_is_one_version_each() {
    let dir = tempfile::tempdir().unwrap();
    let first: &[(&str, &[u8])] = &[("policy.rego", b"v1"), ("data.json", b"{}")];
    kubelet_write(dir.path(), "0001", first);
    let (watch, mut changes) = FolderWatch::start(dir.path(), options()).unwrap();
    let start = watch.current();
    assert_eq!(start, expected(first));

    let second: &[(&str, &[u8])] = &[("policy.rego", b"v2"), ("data.json", b"{}")];
    kubelet_write(dir.path(), "0002", second);
    let seen = versions_until(&mut changes, start, expected(second)).await;
    assert_eq!(hashes(&seen), vec![expected(second)]);
    assert_eq!(seen[0].files, names(second));

    // A new key and a removed one: links are added and removed around the
    // swap, as kubelet does.
    let third: &[(&str, &[u8])] = &[("policy.rego", b"v3"), ("extra.rego", b"e")];
    kubelet_write(dir.path(), "0003", third);
    let seen = versions_until(&mut changes, expected(second), expected(third)).await;
    assert_eq!(hashes(&seen), vec![expected(third)]);
    assert_eq!(seen[0].files, names(third));
    assert!(!dir.path().join("..2026_12_04_18_00_00.0002").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_events_for_one_save_are_one_version() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "plugin.wasm", b"old bytes");
    let (watch, mut changes) = FolderWatch::start(dir.path(), options()).unwrap();
    let start = watch.current();

    let path = dir.path().join("plugin.wasm");
    let mut file = File::create(&path).unwrap();
    file.write_all(b"new ").unwrap();
    file.write_all(b"bytes").unwrap();
    file.sync_all().unwrap();
    drop(file);
    let mut permissions = fs::metadata(&path).unwrap().permissions();
    permissions.set_readonly(true);
    fs::set_permissions(&path, permissions).unwrap();
    File::open(&path)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();

    let saved: &[(&str, &[u8])] = &[("plugin.wasm", b"new bytes")];
    let seen = versions_until(&mut changes, start, expected(saved)).await;
    assert_eq!(hashes(&seen), vec![expected(saved)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_copy_ends_with_the_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "keep.rego", b"k");
    let (watch, mut changes) = FolderWatch::start(dir.path(), options()).unwrap();
    let start = watch.current();

    let chunks: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 4096]).collect();
    // Every state a reader could catch: the file holding the first n chunks.
    let partial: Vec<ContentHash> = (0..=chunks.len())
        .map(|n| {
            let content = chunks[..n].concat();
            expected(&[("keep.rego", b"k"), ("big.wasm", &content)])
        })
        .collect();
    let complete = partial[chunks.len()];

    let mut file = File::create(dir.path().join("big.wasm")).unwrap();
    for chunk in &chunks {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    drop(file);

    let seen = versions_until(&mut changes, start, complete).await;
    for change in &seen {
        assert!(
            partial.contains(&change.hash),
            "not a state of the copy: {change:?}"
        );
    }
    assert_eq!(seen.last().map(|change| change.hash), Some(complete));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_files_reports_what_is_left_down_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.rego", b"a");
    write(dir.path(), "nested/b.rego", b"b");
    let (watch, mut changes) = FolderWatch::start(dir.path(), options()).unwrap();
    let start = watch.current();

    fs::remove_file(dir.path().join("a.rego")).unwrap();
    let left: &[(&str, &[u8])] = &[("nested/b.rego", b"b")];
    let seen = versions_until(&mut changes, start, expected(left)).await;
    assert_eq!(hashes(&seen), vec![expected(left)]);
    assert_eq!(seen[0].files, names(left));

    fs::remove_file(dir.path().join("nested/b.rego")).unwrap();
    let seen = versions_until(&mut changes, expected(left), expected(&[])).await;
    assert_eq!(hashes(&seen), vec![expected(&[])]);
    assert!(seen[0].files.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_save_and_touch_report_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "policy.rego", b"same");
    let (watch, mut changes) = FolderWatch::start(dir.path(), options()).unwrap();
    let start = watch.current();

    write(dir.path(), "policy.rego", b"same");
    let path = dir.path().join("policy.rego");
    File::options()
        .append(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    let permissions = fs::metadata(&path).unwrap().permissions();
    fs::set_permissions(&path, permissions).unwrap();
    assert_silent(&mut changes).await;
    assert_eq!(watch.current(), start);

    // Still watching: the next real edit is reported, straight from the
    // starting version.
    write(dir.path(), "policy.rego", b"different");
    let seen = versions_until(
        &mut changes,
        start,
        expected(&[("policy.rego", b"different")]),
    )
    .await;
    assert_eq!(seen.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_stream_of_writes_still_reports_before_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "counter", b"0");
    let options = WatchOptions {
        quiet: Duration::from_millis(100),
        max_delay: Duration::from_millis(300),
        ..WatchOptions::default()
    };
    let (watch, mut changes) = FolderWatch::start(dir.path(), options).unwrap();
    let start = watch.current();

    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let dir = dir.path().to_owned();
        let writing = Arc::clone(&writing);
        std::thread::spawn(move || {
            // 2 s of writes, 20 ms apart: never quiet for 100 ms.
            let mut last = 0;
            for i in 1..=100 {
                write(&dir, "counter", i.to_string().as_bytes());
                last = i;
                std::thread::sleep(Duration::from_millis(20));
            }
            writing.store(false, Ordering::SeqCst);
            last
        })
    };

    let first = next_change(&mut changes).await;
    assert!(
        writing.load(Ordering::SeqCst),
        "the first change came only after the writes stopped"
    );
    assert_eq!(first.previous, start);

    let last = writer.join().unwrap();
    let last = expected(&[("counter", last.to_string().as_bytes())]);
    if first.hash != last {
        let seen = versions_until(&mut changes, first.hash, last).await;
        assert_eq!(seen.last().map(|change| change.hash), Some(last));
    }
}

/// Polling would also find the recreated folder, and hide a broken re-watch.
fn events_only() -> WatchOptions {
    WatchOptions {
        poll_fallback: None,
        ..options()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_removed_and_recreated_is_still_watched() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("policies");
    write(&dir, "a.rego", b"v1");
    let (watch, mut changes) = FolderWatch::start(&dir, events_only()).unwrap();
    let start = watch.current();

    fs::remove_dir_all(&dir).unwrap();
    let seen = versions_until(&mut changes, start, expected(&[])).await;
    assert_eq!(hashes(&seen), vec![expected(&[])]);
    assert!(seen[0].files.is_empty());

    fs::create_dir(&dir).unwrap();
    write(&dir, "a.rego", b"v2");
    let v2 = expected(&[("a.rego", b"v2")]);
    let seen = versions_until(&mut changes, expected(&[]), v2).await;
    assert_eq!(hashes(&seen), vec![v2]);

    // An edit inside the new folder proves the new folder itself is watched.
    write(&dir, "a.rego", b"v3");
    let v3 = expected(&[("a.rego", b"v3")]);
    let seen = versions_until(&mut changes, v2, v3).await;
    assert_eq!(hashes(&seen), vec![v3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_replaced_by_rename_is_followed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("plugins");
    let next = root.path().join("plugins.next");
    let old = root.path().join("plugins.old");
    write(&dir, "a.wasm", b"v1");
    write(&next, "a.wasm", b"v2");
    let (watch, mut changes) = FolderWatch::start(&dir, events_only()).unwrap();
    let start = watch.current();

    fs::rename(&dir, &old).unwrap();
    fs::rename(&next, &dir).unwrap();
    let v2 = expected(&[("a.wasm", b"v2")]);
    let seen = versions_until(&mut changes, start, v2).await;
    assert_eq!(hashes(&seen), vec![v2]);

    // The old folder is no longer the watched one.
    write(&old, "a.wasm", b"stale");
    assert_silent(&mut changes).await;

    write(&dir, "a.wasm", b"v3");
    let v3 = expected(&[("a.wasm", b"v3")]);
    let seen = versions_until(&mut changes, v2, v3).await;
    assert_eq!(hashes(&seen), vec![v3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_sees_changes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.rego", b"v1");
    let options = WatchOptions {
        poll_fallback: Some(Duration::from_millis(200)),
        poll_only: true,
        ..options()
    };
    let (watch, mut changes) = FolderWatch::start(dir.path(), options).unwrap();
    let start = watch.current();

    write(dir.path(), "a.rego.tmp", b"v2");
    fs::rename(dir.path().join("a.rego.tmp"), dir.path().join("a.rego")).unwrap();
    let v2 = expected(&[("a.rego", b"v2")]);
    let seen = versions_until(&mut changes, start, v2).await;
    assert_eq!(hashes(&seen), vec![v2]);

    fs::remove_file(dir.path().join("a.rego")).unwrap();
    let seen = versions_until(&mut changes, v2, expected(&[])).await;
    assert_eq!(hashes(&seen), vec![expected(&[])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_watch_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (watch, mut changes) = FolderWatch::start(dir.path(), options()).unwrap();
    drop(watch);
    write(dir.path(), "a.rego", b"after");
    let end = timeout(PATIENCE, changes.recv()).await.unwrap();
    assert!(end.is_none(), "expected the end of the stream, got {end:?}");
}

#[tokio::test]
async fn start_refuses_a_missing_folder() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nope");
    let error = FolderWatch::start(&missing, options()).unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
}

#[test]
fn start_needs_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let error = FolderWatch::start(dir.path(), options()).unwrap_err();
    assert!(error.to_string().contains("runtime"), "{error}");
}
