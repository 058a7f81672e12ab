//! The disk threads: sealed segments are written here, off the packet path, and made durable
//! together once per [`SYNC_INTERVAL`] (group commit).
//!
//! A write into the page cache takes microseconds; an fsync is an ext4 journal commit and a
//! disk flush. One fsync per segment per recording was 500–1000 commits a second at 500
//! calls, most of what recording cost in CPU. Now a disk thread writes each segment as it
//! comes (so a crash of the process loses nothing already sealed) and, once per interval, makes
//! everything it wrote durable with one `syncfs` per file system. If `syncfs` fails, every file
//! written in that round is `fdatasync`ed on its own, so the failure lands on the file it
//! belongs to. The end of a recording is `fdatasync`ed on its own (see [`barrier`]).
//!
//! Every file always goes to the same thread, whose queue is FIFO, so a file's segments land in
//! order; a full queue makes the sender wait (back-pressure) rather than drop audio. Only sealed
//! bytes ever pass here. Segment buffers come from a small shared pool and go back to it once
//! written, so a recording allocates nothing per segment.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Disk threads (each handles every file routed to it, in order).
const THREADS: usize = 2;
/// Queued jobs per thread before senders wait: ~8 s of segments for 1000 calls.
const QUEUE: usize = 8192;
/// How long a written segment may wait to be made durable: what a power loss can cost on top
/// of the unsealed segment.
pub(super) const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// One recording file as the disk threads see it.
pub(super) struct Target {
    file: File,
    path: PathBuf,
    lane: usize,
    /// The file system it lives on (one `syncfs` covers every file of it).
    device: u64,
    /// Set until the first round that makes it durable: the new file's folder entry is part of
    /// that round (its `syncfs`, or one fsync of the folder if the round falls back).
    new_file: AtomicBool,
    /// Written since the last round (only the file's disk thread changes it).
    dirty: AtomicBool,
    /// Set with `failed`: lets every frame check for a failure without taking the lock.
    has_failed: AtomicBool,
    failed: Mutex<Option<String>>,
}

impl Target {
    /// `key` picks the thread (any stable bytes of the recording, e.g. its id).
    pub(super) fn new(file: File, path: PathBuf, key: [u8; 16]) -> Arc<Self> {
        let lane = usize::from(key[0]) % THREADS;
        let device = file.metadata().map_or(0, |m| m.dev());
        Arc::new(Self {
            file,
            path,
            lane,
            device,
            new_file: AtomicBool::new(true),
            dirty: AtomicBool::new(false),
            has_failed: AtomicBool::new(false),
            failed: Mutex::new(None),
        })
    }

    /// The first write or fsync failure of this file, if any (later segments are not written).
    pub(super) fn failure(&self) -> Option<String> {
        if !self.has_failed.load(Ordering::Acquire) {
            return None;
        }
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the file's first failure (logged once); later segments are not written.
    pub(super) fn fail(&self, reason: String) {
        let mut slot = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            tracing::error!(file = %self.path.display(), "recording failed: {reason}");
            *slot = Some(reason);
            self.has_failed.store(true, Ordering::Release);
        }
    }

    fn write(&self, bytes: &[u8]) {
        if self.failure().is_some() {
            return;
        }
        if let Err(e) = (&self.file).write_all(bytes) {
            self.fail(format!("cannot write {}: {e}", self.path.display()));
        }
    }

    /// Makes this file (and, the first time, its folder entry) durable on its own.
    fn sync(&self) {
        if self.failure().is_some() {
            return;
        }
        let synced = self
            .file
            .sync_data()
            .map_err(|e| format!("cannot fsync {}: {e}", self.path.display()))
            .and_then(|()| {
                if self.new_file.swap(false, Ordering::Relaxed) {
                    crate::secrets::sync_parent(&self.path).map_err(|e| e.to_string())
                } else {
                    Ok(())
                }
            });
        if let Err(reason) = synced {
            self.fail(reason);
        }
    }
}

enum Job {
    Append(Arc<Target>, Vec<u8>),
    /// Reply once everything queued before is written and the file is durable.
    Sync(Arc<Target>, mpsc::Sender<()>),
}

