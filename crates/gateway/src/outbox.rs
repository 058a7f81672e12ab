//! The durable escrow outbox: deposits and erasures survive an escrow outage and a restart.
//!
//! Every request is first written as one file (`<seq>.json`: written to a temporary name,
//! fsynced, renamed, folder fsynced) and only then delivered; the file is removed after the
//! escrow acknowledged it. Items hold sealed material only (HPKE-wrapped keys, signed
//! evidence, ids): nothing in the outbox can decrypt a recording. Delivery is strictly in
//! order, so an erasure never overtakes the deposit it erases; a retryable failure pauses the
//! queue with exponential backoff, a permanent one moves the item to `failed/` for an operator.
//!
//! Group commit: `push` writes the item into the page cache (temporary name, rename) and
//! returns; the outbox's sync thread then makes every item written since its last round
//! durable with one `syncfs` (falling back to an fsync of each file and one of the folder).
//! The signalling loop thus never waits for the disk: with one fsync pair per item it stalled
//! for milliseconds per call end, which left BYEs unanswered when many calls ended at once. A
//! crash of the process loses nothing (the page cache survives it); a power loss can lose the
//! items of the round in flight, as it can the last second of a recording
//! (docs/recording-format.md, "Durability in the gateway"). [`Outbox::flush`] waits for the
//! round that covers everything pushed so far (shutdown).

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::error::GatewayError;

/// How long the outbox keeps delivering after the gateway was told to stop.
pub const OUTBOX_LAST_TRY: Duration = Duration::from_secs(3);
use crate::metrics::Metrics;
use crate::secrets::{create_private_dir, sync_parent};

/// One request for the escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OutboxItem {
    /// Deposit a recording's wrapped data key with its consent evidence (the escrow's own
    /// wire type: what is on disk here is exactly what is sent).
    Deposit(Box<callseal_escrow::Deposit>),
    /// Erase a recording (consent withdrawn).
    Erase {
        /// Recording id (32 hex digits).
        recording: String,
        /// Why, for the escrow's audit log.
        reason: String,
    },
}

impl OutboxItem {
    /// The recording the item concerns (32 hex digits).
    pub fn recording(&self) -> String {
        match self {
            OutboxItem::Deposit(d) => d.recording.to_string(),
            OutboxItem::Erase { recording, .. } => recording.clone(),
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// Worth trying again later (escrow unreachable, storage busy) vs. refused for good.
    pub retryable: bool,
    pub message: String,
}

/// The escrow side of the outbox: in-process service or HTTPS client.
pub trait Deliver: Send + Sync + 'static {
    fn deliver<'a>(
        &'a self,
        item: &'a OutboxItem,
    ) -> Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;
}

/// The outbox folder and its sequence counter.
pub struct Outbox {
    dir: PathBuf,
    next_seq: AtomicU64,
    wake: Notify,
    metrics: Arc<Metrics>,
    sync: Arc<Syncer>,
}

/// The sync thread's side: items written but not yet durable, and how far it got.
struct Syncer {
    dir: PathBuf,
    state: Mutex<SyncState>,
    /// Signals the thread (work queued, or stop) and the waiters of [`Outbox::flush`].
    changed: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Written since the last round (for the per-file fallback).
    written: Vec<PathBuf>,
    /// Items written so far / made durable so far (a round covers every item written before
    /// it started).
    pushed: u64,
    synced: u64,
    stop: bool,
}

impl Syncer {
    fn run(&self) {
        loop {
            let (batch, upto) = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                while st.written.is_empty() && !st.stop {
                    st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.written.is_empty() {
                    return;
                }
                (std::mem::take(&mut st.written), st.pushed)
            };
            self.round(&batch);
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.synced = st.synced.max(upto);
            self.changed.notify_all();
        }
    }

    /// One `syncfs` for the folder's file system; where that fails, each file and the folder.
    fn round(&self, batch: &[PathBuf]) {
        let synced = File::open(&self.dir)
            .and_then(|d| rustix::fs::syncfs(&d).map_err(std::io::Error::from));
        let Err(e) = synced else { return };
        tracing::warn!(folder = %self.dir.display(), "escrow outbox: syncfs failed ({e}); syncing each item");
        for path in batch {
            match File::open(path).and_then(|f| f.sync_all()) {
                Ok(()) => {}
                // Delivered and removed meanwhile: nothing left to make durable.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!(
                    "escrow outbox: cannot fsync {}: {e}; the item may not survive a power loss",
                    path.display()
                ),
            }
        }
        if let Err(e) = sync_parent(&self.dir.join("item")) {
            tracing::error!("escrow outbox: {e}; new items may not survive a power loss");
        }
    }
}

