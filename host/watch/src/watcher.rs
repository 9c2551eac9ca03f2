//! [`FolderWatch`]: turns filesystem events for one folder into a stream of
//! content versions.
//!
//! Events are only a hint that something may have changed. They are never
//! interpreted one by one: after a burst of them settles, the folder's
//! content hash is recomputed and a [`Change`] is sent only if the hash
//! differs from the last one sent. That makes touching a file, saving it
//! unchanged, or an editor's temporary files invisible to the consumer, and
//! it makes lost or reordered events harmless as long as one arrives.
//!
//! Three parties cooperate:
//! - notify's thread calls [`Signals::on_event`], which only filters and
//!   wakes the task; it never blocks, so events cannot back up in notify.
//! - the task ([`Driver`]) waits for the burst to settle, then runs a
//!   [`SettleJob`] on the blocking pool: re-add the watch if the folder was
//!   replaced, then hash. The tokio runtime never waits on the filesystem.
//! - when events cannot be relied on (notify failed, the folder is missing,
//!   or polling was asked for), the task also polls a cheap metadata
//!   signature and treats a difference as a hint.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior, sleep_until};

use crate::error::WatchError;
use crate::hash::{
    ContentHash, FolderIdentity, Signature, content_hash, empty_content, folder_identity, signature,
};

/// How often to poll when no interval is given but polling is needed anyway.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Changes not yet received by the consumer. A slow consumer only delays
/// later versions: the task waits for room, and the events arriving
/// meanwhile collapse into one more hash.
const CHANGE_BUFFER: usize = 16;

/// notify errors not yet seen by the task; more are dropped, since the task
/// reacts to the first one the same way it would to many.
const ERROR_BUFFER: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// How long the folder must be free of events before it is hashed.
    pub quiet: Duration,
    /// The longest a burst of events may postpone hashing, counted from its
    /// first event, so that a folder written to without pause still reports.
    pub max_delay: Duration,
    /// The polling interval used whenever events cannot be relied on: notify
    /// could not be set up or reported an error, or the folder is missing or
    /// cannot be watched again. `None` turns polling off: [`FolderWatch::start`]
    /// then fails if notify cannot watch the folder, a missing folder is only
    /// noticed coming back through events on its parent folder, and later
    /// notify errors are logged and answered by setting up notify again.
    pub poll_fallback: Option<Duration>,
    /// Skip notify and only poll, every `poll_fallback` (or
    /// [`DEFAULT_POLL_INTERVAL`] when that is `None`): for filesystems
    /// without change notification, such as some network mounts.
    pub poll_only: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            quiet: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            poll_fallback: Some(DEFAULT_POLL_INTERVAL),
            poll_only: false,
        }
    }
}

/// A new version of the folder's content.
///
/// A file copied in slowly may be hashed half-written if the copy pauses for
/// longer than `quiet`; the version with the complete file then follows as
/// another `Change`. Consumers should validate every version and keep the
/// previous one when a version does not validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The watched folder, as it was passed to [`FolderWatch::start`].
    pub dir: PathBuf,
    pub hash: ContentHash,
    /// The hash of the version before, as last sent or found at start.
    pub previous: ContentHash,
    /// The visible files now, relative to `dir`, sorted. Empty when every
    /// file was deleted or the folder itself is gone; what to do then is the
    /// consumer's choice.
    pub files: Vec<PathBuf>,
}

/// Watches one folder until dropped.
#[derive(Debug)]
pub struct FolderWatch {
    dir: PathBuf,
    current: watch::Receiver<ContentHash>,
    task: JoinHandle<()>,
}

