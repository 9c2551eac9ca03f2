//! The content hash of a folder, and the walk that decides which files count.
//!
//! Only the visible files count. A name starting with `.` is hidden at any
//! depth: that skips Kubernetes' `..data` link and `..2026_...` timestamped
//! folders (their content is reached through the visible links that point
//! into them) and editor leftovers such as `.policy.rego.swp` or `.#policy`.
//! Files ending in `~`, `.tmp` or `.swp`, and Emacs auto-save files
//! (`#name#`), are hidden too, because editors write them next to the file
//! being saved and they must not look like a new version.
//!
//! Symbolic links are followed, since visible files in a ConfigMap mount are
//! links through `..data`. A link that leads nowhere is left out rather than
//! failing the walk: during a Kubernetes update the old links dangle for a
//! moment, and a file that vanishes between listing and reading is treated
//! the same way. Anything that is neither a regular file nor a folder (a
//! fifo, a socket, a device) is left out, because reading it could block.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::error::WatchError;

/// SHA-256 over a folder's visible files: for each file, in sorted order, its
/// relative path, its length and the SHA-256 of its bytes. Hashing each file
/// separately keeps the encoding unambiguous while streaming, since a file's
/// length is only known once it has been read.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// All 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The first 12 hex digits: enough to tell versions apart in logs and
/// version tags. `{:#}` prints all 64.
impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = self.to_hex();
        if f.alternate() {
            f.write_str(&full)
        } else {
            f.write_str(full.get(..12).unwrap_or(&full))
        }
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

/// Hashes the visible files of `dir` (see the module notes for what is
/// visible) and returns the hash with their paths relative to `dir`, sorted.
///
/// This reads every visible file, so it blocks; from async code call it in
/// `tokio::task::spawn_blocking`. A file that is being written while it is
/// read gives a hash of whatever was read: the result is only a consistent
/// version if the folder was still.
pub fn content_hash(dir: &Path) -> Result<(ContentHash, Vec<PathBuf>), WatchError> {
    let files = visible_files(dir)?;
    let mut hasher = ContentHasher::new();
    let mut hashed = Vec::with_capacity(files.len());
    for file in files {
        let Some((length, digest)) = hash_file(&file.path)? else {
            continue;
        };
        hasher.add(&file.relative, length, &digest);
        hashed.push(file.relative);
    }
    Ok((hasher.finish(), hashed))
}

/// The hash of a folder with no visible files, which is also what a missing
/// folder hashes to: to a consumer both mean "nothing to load".
pub(crate) fn empty_content() -> ContentHash {
    ContentHasher::new().finish()
}

struct ContentHasher(Sha256);

impl ContentHasher {
    fn new() -> Self {
        let mut outer = Sha256::new();
        outer.update(b"org-mesh-watch content v1\0");
        ContentHasher(outer)
    }

    fn add(&mut self, relative: &Path, length: u64, digest: &[u8; 32]) {
        let key = path_key(relative);
        self.0.update(len_bytes(key.len()));
        self.0.update(&key);
        self.0.update(length.to_le_bytes());
        self.0.update(digest);
    }

    fn finish(self) -> ContentHash {
        ContentHash(self.0.finalize().into())
    }
}

/// What one polling pass compares: the visible files with their sizes, times
/// and file identities, hashed without reading any content. Polling only
/// decides when to recompute the content hash, so a cheap and slightly
/// over-eager signature is what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signature {
    Missing,
    Listed([u8; 32]),
}

pub(crate) fn signature(dir: &Path) -> Result<Signature, WatchError> {
    let files = match visible_files(dir) {
        Ok(files) => files,
        Err(WatchError::Missing { .. } | WatchError::NotAFolder { .. }) => {
            return Ok(Signature::Missing);
        }
        Err(error) => return Err(error),
    };
    let mut hasher = Sha256::new();
    for file in files {
        let key = path_key(&file.relative);
        hasher.update(len_bytes(key.len()));
        hasher.update(&key);
        hasher.update(file.metadata.len().to_le_bytes());
        let modified = file
            .metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        hasher.update(modified.to_le_bytes());
        // The change time and inode catch what the modification time misses:
        // a copy that restores the old time, or a link swapped to a new file.
        hash_change_marks(&mut hasher, &file.metadata);
    }
    Ok(Signature::Listed(hasher.finalize().into()))
}

/// Who a folder is, so that a folder replaced by another under the same name
/// can be noticed. Only Unix exposes this on stable Rust; elsewhere it is
/// `None` and a replacement is noticed through events alone.
pub(crate) type FolderIdentity = Option<(u64, u64)>;

