//! Scans folders for byte strings that must never reach disk (caller numbers, plaintext audio).

use std::path::{Path, PathBuf};

/// Every file under `roots` (recursively, symlinks not followed) whose bytes contain any of
/// `needles`, with the needle's index. Unreadable files are reported too (index usize::MAX),
/// so a check cannot pass by not looking.
pub fn files_containing(roots: &[&Path], needles: &[&[u8]]) -> Vec<(PathBuf, usize)> {
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
        } else if meta.is_file() {
            match std::fs::read(&p) {
                Ok(bytes) => {
                    for (i, n) in needles.iter().enumerate() {
                        if !n.is_empty() && bytes.windows(n.len()).any(|w| w == *n) {
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
    }
}