impl Outbox {
    /// Opens (creating) `dir` and counts what earlier runs left in it.
    pub fn open(dir: &Path, metrics: Arc<Metrics>) -> Result<Arc<Self>, GatewayError> {
        create_private_dir(dir)?;
        create_private_dir(&dir.join("failed"))?;
        let pending = list(dir)?;
        let next = pending.last().map(|(seq, _)| seq + 1).unwrap_or(1);
        metrics
            .outbox_depth
            .store(pending.len() as i64, Ordering::Relaxed);
        let sync = Arc::new(Syncer {
            dir: dir.to_owned(),
            state: Mutex::new(SyncState::default()),
            changed: Condvar::new(),
        });
        let runner = sync.clone();
        std::thread::Builder::new()
            .name("callseal-outbox-sync".into())
            .spawn(move || runner.run())
            .map_err(|e| GatewayError::storage("start the sync thread for", dir, e))?;
        Ok(Arc::new(Self {
            dir: dir.to_owned(),
            next_seq: AtomicU64::new(next),
            wake: Notify::new(),
            metrics,
            sync,
        }))
    }

    /// Queues `item`: written (a process crash loses nothing) when this returns, durable once
    /// the sync thread's next round is done (see the module notes; [`Outbox::flush`] waits
    /// for it).
    pub fn push(&self, item: &OutboxItem) -> Result<(), GatewayError> {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let bytes = serde_json::to_vec(item).map_err(|e| {
            GatewayError::storage(
                "encode outbox item for",
                &self.dir,
                std::io::Error::other(e),
            )
        })?;
        let path = self.dir.join(format!("{seq:020}.json"));
        write_renamed(&path, &bytes, false)?;
        {
            let mut st = self.sync.state.lock().unwrap_or_else(|p| p.into_inner());
            st.written.push(path);
            st.pushed += 1;
        }
        self.sync.changed.notify_all();
        self.metrics.outbox_depth.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Ok(())
    }

    /// Waits (blocking) until every item pushed before this call is durable, at most `limit`;
    /// false if the time ran out.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut st = self.sync.state.lock().unwrap_or_else(|p| p.into_inner());
        let target = st.pushed;
        while st.synced < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .sync
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// True when nothing waits for delivery (an unreadable folder counts as not empty).
    pub fn is_empty(&self) -> bool {
        list(&self.dir).is_ok_and(|l| l.is_empty())
    }

    /// Items waiting, oldest first.
    pub fn pending(&self) -> Result<Vec<OutboxItem>, GatewayError> {
        list(&self.dir)?
            .into_iter()
            .map(|(_, p)| read_item(&p))
            .collect()
    }

