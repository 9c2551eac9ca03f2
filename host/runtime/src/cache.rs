//! Precompiled components on disk, so a restart does not recompile every
//! plugin.
//!
//! Entries live under a folder named by the engine's compatibility hash (a
//! new wasmtime or different compiler settings use a fresh folder) and are
//! named by the SHA-256 of the component's bytes. Each entry carries the
//! SHA-256 of its payload: a truncated or altered file is a miss, logged,
//! recompiled and rewritten, never a failure. An intact entry that this
//! engine refuses is the component's failure, reported without compiling
//! it again.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8] = b"org-mesh-cwasm-1\n";

/// How a component was obtained, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No cache configured.
    Disabled,
    Hit,
    /// Not cached yet; compiled and stored.
    Miss,
    /// An entry existed but was corrupt; recompiled and replaced.
    Replaced,
}

#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(root: &Path, engine: &Engine) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Cache {
            dir: root.join(format!("{:016x}", hasher.finish())),
        }
    }

    fn entry(&self, bytes: &[u8]) -> PathBuf {
        self.dir
            .join(format!("{}.cwasm", hex::encode(Sha256::digest(bytes))))
    }

    /// The payload of a cache entry if it is intact.
    fn read(path: &Path) -> Option<Vec<u8>> {
        let data = std::fs::read(path).ok()?;
        let rest = data.strip_prefix(MAGIC)?;
        if rest.len() < 32 {
            return None;
        }
        let (sum, payload) = rest.split_at(32);
        (Sha256::digest(payload).as_slice() == sum).then(|| payload.to_vec())
    }

    fn write(path: &Path, payload: &[u8]) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut data = Vec::with_capacity(MAGIC.len() + 32 + payload.len());
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(&Sha256::digest(payload));
        data.extend_from_slice(payload);
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, path)
    }
}

/// Compiles `bytes`, going through the cache when there is one.
pub(crate) fn compile(
    engine: &Engine,
    cache: Option<&Cache>,
    bytes: &[u8],
) -> wasmtime::Result<(Component, CacheOutcome)> {
    let Some(cache) = cache else {
        return Ok((Component::new(engine, bytes)?, CacheOutcome::Disabled));
    };
    let path = cache.entry(bytes);
    let existed = path.exists();
    if let Some(payload) = Cache::read(&path) {
        // The entry is intact and sits in this engine's folder, so compiling
        // again would give the same code: a failure here is the component's
        // own under this engine's limits (say, a memory minimum above the
        // cap), and recompiling an 18 MB component to learn so again costs
        // many seconds.
        return deserialize(engine, &payload).map(|component| (component, CacheOutcome::Hit));
    }
    if existed {
        tracing::warn!(path = %path.display(), "Corrupt compiled plugin in cache; recompiling");
    }
    let payload = engine.precompile_component(bytes)?;
    if let Err(e) = Cache::write(&path, &payload) {
        tracing::warn!(path = %path.display(), error = %e, "Cannot write the plugin cache; going on without it");
    }
    let component = deserialize(engine, &payload)?;
    let outcome = if existed {
        CacheOutcome::Replaced
    } else {
        CacheOutcome::Miss
    };
    Ok((component, outcome))
}

#[expect(
    unsafe_code,
    reason = "wasmtime cannot verify precompiled code; the bytes are trusted because this engine produced them and their checksum matches"
)]
fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `payload` is either the output of `precompile_component` on
    // this engine a moment ago, or a cache entry whose SHA-256 matches the one
    // written beside it by `Cache::write`, in a folder keyed by this engine's
    // compatibility hash. wasmtime checks version and settings again.
    unsafe { Component::deserialize(engine, payload) }
}
