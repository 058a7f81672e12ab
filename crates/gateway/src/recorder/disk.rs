//! The disk threads: sealed segments are written and fsynced here, off the packet path.
//!
//! An fsync takes from well under a millisecond to tens of milliseconds depending on the disk;
//! done inline it held up the media task's other packets (and, on two worker threads, other
//! calls'). A few dedicated threads take the ciphertext instead. Every file always goes to the
//! same thread, whose queue is FIFO, so a file's segments land in order; a full queue makes
//! the sender wait (back-pressure) rather than drop audio. Only sealed bytes ever pass here.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Disk threads (each handles every file routed to it, in order).
const THREADS: usize = 2;
/// Queued jobs per thread before senders wait: ~20 s of 1 s segments for 1000 calls.
const QUEUE: usize = 8192;

/// One recording file as the disk threads see it.
pub(super) struct Target {
    file: File,
    path: PathBuf,
    lane: usize,
    /// Set until the first write: the new file's folder is fsynced once after it.
    new_file: std::sync::atomic::AtomicBool,
    failed: Mutex<Option<String>>,
}

impl Target {
    /// `key` picks the thread (any stable bytes of the recording, e.g. its id).
    pub(super) fn new(file: File, path: PathBuf, key: [u8; 16]) -> std::sync::Arc<Self> {
        let lane = usize::from(key[0]) % THREADS;
        std::sync::Arc::new(Self {
            file,
            path,
            lane,
            new_file: std::sync::atomic::AtomicBool::new(true),
            failed: Mutex::new(None),
        })
    }

    /// The first write or fsync failure of this file, if any (later segments are not written).
    pub(super) fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fail(&self, reason: String) {
        let mut slot = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            tracing::error!(file = %self.path.display(), "recording write failed: {reason}");
            *slot = Some(reason);
        }
    }

    fn write(&self, bytes: &[u8]) {
        if self.failure().is_some() {
            return;
        }
        let written = (&self.file)
            .write_all(bytes)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(|e| format!("cannot fsync {}: {e}", self.path.display()))
            })
            .and_then(|()| {
                if self
                    .new_file
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    crate::secrets::sync_parent(&self.path).map_err(|e| e.to_string())
                } else {
                    Ok(())
                }
            });
        if let Err(reason) = written {
            self.fail(reason);
        }
    }
}

enum Job {
    Append(std::sync::Arc<Target>, Vec<u8>),
    Barrier(mpsc::Sender<()>),
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

/// How much nicer than the rest of the gateway the disk threads run: the packet path must win
/// the core when many segments are written and fsynced at once.
const NICER: i32 = 10;

fn run(rx: Receiver<Job>) {
    // Linux nice values are per thread: this lowers only the disk thread's priority.
    if let Ok(current) = rustix::process::getpriority_process(None) {
        let _ = rustix::process::setpriority_process(None, (current + NICER).min(19));
    }
    while let Ok(job) = rx.recv() {
        match job {
            Job::Append(target, bytes) => target.write(&bytes),
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
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

/// Hands sealed bytes to the file's disk thread (nothing to do for none).
pub(super) fn append(target: &std::sync::Arc<Target>, bytes: Vec<u8>) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    submit(target.lane, Job::Append(target.clone(), bytes))
}

/// Returns once everything handed to the file's thread before this call has been written and
/// fsynced, or fails after `limit`.
pub(super) fn barrier(target: &Target, limit: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    submit(target.lane, Job::Barrier(tx))?;
    rx.recv_timeout(limit).map_err(|_| {
        format!(
            "{} was not written within {} s; the disk is too slow or stuck",
            target.path.display(),
            limit.as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