    /// Delivers until `stop` turns true, then makes one last pass bounded by
    /// [`OUTBOX_LAST_TRY`] (what it cannot deliver stays queued for the next start).
    /// Retryable failures back off from `min` to `max`.
    pub async fn run(
        self: Arc<Self>,
        deliver: Arc<dyn Deliver>,
        min: Duration,
        max: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut backoff = min;
        loop {
            match self.deliver_all(deliver.as_ref()).await {
                Ok(()) => {
                    backoff = min;
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = stop.changed() => break,
                    }
                }
                Err(e) => {
                    self.metrics.escrow_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        retry_in_ms = backoff.as_millis() as u64,
                        "escrow outbox: {e}; will retry"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(max);
                }
            }
        }
        if !self.is_empty() {
            let last = tokio::time::timeout(OUTBOX_LAST_TRY, self.deliver_all(deliver.as_ref()));
            match last.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("escrow outbox: {e}; kept for the next start"),
                Err(_) => tracing::warn!(
                    "escrow outbox: not delivered at shutdown; kept for the next start"
                ),
            }
        }
    }

    /// One pass over the queue, in order. Stops at the first retryable failure.
    pub async fn deliver_all(&self, deliver: &dyn Deliver) -> Result<(), DeliveryError> {
        let entries = list(&self.dir).map_err(|e| DeliveryError {
            retryable: true,
            message: e.to_string(),
        })?;
        for (_, path) in entries {
            let item = match read_item(&path) {
                Ok(item) => item,
                Err(e) => {
                    tracing::error!("escrow outbox: {e}; moved to failed/");
                    self.park(&path);
                    continue;
                }
            };
            match deliver.deliver(&item).await {
                Ok(()) => {
                    if let Err(e) = std::fs::remove_file(&path)
                        .map_err(|e| GatewayError::storage("remove", &path, e))
                    {
                        // Delivered but not removed: it will be delivered again, which the
                        // escrow accepts (deposits and erasures are idempotent).
                        tracing::warn!("escrow outbox: {e}");
                        return Err(DeliveryError {
                            retryable: true,
                            message: e.to_string(),
                        });
                    }
                    // The removal is not fsynced: an item that reappears after a power loss
                    // is delivered again, which the escrow accepts.
                    self.metrics.outbox_depth.fetch_sub(1, Ordering::Relaxed);
                    tracing::info!(recording = %item.recording(), kind = kind(&item), "escrow outbox: delivered");
                }
                Err(e) if e.retryable => return Err(e),
                Err(e) => {
                    self.metrics.escrow_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(recording = %item.recording(), kind = kind(&item), "escrow refused: {e}; moved to failed/ for an operator");
                    self.park(&path);
                }
            }
        }
        Ok(())
    }

    fn park(&self, path: &Path) {
        if let Some(name) = path.file_name() {
            let target = self.dir.join("failed").join(name);
            if std::fs::rename(path, &target).is_ok() {
                let _ = sync_parent(&target);
                let _ = sync_parent(path);
                self.metrics.outbox_depth.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Outbox {
    /// The sync thread makes what is still pending durable, then ends.
    fn drop(&mut self) {
        self.sync
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop = true;
        self.sync.changed.notify_all();
    }
}

fn kind(item: &OutboxItem) -> &'static str {
    match item {
        OutboxItem::Deposit(_) => "deposit",
        OutboxItem::Erase { .. } => "erase",
    }
}

/// Writes `bytes` to `path` durably: a temporary file in the same folder (0600), fsynced,
/// renamed over `path`, folder fsynced. Readers see the old or the new content, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), GatewayError> {
    write_renamed(path, bytes, true)
}

/// Writes `bytes` to a temporary name beside `path` (0600) and renames it over `path`; with
/// `durable`, fsyncs the file before and the folder after the rename.
fn write_renamed(path: &Path, bytes: &[u8], durable: bool) -> Result<(), GatewayError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("item");
    let tmp = path.with_file_name(format!(".tmp-{name}"));
    write_file(&tmp, bytes, durable)?;
    std::fs::rename(&tmp, path).map_err(|e| GatewayError::storage("rename", &tmp, e))?;
    if durable { sync_parent(path) } else { Ok(()) }
}

fn write_file(path: &Path, bytes: &[u8], durable: bool) -> Result<(), GatewayError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| GatewayError::storage("create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| GatewayError::storage("write", path, e))?;
    if durable {
        f.sync_all()
            .map_err(|e| GatewayError::storage("fsync", path, e))?;
    }
    Ok(())
}

