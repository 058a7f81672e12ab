//! Scans folders for byte strings that must never reach disk (caller numbers, plaintext audio).

use std::path::{Path, PathBuf};

use std::time::SystemTime;

/// Files larger than this are skipped (no gateway writes such a file in a test).
const MAX_FILE: u64 = 256 * 1024 * 1024;

/// Every file under `roots` (recursively, symlinks not followed) whose bytes contain any of
/// `needles`, with the needle's index. Unreadable files are reported too (index usize::MAX),
/// so a check cannot pass by not looking.
pub fn files_containing(roots: &[&Path], needles: &[&[u8]]) -> Vec<(PathBuf, usize)> {
    files_containing_since(roots, needles, None)
}

/// Same, looking only at files modified at or after `since` (for shared folders such as the
/// system temporary folder, where only what a test run wrote is of interest).
pub fn files_containing_since(
    roots: &[&Path],
    needles: &[&[u8]],
    since: Option<SystemTime>,
) -> Vec<(PathBuf, usize)> {
    let finders: Vec<_> = needles.iter().map(memchr::memmem::Finder::new).collect();
    let mut hits = Vec::new();
    let mut stack: Vec<PathBuf> = roots.iter().map(|p| p.to_path_buf()).collect();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else if meta.is_file() && meta.len() <= MAX_FILE {
            if let (Some(since), Ok(modified)) = (since, meta.modified())
                && modified < since
            {
                continue;
            }
            match std::fs::read(&p) {
                Ok(bytes) => {
                    for (i, f) in finders.iter().enumerate() {
                        if !f.needle().is_empty() && f.find(&bytes).is_some() {
                            hits.push((p.clone(), i));
                        }
                    }
                }
                Err(_) => hits.push((p.clone(), usize::MAX)),
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles_in_nested_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x"), b"..+15550100..").unwrap();
        std::fs::write(dir.path().join("y"), b"nothing").unwrap();
        let hits = files_containing(&[dir.path()], &[b"+15550100", b"zzz"]);
        assert_eq!(hits, vec![(dir.path().join("a/b/x"), 0)]);
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(files_containing_since(&[dir.path()], &[b"+15550100"], Some(later)).is_empty());
    }
}