impl FolderWatch {
    /// Starts watching `dir`, which must exist and be a folder, and computes
    /// its first content hash before returning. Must be called inside a
    /// tokio runtime.
    ///
    /// This blocks while it hashes the folder and sets up the watch: call
    /// it from `spawn_blocking` if the folder is large.
    ///
    /// The receiver yields a [`Change`] for every new content version. It
    /// ends when the `FolderWatch` is dropped; dropping the receiver stops
    /// the watching too.
    pub fn start(
        dir: &Path,
        options: WatchOptions,
    ) -> Result<(FolderWatch, mpsc::Receiver<Change>), WatchError> {
        if options.poll_fallback == Some(Duration::ZERO) {
            return Err(WatchError::InvalidOptions {
                path: dir.into(),
                reason: "poll_fallback must be longer than zero",
            });
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| WatchError::NoRuntime { path: dir.into() })?;
        // notify reports absolute paths; events are matched against this.
        let folder = std::path::absolute(dir)
            .map_err(|error| WatchError::io(dir, "resolve the folder's path", error))?;
        let metadata = fs::metadata(&folder).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                WatchError::Missing { path: dir.into() }
            } else {
                WatchError::io(dir, "read folder metadata", error)
            }
        })?;
        if !metadata.is_dir() {
            return Err(WatchError::NotAFolder { path: dir.into() });
        }

        let poll_interval = if options.poll_only {
            Some(options.poll_fallback.unwrap_or(DEFAULT_POLL_INTERVAL))
        } else {
            options.poll_fallback
        };
        let (errors, error_rx) = mpsc::channel(ERROR_BUFFER);
        let signals = Arc::new(Signals {
            folder: folder.clone(),
            hint: Notify::new(),
            rewatch: AtomicBool::new(false),
            errors,
        });

        // The watch is set up before the first hash, so that nothing
        // written in between can go unnoticed.
        let mut watcher = None;
        let mut watched = None;
        if !options.poll_only {
            match attach(&signals).and_then(|mut new| watch_folder(&mut new, &folder).map(|()| new))
            {
                Ok(attached) => {
                    watcher = Some(attached);
                    watched = Some(folder_identity(&metadata));
                }
                Err(source) => {
                    let Some(interval) = poll_interval else {
                        return Err(WatchError::Notify {
                            path: dir.into(),
                            source,
                        });
                    };
                    tracing::warn!(
                        dir = %dir.display(),
                        error = %source,
                        poll_interval_ms = interval.as_millis(),
                        "cannot watch the folder for changes; polling it instead"
                    );
                }
            }
        }

        let (first, _) = content_hash(&folder)?;
        let (current_tx, current) = watch::channel(first);
        let (changes, change_rx) = mpsc::channel(CHANGE_BUFFER);
        let driver = Driver {
            dir: dir.into(),
            folder,
            quiet: options.quiet,
            max_delay: options.max_delay,
            poll_interval,
            poll_only: options.poll_only,
            signals,
            errors: error_rx,
            watcher,
            watched,
            last: first,
            current: current_tx,
            changes,
            polled: None,
            retry_at: None,
            last_problem: None,
        };
        let task = runtime.spawn(driver.run());
        Ok((
            FolderWatch {
                dir: dir.into(),
                current,
                task,
            },
            change_rx,
        ))
    }

    /// The hash of the newest version found: the last one sent as a
    /// [`Change`], or the first one while nothing has changed.
    pub fn current(&self) -> ContentHash {
        *self.current.borrow()
    }

    /// The watched folder, as it was passed to [`FolderWatch::start`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        // Dropping the task drops the notify watcher with it, which stops
        // notify's thread.
        self.task.abort();
    }
}

/// What notify's callback shares with the task.
struct Signals {
    /// Absolute path of the watched folder.
    folder: PathBuf,
    /// Woken for every relevant event. Wake-ups collapse into one stored
    /// permit, which is all a hint needs to be.
    hint: Notify,
    /// Set when an event concerned the folder itself (created, removed,
    /// renamed) or events were lost: the watch may now be on the wrong
    /// folder, or on none, even if a new folder reuses the old inode.
    rewatch: AtomicBool,
    errors: mpsc::Sender<notify::Error>,
}

impl Signals {
    fn on_event(&self, event: notify::Result<Event>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                // A full buffer already holds errors enough to act on.
                let _ = self.errors.try_send(error);
                self.hint.notify_one();
                return;
            }
        };
        // Reading the folder, including our own hashing, opens files;
        // only a close after writing can mean new content.
        if let EventKind::Access(kind) = event.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return;
        }
        let lost_events = event.need_rescan();
        // The parent folder is watched too, to see this folder come and go;
        // its other entries are none of our business.
        let concerns_folder = lost_events
            || event.paths.is_empty()
            || event
                .paths
                .iter()
                .any(|path| path.starts_with(&self.folder));
        if !concerns_folder {
            return;
        }
        if lost_events || event.paths.contains(&self.folder) {
            self.rewatch.store(true, Ordering::Release);
        }
        self.hint.notify_one();
    }
}

/// Creates a notify watcher feeding `signals`, watching the folder's parent
/// (without its subfolders) so that the folder being removed, recreated or
/// renamed over is seen even while the folder's own watch is gone.
fn attach(signals: &Arc<Signals>) -> notify::Result<RecommendedWatcher> {
    let handler = Arc::clone(signals);
    let mut watcher = notify::recommended_watcher(move |event| handler.on_event(event))?;
    if let Some(parent) = signals.folder.parent()
        && let Err(error) = watcher.watch(parent, RecursiveMode::NonRecursive)
    {
        // Not fatal: only a replaced folder would then go unnoticed until
        // polling or another event catches it.
        tracing::debug!(
            dir = %signals.folder.display(),
            parent = %parent.display(),
            %error,
            "cannot watch the folder's parent"
        );
    }
    Ok(watcher)
}