#[cfg(unix)]
pub(crate) fn folder_identity(metadata: &Metadata) -> FolderIdentity {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
pub(crate) fn folder_identity(_metadata: &Metadata) -> FolderIdentity {
    None
}

#[cfg(unix)]
fn hash_change_marks(hasher: &mut Sha256, metadata: &Metadata) {
    use std::os::unix::fs::MetadataExt;
    hasher.update(metadata.dev().to_le_bytes());
    hasher.update(metadata.ino().to_le_bytes());
    hasher.update(metadata.ctime().to_le_bytes());
    hasher.update(metadata.ctime_nsec().to_le_bytes());
}

#[cfg(not(unix))]
fn hash_change_marks(_hasher: &mut Sha256, _metadata: &Metadata) {}

struct VisibleFile {
    /// Relative to the walked folder.
    relative: PathBuf,
    /// The path to open: the walked folder joined with `relative`.
    path: PathBuf,
    /// Of the file itself, links followed.
    metadata: Metadata,
}

/// Nested links to folders could otherwise make the walk endless where
/// folder identities are not available to detect a loop.
const MAX_DEPTH: usize = 64;

fn visible_files(dir: &Path) -> Result<Vec<VisibleFile>, WatchError> {
    let metadata = match fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(WatchError::Missing { path: dir.into() });
        }
        Err(error) => return Err(WatchError::io(dir, "read folder metadata", error)),
    };
    if !metadata.is_dir() {
        return Err(WatchError::NotAFolder { path: dir.into() });
    }
    let mut files = Vec::new();
    let mut ancestors = vec![folder_identity(&metadata)];
    walk(dir, Path::new(""), &mut ancestors, &mut files)?;
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

fn walk(
    folder: &Path,
    relative: &Path,
    ancestors: &mut Vec<FolderIdentity>,
    files: &mut Vec<VisibleFile>,
) -> Result<(), WatchError> {
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        // A subfolder removed while walking is simply gone, like a file
        // removed after listing; the root itself going is the caller's to see.
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if relative.as_os_str().is_empty() {
                return Err(WatchError::Missing {
                    path: folder.into(),
                });
            }
            return Ok(());
        }
        Err(error) => return Err(WatchError::io(folder, "list folder", error)),
    };
    for entry in entries {
        let entry = entry.map_err(|error| WatchError::io(folder, "list folder", error))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) => {
                let is_link = entry.file_type().is_ok_and(|kind| kind.is_symlink());
                if is_link || error.kind() == io::ErrorKind::NotFound {
                    tracing::debug!(path = %path.display(), %error, "leaving out an entry that leads nowhere");
                    continue;
                }
                return Err(WatchError::io(path, "read file metadata", error));
            }
        };
        let entry_relative = relative.join(entry.file_name());
        if metadata.is_dir() {
            let identity = folder_identity(&metadata);
            let is_loop = identity.is_some() && ancestors.contains(&identity);
            if is_loop || ancestors.len() > MAX_DEPTH {
                tracing::debug!(path = %path.display(), "leaving out a folder that loops back");
                continue;
            }
            ancestors.push(identity);
            let walked = walk(&path, &entry_relative, ancestors, files);
            ancestors.pop();
            walked?;
        } else if metadata.is_file() && !is_scratch_file(&name) {
            files.push(VisibleFile {
                relative: entry_relative,
                path,
                metadata,
            });
        }
    }
    Ok(())
}

/// Names editors and copy tools use for files that are not (yet) content.
fn is_scratch_file(name: &str) -> bool {
    name.ends_with('~')
        || name.ends_with(".tmp")
        || name.ends_with(".swp")
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
}

/// Returns `None` when the file disappeared after it was listed.
fn hash_file(path: &Path) -> Result<Option<(u64, [u8; 32])>, WatchError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(WatchError::io(path, "open file", error)),
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut length: u64 = 0;
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(WatchError::io(path, "read file", error)),
        };
        let chunk = buffer.get(..read).unwrap_or_default();
        hasher.update(chunk);
        length = length.saturating_add(len_bytes_u64(chunk.len()));
    }
    Ok(Some((length, hasher.finalize().into())))
}

/// The relative path as bytes, components joined by `/` on every platform,
/// so the same tree hashes the same everywhere.
fn path_key(relative: &Path) -> Vec<u8> {
    let mut key = Vec::new();
    for component in relative.components() {
        if let Component::Normal(part) = component {
            if !key.is_empty() {
                key.push(b'/');
            }
            key.extend_from_slice(&os_bytes(part));
        }
    }
    key
}

#[cfg(unix)]
fn os_bytes(part: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    part.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(part: &std::ffi::OsStr) -> Vec<u8> {
    part.to_string_lossy().as_bytes().to_vec()
}

fn len_bytes(length: usize) -> [u8; 8] {
    len_bytes_u64(length).to_le_bytes()
}

fn len_bytes_u64(length: usize) -> u64 {
    u64::try_from(length).unwrap_or(u64::MAX)
}
