//! Finishing and discarding recordings, off the media threads.
//!
//! `Recorder::finish` waits until the file's last segment is durable and `discard` removes the
//! file and syncs its folder: milliseconds of disk time that, on a media thread, would hold up
//! every other call's packets. One closing thread per engine takes them instead, in order; a
//! `StopRecording`'s `done` is answered from there, once the file is closed.

use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::recorder::Recorder;

/// A recording to close, and who waits for it.
pub(super) struct Closing {
    pub recorder: Recorder,
    /// Remove the file instead of finishing it (withdrawn consent).
    pub discard: bool,
    pub done: Option<oneshot::Sender<()>>,
}

/// The closing thread's queue.
pub(super) struct Closer {
    tx: Mutex<Option<Sender<Closing>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Closer {
    pub(super) fn start() -> std::io::Result<Self> {
        let (tx, rx) = channel::<Closing>();
        let thread = std::thread::Builder::new()
            .name("media-close".into())
            .spawn(move || {
                for job in rx {
                    close_now(&job.recorder, job.discard);
                    if let Some(done) = job.done {
                        let _ = done.send(());
                    }
                }
            })?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a recording to close; closes it on the calling thread if the closer has stopped.
    pub(super) fn close(&self, job: Closing) {
        let refused = {
            let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            match tx.as_ref() {
                Some(tx) => tx.send(job).err().map(|e| e.0),
                None => Some(job),
            }
        };
        if let Some(job) = refused {
            close_now(&job.recorder, job.discard);
            if let Some(done) = job.done {
                let _ = done.send(());
            }
        }
    }

    /// Closes what is queued, then ends the thread.
    pub(super) fn stop(&self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::error!("the recording closing thread panicked");
        }
    }
}

fn close_now(rec: &Recorder, discard: bool) {
    let result = if discard { rec.discard() } else { rec.finish() };
    if let Err(e) = result {
        tracing::error!(recording = %rec.id(), "closing the recording failed: {e}");
    }
}