fn watch_folder(watcher: &mut RecommendedWatcher, folder: &Path) -> notify::Result<()> {
    watcher.watch(folder, RecursiveMode::Recursive)
}

/// The task behind a [`FolderWatch`].
struct Driver {
    dir: PathBuf,
    folder: PathBuf,
    quiet: Duration,
    max_delay: Duration,
    poll_interval: Option<Duration>,
    poll_only: bool,
    signals: Arc<Signals>,
    errors: mpsc::Receiver<notify::Error>,
    /// `None` when polling only, or while notify cannot be set up.
    watcher: Option<RecommendedWatcher>,
    /// The identity of the folder under watch; `None` while the folder is
    /// not watched (missing, or the watch failed).
    watched: Option<FolderIdentity>,
    /// The hash last sent, or the first one.
    last: ContentHash,
    current: watch::Sender<ContentHash>,
    changes: mpsc::Sender<Change>,
    /// The signature seen by the previous poll, if polling has been running.
    polled: Option<Signature>,
    /// When to try again after the folder could not be hashed.
    retry_at: Option<Instant>,
    /// The last problem logged, so a lasting one is not logged at `warn`
    /// every time it is retried.
    last_problem: Option<String>,
}

/// What woke the task while waiting.
enum Wake {
    Hint,
    NotifyFailed(notify::Error),
    PollDue,
    Settled,
    Closed,
}

impl Driver {
    async fn run(mut self) {
        let mut poll = tokio::time::interval(self.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL));
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if !self.wait_until_settled(&mut poll).await {
                return;
            }
            if !self.settle().await {
                return;
            }
        }
    }

    fn polling(&self) -> bool {
        self.poll_interval.is_some() && (self.watcher.is_none() || self.watched.is_none())
    }

    /// Waits for a burst of hints and then for it to settle: `quiet` without
    /// a hint, or `max_delay` after the burst's first hint, whichever comes
    /// first. Returns false when nobody listens any more.
    async fn wait_until_settled(&mut self, poll: &mut Interval) -> bool {
        let mut burst: Option<(Instant, Instant)> = None;
        loop {
            let deadline =
                burst.map(|(first, last)| (last + self.quiet).min(first + self.max_delay));
            let idle = Instant::now() + Duration::from_secs(3600);
            let retry_at = self.retry_at;
            let signals = Arc::clone(&self.signals);
            let wake = tokio::select! {
                () = signals.hint.notified() => Wake::Hint,
                Some(error) = self.errors.recv() => Wake::NotifyFailed(error),
                _ = poll.tick(), if self.polling() => Wake::PollDue,
                () = sleep_until(retry_at.unwrap_or(idle)), if retry_at.is_some() => {
                    self.retry_at = None;
                    Wake::Hint
                }
                () = sleep_until(deadline.unwrap_or(idle)), if deadline.is_some() => Wake::Settled,
                () = self.changes.closed() => Wake::Closed,
            };
            let hinted = match wake {
                Wake::Hint => true,
                Wake::NotifyFailed(error) => {
                    self.notify_failed(&error);
                    true
                }
                Wake::PollDue => self.poll_found_difference().await,
                Wake::Settled => return true,
                Wake::Closed => return false,
            };
            if hinted {
                let now = Instant::now();
                burst = Some(burst.map_or((now, now), |(first, _)| (first, now)));
            }
        }
    }

    /// Drops the watcher so the next settle sets notify up from scratch; if
    /// that fails too, polling covers the folder meanwhile.
    fn notify_failed(&mut self, error: &notify::Error) {
        tracing::warn!(
            dir = %self.dir.display(),
            %error,
            poll_interval_ms = self.poll_interval.map(|interval| interval.as_millis()),
            "change notification failed; setting it up again"
        );
        self.watcher = None;
        self.watched = None;
    }

    async fn poll_found_difference(&mut self) -> bool {
        let folder = self.folder.clone();
        let polled = match tokio::task::spawn_blocking(move || signature(&folder)).await {
            Ok(Ok(signature)) => Some(signature),
            Ok(Err(error)) => {
                tracing::debug!(dir = %self.dir.display(), %error, "poll could not list the folder");
                None
            }
            Err(error) => {
                tracing::debug!(dir = %self.dir.display(), %error, "poll stopped unexpectedly");
                None
            }
        };
        // The first poll has nothing to compare with, and a failed poll
        // proves nothing: both count as a possible change.
        let differs = polled.is_none() || polled != self.polled;
        self.polled = polled;
        differs
    }

    /// Re-adds the watch where needed, hashes, and sends a `Change` if the
    /// content differs. Returns false when nobody listens any more.
    async fn settle(&mut self) -> bool {
        let job = SettleJob {
            folder: self.folder.clone(),
            signals: Arc::clone(&self.signals),
            reattach: !self.poll_only,
            watcher: self.watcher.take(),
            watched: self.watched,
            force_rewatch: self.signals.rewatch.swap(false, Ordering::AcqRel),
        };
        let outcome = match tokio::task::spawn_blocking(move || job.run()).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // The watcher went down with the job; the next settle sets
                // up a new one.
                self.watched = None;
                self.report_problem(format!("folder scan stopped unexpectedly: {error}"));
                self.retry_at = Some(Instant::now() + self.retry_interval());
                return true;
            }
        };
        self.watcher = outcome.watcher;
        self.watched = outcome.watched;
        if !self.polling() {
            // Should polling resume later, it must not compare against a
            // signature from before the gap.
            self.polled = None;
        }
        if let Some(error) = outcome.watch_error {
            self.report_problem(format!("cannot watch the folder: {error}"));
        }
        let (hash, files) = match outcome.scan {
            Ok(scan) => scan,
            Err(error) => {
                self.report_problem(format!("cannot hash the folder: {error}"));
                self.retry_at = Some(Instant::now() + self.retry_interval());
                return true;
            }
        };
        if self.watched.is_some() || self.poll_only {
            self.last_problem = None;
        }
        self.retry_at = None;
        if hash == self.last {
            return true;
        }
        let change = Change {
            dir: self.dir.clone(),
            hash,
            previous: self.last,
            files,
        };
        tracing::debug!(
            dir = %self.dir.display(),
            %hash,
            previous = %change.previous,
            files = change.files.len(),
            "folder content changed"
        );
        self.last = hash;
        self.current.send_replace(hash);
        self.changes.send(change).await.is_ok()
    }

    fn retry_interval(&self) -> Duration {
        self.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL)
    }

    fn report_problem(&mut self, problem: String) {
        if self.last_problem.as_ref() == Some(&problem) {
            tracing::debug!(dir = %self.dir.display(), %problem, "still failing");
        } else {
            tracing::warn!(
                dir = %self.dir.display(),
                %problem,
                poll_interval_ms = self.poll_interval.map(|interval| interval.as_millis()),
                "folder watch degraded; will retry"
            );
            self.last_problem = Some(problem);
        }
    }
}

