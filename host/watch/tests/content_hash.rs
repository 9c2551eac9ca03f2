//! Which files count towards a folder's content hash, and what the hash
//! depends on. Every case is a real folder on disk.

// Links and fifos are made with Unix calls.
#![cfg(unix)]
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test by panicking"
)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use org_mesh_watch::{ContentHash, WatchError, content_hash};

fn write(dir: &Path, relative: &str, content: &[u8]) {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent folder");
    }
    fs::write(&path, content).expect("write file");
}

fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (relative, content) in files {
        write(dir.path(), relative, content);
    }
    dir
}

fn hash(dir: &Path) -> ContentHash {
    content_hash(dir).expect("hash folder").0
}

#[test]
fn hidden_and_scratch_files_do_not_count() {
    let plain = folder(&[("policy.rego", b"p"), ("sub/data.json", b"{}")]);
    let noisy = folder(&[
        ("policy.rego", b"p"),
        ("sub/data.json", b"{}"),
        (".policy.rego.swp", b"vim swap"),
        (".#policy.rego", b"emacs lock"),
        ("#policy.rego#", b"emacs auto-save"),
        ("policy.rego~", b"backup"),
        ("policy.rego.tmp", b"half written"),
        ("notes.swp", b"swap"),
        (".git/config", b"hidden folder"),
        ("sub/.hidden", b"hidden at depth"),
        ("..data_tmp/x", b"kubelet scratch"),
    ]);
    assert_eq!(hash(noisy.path()), hash(plain.path()));
    let (_, files) = content_hash(noisy.path()).unwrap();
    assert_eq!(
        files,
        vec![PathBuf::from("policy.rego"), PathBuf::from("sub/data.json")]
    );
}

#[test]
fn files_are_listed_sorted_and_relative() {
    let dir = folder(&[("b", b""), ("a/z", b""), ("a/b/c", b""), ("C", b"")]);
    let (_, files) = content_hash(dir.path()).unwrap();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    assert_eq!(files.len(), 4);
    assert!(files.iter().all(|file| file.is_relative()));
}

#[test]
fn names_lengths_and_bytes_all_matter() {
    let base = hash(folder(&[("a", b"xy"), ("b", b"")]).path());
    // Same bytes overall, split differently between the files.
    assert_ne!(base, hash(folder(&[("a", b"x"), ("b", b"y")]).path()));
    assert_ne!(base, hash(folder(&[("c", b"xy"), ("b", b"")]).path()));
    assert_ne!(base, hash(folder(&[("a", b"xz"), ("b", b"")]).path()));
    assert_ne!(base, hash(folder(&[("a", b"xy")]).path()));
    assert_eq!(base, hash(folder(&[("b", b""), ("a", b"xy")]).path()));
}

#[test]
fn links_are_followed_and_dangling_ones_left_out() {
    let target = folder(&[("real.rego", b"content"), ("lib/x.rego", b"x")]);
    let dir = tempfile::tempdir().unwrap();
    symlink(
        target.path().join("real.rego"),
        dir.path().join("policy.rego"),
    )
    .unwrap();
    symlink(target.path().join("lib"), dir.path().join("lib")).unwrap();
    symlink(dir.path().join("gone"), dir.path().join("dangling.rego")).unwrap();
    let plain = folder(&[("policy.rego", b"content"), ("lib/x.rego", b"x")]);
    assert_eq!(hash(dir.path()), hash(plain.path()));
}

#[test]
fn kubernetes_layout_hashes_as_its_visible_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "..2026_12_04_18_00_00.1/policy.rego", b"v1");
    symlink("..2026_12_04_18_00_00.1", dir.path().join("..data")).unwrap();
    symlink("..data/policy.rego", dir.path().join("policy.rego")).unwrap();
    let plain = folder(&[("policy.rego", b"v1")]);
    assert_eq!(hash(dir.path()), hash(plain.path()));
}

#[test]
fn a_link_back_to_an_ancestor_does_not_loop() {
    let dir = folder(&[("a/file", b"f")]);
    symlink(dir.path(), dir.path().join("a/up")).unwrap();
    let (_, files) = content_hash(dir.path()).unwrap();
    assert_eq!(files, vec![PathBuf::from("a/file")]);
}

#[test]
fn special_files_are_left_out() {
    let dir = folder(&[("policy.rego", b"p")]);
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let plain = folder(&[("policy.rego", b"p")]);
    assert_eq!(hash(dir.path()), hash(plain.path()));
}

#[test]
fn an_empty_folder_has_a_hash_and_no_files() {
    let (empty, files) = content_hash(folder(&[]).path()).unwrap();
    assert!(files.is_empty());
    assert_eq!(empty, hash(folder(&[(".only-hidden", b"h")]).path()));
}

#[test]
fn missing_folder_and_plain_file_are_errors_naming_the_path() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let error = content_hash(&missing).unwrap_err();
    assert!(matches!(error, WatchError::Missing { .. }), "{error:?}");
    assert!(error.to_string().contains("missing"), "{error}");

    write(root.path(), "file", b"");
    let error = content_hash(&root.path().join("file")).unwrap_err();
    assert!(matches!(error, WatchError::NotAFolder { .. }), "{error:?}");
}

#[test]
fn displays_short_and_full_hex() {
    let hash = ContentHash([0xab; 32]);
    assert_eq!(hash.to_string(), "abababababab");
    assert_eq!(format!("{hash:#}"), "ab".repeat(32));
    assert_eq!(hash.to_hex(), "ab".repeat(32));
}
