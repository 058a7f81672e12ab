//! Where decrypted audio may exist: only at the path the operator named.
//!
//! A WAV is plaintext. It is written to a fresh temporary file (mode 0600, `create_new`) in the
//! destination folder, and renamed to the requested name only after the whole recording was
//! verified and written — with `RENAME_NOREPLACE`, so an existing file is never replaced, even
//! one created meanwhile. On any error, on drop, or on Ctrl-C the temporary file is removed.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::CliError;

/// Temporary plaintext files alive in this process, removed by [`remove_all_pending`] on Ctrl-C.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A plaintext output being written.
pub struct PlainOutput {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl PlainOutput {
    /// Checks the destination and opens the temporary file beside it.
    pub fn create(dest: &Path) -> Result<Self, CliError> {
        if fs::symlink_metadata(dest).is_ok() {
            return Err(CliError::OutputExists {
                path: dest.to_owned(),
            });
        }
        let name = dest
            .file_name()
            .ok_or_else(|| CliError::OutputNotWritable {
                path: dest.to_owned(),
                reason: "the path does not name a file".into(),
            })?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(CliError::OutputNotWritable {
                path: dest.to_owned(),
                reason: format!("the folder {} does not exist", dir.display()),
            });
        }
        let mut last_err = None;
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(
                ".{}.{}-{n}.callseal-partial",
                name.to_string_lossy(),
                std::process::id()
            ));
            match OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(file) => {
                    register(&tmp);
                    return Ok(PlainOutput {
                        tmp,
                        dest: dest.to_owned(),
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => {
                    return Err(CliError::OutputNotWritable {
                        path: dest.to_owned(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(CliError::OutputNotWritable {
            path: dest.to_owned(),
            reason: last_err.map_or_else(|| "no free temporary name".into(), |e| e.to_string()),
        })
    }

    /// The open temporary file (seekable, as hound needs).
    pub fn file(&mut self) -> Result<&mut File, CliError> {
        self.file
            .as_mut()
            .ok_or_else(|| CliError::OutputNotWritable {
                path: self.dest.clone(),
                reason: "the output was already closed".into(),
            })
    }

    /// Flushes to disk and gives the file its final name; fails if that name exists by now.
    pub fn commit(mut self) -> Result<PathBuf, CliError> {
        let not_writable = |e: std::io::Error, dest: &Path| CliError::OutputNotWritable {
            path: dest.to_owned(),
            reason: e.to_string(),
        };
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(|e| not_writable(e, &self.dest))?;
        }
        rename_noreplace(&self.tmp, &self.dest).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CliError::OutputExists {
                path: self.dest.clone(),
            },
            _ => not_writable(e, &self.dest),
        })?;
        unregister(&self.tmp);
        // The temporary name is gone; Drop must not remove the committed file.
        self.tmp = PathBuf::new();
        Ok(self.dest.clone())
    }
}

impl Drop for PlainOutput {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file = None;
            let _ = fs::remove_file(&self.tmp);
            unregister(&self.tmp);
        }
    }
}

/// Removes every temporary plaintext file of this process (called on Ctrl-C/SIGTERM).
pub fn remove_all_pending() {
    if let Ok(mut v) = PENDING.lock() {
        for p in v.drain(..) {
            let _ = fs::remove_file(p);
        }
    }
}

fn register(p: &Path) {
    if let Ok(mut v) = PENDING.lock() {
        v.push(p.to_owned());
    }
}

fn unregister(p: &Path) {
    if let Ok(mut v) = PENDING.lock() {
        v.retain(|q| q != p);
    }
}

/// `renameat2(RENAME_NOREPLACE)`; where the file system lacks it, a hard link (which also fails
/// on an existing name) followed by removing the temporary name.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn committed_file_is_0600_and_no_temporary_remains() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.wav");
        let mut out = PlainOutput::create(&dest).unwrap();
        out.file().unwrap().write_all(b"RIFF").unwrap();
        assert_eq!(entries(dir.path()).len(), 1);
        out.commit().unwrap();
        assert_eq!(entries(dir.path()), vec!["out.wav".to_owned()]);
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read(&dest).unwrap(), b"RIFF");
    }

    #[test]
    fn dropped_output_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = PlainOutput::create(&dir.path().join("out.wav")).unwrap();
        out.file().unwrap().write_all(b"secret audio").unwrap();
        drop(out);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn existing_destination_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.wav");
        fs::write(&dest, b"old").unwrap();
        assert!(matches!(
            PlainOutput::create(&dest),
            Err(CliError::OutputExists { .. })
        ));
        // A file that appears while the export runs is not replaced either.
        fs::remove_file(&dest).unwrap();
        let mut out = PlainOutput::create(&dest).unwrap();
        out.file().unwrap().write_all(b"new").unwrap();
        fs::write(&dest, b"raced").unwrap();
        assert!(matches!(out.commit(), Err(CliError::OutputExists { .. })));
        assert_eq!(fs::read(&dest).unwrap(), b"raced");
        assert_eq!(entries(dir.path()), vec!["out.wav".to_owned()]);
    }

    #[test]
    fn missing_folder_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let err = PlainOutput::create(&dir.path().join("nope/out.wav"))
            .err()
            .unwrap();
        assert!(matches!(err, CliError::OutputNotWritable { .. }), "{err}");
    }
}