fn read_item(path: &Path) -> Result<OutboxItem, GatewayError> {
    let bytes = std::fs::read(path).map_err(|e| GatewayError::storage("read", path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::storage("decode", path, std::io::Error::other(e)))
}

/// `(seq, path)` of every committed item, ascending. Temporaries of an interrupted push are
/// ignored (they were never acknowledged to the call).
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, GatewayError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| GatewayError::storage("list", dir, e))? {
        let entry = entry.map_err(|e| GatewayError::storage("list", dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if let Ok(seq) = stem.parse::<u64>() {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Fails the first `fail_first` calls (retryable), refuses recordings named "bad", records the rest.
    struct Fake {
        fail_first: Mutex<u32>,
        seen: Mutex<Vec<OutboxItem>>,
    }

    impl Deliver for Fake {
        fn deliver<'a>(
            &'a self,
            item: &'a OutboxItem,
        ) -> Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>> {
            Box::pin(async move {
                let mut left = self.fail_first.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return Err(DeliveryError {
                        retryable: true,
                        message: "escrow unreachable".into(),
                    });
                }
                if item.recording() == "bad" {
                    return Err(DeliveryError {
                        retryable: false,
                        message: "invalid".into(),
                    });
                }
                self.seen.lock().unwrap().push(item.clone());
                Ok(())
            })
        }
    }

    fn erase(r: &str) -> OutboxItem {
        OutboxItem::Erase {
            recording: r.into(),
            reason: "withdrawn".into(),
        }
    }

    #[test]
    fn a_round_makes_every_pushed_item_durable_and_flush_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), Arc::new(Metrics::default())).unwrap();
        assert!(
            ob.flush(Duration::from_secs(5)),
            "nothing pushed: nothing to wait for"
        );
        for i in 0..50 {
            ob.push(&erase(&format!("r{i}"))).unwrap();
        }
        assert!(ob.flush(Duration::from_secs(10)));
        let st = ob.sync.state.lock().unwrap();
        assert_eq!((st.pushed, st.synced), (50, 50));
        assert!(st.written.is_empty());
        drop(st);
        // Written and renamed in order, no temporary file left behind.
        assert_eq!(ob.pending().unwrap().len(), 50);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    }

    #[tokio::test]
    async fn items_survive_reopen_and_deliver_in_order_after_outage() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        let ob = Outbox::open(dir.path(), metrics.clone()).unwrap();
        ob.push(&erase("a")).unwrap();
        ob.push(&erase("b")).unwrap();
        assert_eq!(metrics.outbox_depth.load(Ordering::Relaxed), 2);
        drop(ob);
        // A restart finds both, in order, and continues numbering after them.
        let ob = Outbox::open(dir.path(), metrics.clone()).unwrap();
        ob.push(&erase("c")).unwrap();
        assert_eq!(
            ob.pending().unwrap(),
            vec![erase("a"), erase("b"), erase("c")]
        );

        let fake = Fake {
            fail_first: Mutex::new(1),
            seen: Mutex::new(vec![]),
        };
        let err = ob.deliver_all(&fake).await.unwrap_err();
        assert!(err.retryable);
        assert_eq!(
            ob.pending().unwrap().len(),
            3,
            "nothing lost while the escrow is down"
        );
        ob.deliver_all(&fake).await.unwrap();
        assert_eq!(
            *fake.seen.lock().unwrap(),
            vec![erase("a"), erase("b"), erase("c")]
        );
        assert!(ob.pending().unwrap().is_empty());
        assert_eq!(metrics.outbox_depth.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn refused_item_is_parked_and_the_queue_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), Arc::new(Metrics::default())).unwrap();
        ob.push(&erase("bad")).unwrap();
        ob.push(&erase("ok")).unwrap();
        let fake = Fake {
            fail_first: Mutex::new(0),
            seen: Mutex::new(vec![]),
        };
        ob.deliver_all(&fake).await.unwrap();
        assert_eq!(*fake.seen.lock().unwrap(), vec![erase("ok")]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("failed"))
                .unwrap()
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn corrupt_file_is_parked_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), Arc::new(Metrics::default())).unwrap();
        std::fs::write(dir.path().join("00000000000000000001.json"), b"{not json").unwrap();
        ob.push(&erase("x")).unwrap();
        let fake = Fake {
            fail_first: Mutex::new(0),
            seen: Mutex::new(vec![]),
        };
        ob.deliver_all(&fake).await.unwrap();
        assert_eq!(*fake.seen.lock().unwrap(), vec![erase("x")]);
    }

    #[tokio::test(start_paused = true)]
    async fn runner_backs_off_then_delivers_when_the_escrow_returns() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path(), Arc::new(Metrics::default())).unwrap();
        ob.push(&erase("r")).unwrap();
        let fake = Arc::new(Fake {
            fail_first: Mutex::new(3),
            seen: Mutex::new(vec![]),
        });
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(ob.clone().run(
            fake.clone(),
            Duration::from_secs(1),
            Duration::from_secs(4),
            rx,
        ));
        // Failures at t=0, 1, 3 (backoff 1, 2), success at t=7 (backoff 4).
        tokio::time::sleep(Duration::from_millis(6900)).await;
        assert!(fake.seen.lock().unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(*fake.seen.lock().unwrap(), vec![erase("r")]);
        tx.send(true).unwrap();
        task.await.unwrap();
    }
}
