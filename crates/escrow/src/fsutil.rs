//! Durable file replacement: temp file + fsync + atomic rename + directory fsync.
//!
//! A reader (or a restart after power loss) sees either the old file or the new one, never a
//! torn mix: the data is on disk before the rename, and the rename is on disk before we return.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::EscrowError;

/// Replaces `path` with `bytes`, mode 0600 on Unix.
pub(crate) fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<(), EscrowError> {
    write_atomic(path, bytes, 0o600)
}

/// Replaces `path` with `bytes`, mode 0644 on Unix (public data: certificates, public keys).
pub(crate) fn write_atomic_public(path: &Path, bytes: &[u8]) -> Result<(), EscrowError> {
    write_atomic(path, bytes, 0o644)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EscrowError> {
    let err = |reason: String| EscrowError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let dir = path
        .parent()
        .ok_or_else(|| err("has no parent directory".into()))?;
    let name = path
        .file_name()
        .ok_or_else(|| err("has no file name".into()))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    // A stale temp file from an earlier crash holds at most an unpublished key: remove it.
    let _ = fs::remove_file(&tmp);
    {
        let mut f = open_new(&tmp, mode).map_err(|e| err(format!("create temp file: {e}")))?;
        f.write_all(bytes).map_err(|e| err(format!("write: {e}")))?;
        f.sync_all().map_err(|e| err(format!("fsync: {e}")))?;
    }
    fs::rename(&tmp, path).map_err(|e| err(format!("rename: {e}")))?;
    sync_dir(dir).map_err(|e| err(format!("fsync directory: {e}")))?;
    Ok(())
}

/// fsyncs a directory so that a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a directory (and parents) with mode 0700 on Unix.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), EscrowError> {
    let err = |e: std::io::Error| EscrowError::KeyFile {
        path: dir.display().to_string(),
        reason: format!("create directory: {e}"),
    };
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(err)
}

fn open_new(path: &Path, mode: u32) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    o.open(path)
}

/// Reads a private file, refusing one that others can read (Unix).
pub(crate) fn read_private(path: &Path) -> Result<Vec<u8>, EscrowError> {
    let err = |reason: String| EscrowError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|e| err(format!("stat: {e}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "mode is {mode:o}; it must not be readable by group or others (chmod 600)"
            )));
        }
    }
    fs::read(path).map_err(|e| err(format!("read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_atomic_private(&p, b"one").unwrap();
        write_atomic_private(&p, b"two").unwrap();
        assert_eq!(read_private(&p).unwrap(), b"two");
        assert!(!dir.path().join("k.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(read_private(&p).is_err());
        }
    }
}