fn lanes() -> &'static Result<Vec<SyncSender<Job>>, String> {
    static LANES: OnceLock<Result<Vec<SyncSender<Job>>, String>> = OnceLock::new();
    LANES.get_or_init(|| {
        (0..THREADS)
            .map(|i| {
                let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
                std::thread::Builder::new()
                    .name(format!("callseal-disk-{i}"))
                    .spawn(move || run(rx))
                    .map(|_| tx)
                    .map_err(|e| format!("cannot start a disk thread: {e}"))
            })
            .collect()
    })
}

/// How often a disk thread with a round pending looks for new segments: what a segment may
/// wait before it is written.
const POLL: Duration = Duration::from_millis(20);

/// How much nicer than the rest of the gateway the disk threads run: the packet path must win
/// the core when many segments are written at once.
const NICER: i32 = 10;

fn run(rx: Receiver<Job>) {
    // Linux nice values are per thread: this lowers only the disk thread's priority.
    if let Ok(current) = rustix::process::getpriority_process(None) {
        let _ = rustix::process::setpriority_process(None, (current + NICER).min(19));
    }
    let mut dirty: Vec<Arc<Target>> = Vec::new();
    let mut round_at: Option<Instant> = None;
    loop {
        // While a round is due the thread polls instead of blocking, so that handing over a
        // segment is a queue push, not also a wake-up of this thread (one per segment).
        let job = match rx.try_recv() {
            Ok(job) => Some(job),
            Err(TryRecvError::Empty) => match round_at {
                None => rx.recv().ok(),
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(POLL));
                    round_if_due(&mut dirty, &mut round_at);
                    continue;
                }
            },
            Err(TryRecvError::Disconnected) => None,
        };
        match job {
            Some(Job::Append(target, bytes)) => {
                target.write(&bytes);
                pool::give(bytes);
                if !target.dirty.swap(true, Ordering::Relaxed) {
                    dirty.push(target);
                }
                round_at.get_or_insert_with(|| Instant::now() + SYNC_INTERVAL);
            }
            Some(Job::Sync(target, done)) => {
                target.sync();
                let _ = done.send(());
            }
            None => {
                // Every sender is gone: make the last writes durable and stop.
                round(&mut dirty, syncfs);
                return;
            }
        }
        round_if_due(&mut dirty, &mut round_at);
    }
}

/// Hands the files written since the last round to the sync thread if the round is due. The
/// sync runs beside the writes: a `syncfs` that takes a while does not hold segments queued
/// (in memory) behind it.
fn round_if_due(dirty: &mut Vec<Arc<Target>>, round_at: &mut Option<Instant>) {
    if round_at.is_some_and(|at| at <= Instant::now()) {
        for t in dirty.iter() {
            t.dirty.store(false, Ordering::Relaxed);
        }
        let batch = std::mem::take(dirty);
        // Without a sync thread, the round runs here.
        let unsent = match syncer() {
            Ok(tx) => tx.send(batch).err().map(|e| e.0),
            Err(_) => Some(batch),
        };
        if let Some(mut batch) = unsent {
            round(&mut batch, syncfs);
        }
        *round_at = None;
    }
}

/// The sync thread: runs the rounds the disk threads hand it, merging those that queued up.
fn syncer() -> Result<&'static mpsc::Sender<Vec<Arc<Target>>>, &'static String> {
    static SYNCER: OnceLock<Result<mpsc::Sender<Vec<Arc<Target>>>, String>> = OnceLock::new();
    SYNCER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Vec<Arc<Target>>>();
            std::thread::Builder::new()
                .name("callseal-sync".into())
                .spawn(move || {
                    if let Ok(current) = rustix::process::getpriority_process(None) {
                        let _ =
                            rustix::process::setpriority_process(None, (current + NICER).min(19));
                    }
                    while let Ok(mut batch) = rx.recv() {
                        while let Ok(more) = rx.try_recv() {
                            batch.extend(more);
                        }
                        round(&mut batch, syncfs);
                    }
                })
                .map(|_| tx)
                .map_err(|e| format!("cannot start the sync thread: {e}"))
        })
        .as_ref()
}

fn syncfs(file: &File) -> std::io::Result<()> {
    rustix::fs::syncfs(file).map_err(std::io::Error::from)
}