/// The filesystem work of one settle, run on the blocking pool. It owns the
/// watcher while it runs, because notify's `watch` walks the folder tree.
struct SettleJob {
    folder: PathBuf,
    signals: Arc<Signals>,
    reattach: bool,
    watcher: Option<RecommendedWatcher>,
    watched: Option<FolderIdentity>,
    force_rewatch: bool,
}

struct SettleOutcome {
    watcher: Option<RecommendedWatcher>,
    watched: Option<FolderIdentity>,
    watch_error: Option<notify::Error>,
    scan: Result<(ContentHash, Vec<PathBuf>), WatchError>,
}

impl SettleJob {
    fn run(mut self) -> SettleOutcome {
        let watch_error = self.ensure_watched().err();
        // Hashing comes after the watch is back in place, so a write that
        // lands in between is either in this hash or caught by a later event.
        let scan = match content_hash(&self.folder) {
            Err(WatchError::Missing { .. } | WatchError::NotAFolder { .. }) => {
                Ok((empty_content(), Vec::new()))
            }
            scan => scan,
        };
        SettleOutcome {
            watcher: self.watcher,
            watched: self.watched,
            watch_error,
            scan,
        }
    }

    fn ensure_watched(&mut self) -> notify::Result<()> {
        if self.watcher.is_none() && self.reattach {
            self.watcher = Some(attach(&self.signals)?);
            self.watched = None;
        }
        let Some(watcher) = self.watcher.as_mut() else {
            return Ok(());
        };
        let identity = match fs::metadata(&self.folder) {
            Ok(metadata) if metadata.is_dir() => folder_identity(&metadata),
            _ => {
                // notify forgets a deleted folder by itself; this covers a
                // folder replaced by a file.
                if self.watched.take().is_some() {
                    let _ = watcher.unwatch(&self.folder);
                }
                return Ok(());
            }
        };
        if !self.force_rewatch && self.watched == Some(identity) {
            return Ok(());
        }
        // Whatever notify still holds for this path may belong to the old
        // folder; it reports a missing watch as an error, which is fine.
        let _ = watcher.unwatch(&self.folder);
        self.watched = None;
        match watch_folder(watcher, &self.folder) {
            Ok(()) => {
                self.watched = Some(identity);
                Ok(())
            }
            // Gone again already: the parent's events or polling will
            // bring it back.
            Err(error) if matches!(error.kind, notify::ErrorKind::PathNotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