/// Makes every file written since the last round durable: one `syncfs` per file system (which
/// also covers new files' folder entries); where that fails, each file on its own, so that
/// each failure is reported for its file and the others go on.
fn round(dirty: &mut Vec<Arc<Target>>, syncfs: impl Fn(&File) -> std::io::Result<()>) {
    // Group by file system; a file handed over by two rounds that queued up counts once.
    dirty.sort_by_key(|t| (t.device, Arc::as_ptr(t) as usize));
    dirty.dedup_by(|a, b| Arc::ptr_eq(a, b));
    for group in dirty.chunk_by(|a, b| a.device == b.device) {
        let Some(first) = group.iter().find(|t| t.failure().is_none()) else {
            continue;
        };
        match syncfs(&first.file) {
            Ok(()) => {
                for t in group {
                    t.new_file.store(false, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::warn!(
                    folder = %first.path.parent().unwrap_or(&first.path).display(),
                    "syncfs failed ({e}); syncing each recording on its own"
                );
                for t in group {
                    t.sync();
                }
            }
        }
    }
    dirty.clear();
}

fn submit(lane: usize, job: Job) -> Result<(), String> {
    let lanes = lanes().as_ref().map_err(Clone::clone)?;
    let tx = lanes
        .get(lane)
        .ok_or_else(|| "no disk thread for this file".to_owned())?;
    match tx.try_send(job) {
        Ok(()) => Ok(()),
        // The disk is behind by QUEUE segments: wait for it rather than lose audio.
        Err(TrySendError::Full(job)) => tx
            .send(job)
            .map_err(|_| "the disk thread stopped".to_owned()),
        Err(TrySendError::Disconnected(_)) => Err("the disk thread stopped".to_owned()),
    }
}

/// Hands sealed bytes to the file's disk thread (nothing to do for none). The buffer goes back
/// to the pool once written.
pub(super) fn append(target: &Arc<Target>, bytes: Vec<u8>) -> Result<(), String> {
    if bytes.is_empty() {
        pool::give(bytes);
        return Ok(());
    }
    submit(target.lane, Job::Append(target.clone(), bytes))
}

/// Returns once everything handed to the file's thread before this call has been written and
/// the file `fdatasync`ed (the first time also its folder), or fails after `limit`.
pub(super) fn barrier(target: &Arc<Target>, limit: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    submit(target.lane, Job::Sync(target.clone(), tx))?;
    rx.recv_timeout(limit).map_err(|_| {
        format!(
            "{} was not written within {} s; the disk is too slow or stuck",
            target.path.display(),
            limit.as_secs()
        )
    })
}

/// Reused segment buffers: a recording takes one when it seals a segment and the disk thread
/// gives it back once written, so sealing allocates nothing in the steady state. Ciphertext
/// only, so nothing to wipe.
pub(super) mod pool {
    use std::sync::Mutex;

    /// Buffers kept for reuse: enough for the segments of 1000 calls sealed within ~50 ms.
    const IDLE: usize = 64;
    /// A new buffer's capacity: a whole segment of the gateway's size limit.
    /// (Plaintext and ciphertext have the same length; a segment adds a 4-byte prefix and a
    /// 16-byte tag.)
    pub(in crate::recorder) const CAPACITY: usize = super::super::SEGMENT_BYTES + 4 + 16;

    static IDLE_BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    /// An empty buffer of at least [`CAPACITY`].
    pub(in crate::recorder) fn take() -> Vec<u8> {
        IDLE_BUFFERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CAPACITY))
    }

    /// Keeps `buf` for reuse, or frees it if enough are idle (or it grew past a segment).
    pub(in crate::recorder) fn give(mut buf: Vec<u8>) {
        if buf.capacity() < CAPACITY || buf.capacity() > 2 * CAPACITY {
            return;
        }
        buf.clear();
        let mut idle = IDLE_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE {
            idle.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_target(key: u8) -> (Arc<Target>, std::io::PipeReader) {
        // A pipe takes writes but cannot be fsynced (EINVAL): a disk whose flush fails.
        let (reader, writer) = std::io::pipe().unwrap();
        let file = File::from(std::os::fd::OwnedFd::from(writer));
        (Target::new(file, PathBuf::from("pipe"), [key; 16]), reader)
    }

    #[test]
    fn appends_land_in_order_and_a_barrier_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let t = Target::new(file, path.clone(), [3; 16]);
        let mut expected = Vec::new();
        for i in 0..500u32 {
            let chunk = i.to_be_bytes().repeat(50);
            expected.extend_from_slice(&chunk);
            append(&t, chunk).unwrap();
        }
        barrier(&t, Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert_eq!(t.failure(), None);
    }

    #[test]
    fn segments_are_written_at_once_and_made_durable_within_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g");
        let t = Target::new(File::create(&path).unwrap(), path.clone(), [5; 16]);
        append(&t, b"segment one".to_vec()).unwrap();
        append(&t, b" and two".to_vec()).unwrap();
        // Written (visible to a reader after a crash of the process) well before any round.
        let until = Instant::now() + Duration::from_secs(5);
        while std::fs::read(&path).unwrap() != b"segment one and two" {
            assert!(Instant::now() < until, "not written");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Then the round makes the file and its name durable: due after the interval, done once
        // the syncfs returns (which, with a busy file system, e.g. a build beside the test, can
        // take seconds: it writes back everything dirty on it).
        let until = Instant::now() + SYNC_INTERVAL * 60;
        while t.new_file.load(Ordering::Relaxed) {
            assert!(Instant::now() < until, "no round");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(t.failure(), None);
    }

    #[test]
    fn a_write_failure_is_kept_and_later_segments_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro");
        std::fs::write(&path, b"header").unwrap();
        // Opened for reading only: every write fails, as on a disk that went read-only.
        let t = Target::new(File::open(&path).unwrap(), path.clone(), [4; 16]);
        append(&t, b"segment".to_vec()).unwrap();
        barrier(&t, Duration::from_secs(10)).unwrap();
        let reason = t.failure().expect("the failure is reported");
        assert!(reason.contains("cannot write"), "{reason}");
        assert!(reason.contains("ro"), "names the file: {reason}");
        assert_eq!(std::fs::read(&path).unwrap(), b"header");
    }

    #[test]
    fn a_failed_round_is_reported_for_the_file_that_cannot_sync_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("good");
        let good = Target::new(File::create(&path).unwrap(), path.clone(), [6; 16]);
        let (bad, _reader) = pipe_target(6);
        let mut dirty = Vec::new();
        for t in [&good, &bad] {
            t.write(b"sealed");
            t.dirty.store(true, Ordering::Relaxed);
            dirty.push(t.clone());
        }
        // Every syncfs of the round fails (as with EIO from write-back).
        let failing = |_: &File| Err(std::io::Error::other("simulated I/O error"));
        round(&mut dirty, failing);
        assert!(dirty.is_empty());
        assert_eq!(good.failure(), None, "the healthy file goes on");
        assert!(
            !good.new_file.load(Ordering::Relaxed),
            "its folder was synced"
        );
        let reason = bad.failure().expect("the failing file is reported");
        assert!(reason.contains("cannot fsync pipe"), "{reason}");
        assert_eq!(std::fs::read(&path).unwrap(), b"sealed");
    }

    #[test]
    fn the_end_of_a_recording_is_synced_on_its_own_and_a_failure_reported() {
        let (bad, mut reader) = pipe_target(7);
        append(&bad, b"last segment".to_vec()).unwrap();
        barrier(&bad, Duration::from_secs(10)).unwrap();
        let reason = bad.failure().expect("fdatasync of a pipe fails");
        assert!(reason.contains("cannot fsync"), "{reason}");
        let mut got = [0u8; 12];
        std::io::Read::read_exact(&mut reader, &mut got).unwrap();
        assert_eq!(&got, b"last segment", "written before the sync");
        // A later segment of the failed file is not written: once the last handle on the
        // pipe is gone (the disk thread's after its next round), it reads to its end empty.
        append(&bad, b"more".to_vec()).unwrap();
        barrier(&bad, Duration::from_secs(10)).unwrap();
        drop(bad);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut rest).unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }

    #[test]
    fn the_pool_hands_out_empty_segment_sized_buffers_and_keeps_only_those() {
        let mut buf = pool::take();
        assert!(buf.is_empty() && buf.capacity() >= pool::CAPACITY);
        buf.extend_from_slice(b"ciphertext");
        pool::give(buf);
        for _ in 0..100 {
            let b = pool::take();
            assert!(b.is_empty() && b.capacity() >= pool::CAPACITY);
        }
        // A small buffer (e.g. one that held only a header) is not kept.
        pool::give(Vec::with_capacity(16));
        assert!(pool::take().capacity() >= pool::CAPACITY);
    }
}
