//! The keyring: the one small secret that must truly be destroyed at every shred.
//!
//! Epoch secrets and per-recording wrapped keys are stored in the database sealed under a
//! 32-byte *table key* (ChaCha20-Poly1305, random 96-bit nonce, AAD = row identity so a sealed
//! value cannot be moved to another row). The table key lives only in the keyring file (0600),
//! never in the database. Every shred replaces it: a database backup taken before the shred holds
//! only ciphertext under a key that no longer exists.
//!
//! Crash-safe rotation (generation g → g+1):
//! 1. [`Keyring::stage_next`]: the file is rewritten holding *both* keys (g current, g+1 staged).
//! 2. The caller re-seals every live row under g+1 and records generation g+1 in the database,
//!    in one transaction, then checkpoints the WAL.
//! 3. [`Keyring::commit_next`]: the file is rewritten holding only g+1; key g is zeroized.
//!
//! After a crash the database's recorded generation says which step finished: equal to the
//! staged generation → finish step 3; equal to the current one → [`Keyring::abort_next`]
//! (the transaction rolled back, the staged key protects nothing).

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::EscrowError;
use crate::fsutil;

const MAGIC: &[u8; 4] = b"CSKR";
const FILE_VERSION: u8 = 1;
const ROW_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const AAD_PREFIX: &[u8] = b"callseal/escrow/row/v1\0";

/// Which row (and column) a sealed value belongs to; bound into the AEAD's associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowSlot {
    /// The X25519 secret of an epoch.
    EpochSecret(u32),
    /// A recording's wrapped key as deposited (wrapped to its epoch).
    RecordingKey([u8; 16]),
    /// A recording's wrapped key re-wrapped under the legal-hold key.
    HoldKey([u8; 16]),
    /// A named escrow-wide secret (e.g. the legal-hold key).
    Named(String),
}

impl RowSlot {
    fn aad(&self) -> Vec<u8> {
        let mut aad = AAD_PREFIX.to_vec();
        match self {
            RowSlot::EpochSecret(e) => {
                aad.extend_from_slice(b"epoch-secret\0");
                aad.extend_from_slice(&e.to_be_bytes());
            }
            RowSlot::RecordingKey(id) => {
                aad.extend_from_slice(b"recording-key\0");
                aad.extend_from_slice(id);
            }
            RowSlot::HoldKey(id) => {
                aad.extend_from_slice(b"hold-key\0");
                aad.extend_from_slice(id);
            }
            RowSlot::Named(n) => {
                aad.extend_from_slice(b"named\0");
                aad.extend_from_slice(n.as_bytes());
            }
        }
        aad
    }
}

/// One generation of the table key. No Debug/Clone; zeroized on drop.
struct TableKey {
    generation: u64,
    key: Zeroizing<[u8; 32]>,
}

impl TableKey {
    fn generate(generation: u64) -> Result<Self, EscrowError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| EscrowError::Crypto {
            what: "OS randomness for a table key",
        })?;
        Ok(TableKey { generation, key })
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&(*self.key).into())
    }

    fn seal(&self, slot: &RowSlot, plaintext: &[u8]) -> Result<Vec<u8>, EscrowError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| EscrowError::Crypto {
            what: "OS randomness for a nonce",
        })?;
        let aad = slot.aad();
        let ct = self
            .cipher()
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| EscrowError::Crypto {
                what: "sealing a row",
            })?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(ROW_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open(&self, slot: &RowSlot, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, EscrowError> {
        let bad = EscrowError::Crypto {
            what: "opening a sealed row",
        };
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed.first() != Some(&ROW_VERSION) {
            return Err(bad);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| EscrowError::Crypto {
            what: "nonce length",
        })?;
        let aad = slot.aad();
        self.cipher()
            .decrypt(&nonce.into(), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| bad)
    }
}

/// The keyring file and the table key(s) it holds.
pub struct Keyring {
    path: PathBuf,
    current: TableKey,
    staged: Option<TableKey>,
}

impl Keyring {
    /// Creates a new keyring (generation 1) at `path`; fails if it exists.
    pub fn create(path: &Path) -> Result<Self, EscrowError> {
        if path.exists() {
            return Err(EscrowError::KeyFile {
                path: path.display().to_string(),
                reason: "already exists; refusing to overwrite a keyring".into(),
            });
        }
        let kr = Keyring {
            path: path.to_owned(),
            current: TableKey::generate(1)?,
            staged: None,
        };
        kr.persist()?;
        Ok(kr)
    }

    /// Opens an existing keyring file.
    pub fn open(path: &Path) -> Result<Self, EscrowError> {
        let bytes = Zeroizing::new(fsutil::read_private(path)?);
        let err = |reason: &str| EscrowError::KeyFile {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        let (body, sum) = bytes
            .len()
            .checked_sub(32)
            .map(|n| bytes.split_at(n))
            .ok_or_else(|| err("truncated"))?;
        if Sha256::digest(body).as_slice() != sum {
            return Err(err("checksum mismatch (corrupt keyring)"));
        }
        if body.get(..4) != Some(MAGIC.as_slice()) || body.get(4) != Some(&FILE_VERSION) {
            return Err(err("not a callseal keyring (bad magic or version)"));
        }
        let staged_flag = *body.get(5).ok_or_else(|| err("truncated"))?;
        let want = 6 + 8 + 32 + if staged_flag == 1 { 32 } else { 0 };
        if staged_flag > 1 || body.len() != want {
            return Err(err("bad layout"));
        }
        let mut g = [0u8; 8];
        g.copy_from_slice(&body[6..14]);
        let generation = u64::from_be_bytes(g);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&body[14..46]);
        let current = TableKey { generation, key };
        let staged = if staged_flag == 1 {
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(&body[46..78]);
            Some(TableKey {
                generation: generation.wrapping_add(1),
                key: k,
            })
        } else {
            None
        };
        Ok(Keyring {
            path: path.to_owned(),
            current,
            staged,
        })
    }

    /// The generation of the table key rows are currently sealed under.
    pub fn generation(&self) -> u64 {
        self.current.generation
    }

    /// The generation of a staged (not yet committed) key, if a rotation is in progress.
    pub fn staged_generation(&self) -> Option<u64> {
        self.staged.as_ref().map(|k| k.generation)
    }

    /// Seals `plaintext` for `slot` under the current key.
    pub fn seal(&self, slot: &RowSlot, plaintext: &[u8]) -> Result<Vec<u8>, EscrowError> {
        self.current.seal(slot, plaintext)
    }

    /// Opens a value sealed under the current key.
    pub fn open_row(
        &self,
        slot: &RowSlot,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EscrowError> {
        self.current.open(slot, sealed)
    }

    /// Seals under the staged key (rows written during a rotation).
    pub fn seal_staged(&self, slot: &RowSlot, plaintext: &[u8]) -> Result<Vec<u8>, EscrowError> {
        self.staged_key()?.seal(slot, plaintext)
    }

    /// Re-seals a row from the current key to the staged key.
    pub fn reseal(&self, slot: &RowSlot, sealed: &[u8]) -> Result<Vec<u8>, EscrowError> {
        let plain = self.current.open(slot, sealed)?;
        self.staged_key()?.seal(slot, &plain)
    }

    /// Step 1 of a rotation: generate the next key and make the file hold both, durably.
    pub fn stage_next(&mut self) -> Result<(), EscrowError> {
        if self.staged.is_none() {
            self.staged = Some(TableKey::generate(self.current.generation.wrapping_add(1))?);
        }
        self.persist()
    }

    /// Step 3: the database now uses the staged key; drop the old one from the file and memory.
    pub fn commit_next(&mut self) -> Result<(), EscrowError> {
        let next = self.staged.take().ok_or_else(|| EscrowError::Internal {
            what: "commit of a keyring rotation that was never staged".into(),
        })?;
        // The old key is zeroized when `old` drops, after the file no longer holds it.
        let old = std::mem::replace(&mut self.current, next);
        let res = self.persist();
        if res.is_err() {
            // The file may still hold both keys; keep both in memory so recovery stays possible.
            self.staged = Some(std::mem::replace(&mut self.current, old));
            return res;
        }
        drop(old);
        Ok(())
    }

    /// Abandons a staged key (the database never switched to it).
    pub fn abort_next(&mut self) -> Result<(), EscrowError> {
        self.staged = None;
        self.persist()
    }

    fn staged_key(&self) -> Result<&TableKey, EscrowError> {
        self.staged.as_ref().ok_or_else(|| EscrowError::Internal {
            what: "no staged table key; stage_next must run first".into(),
        })
    }

    fn persist(&self) -> Result<(), EscrowError> {
        let mut buf = Zeroizing::new(Vec::with_capacity(110));
        buf.extend_from_slice(MAGIC);
        buf.push(FILE_VERSION);
        buf.push(u8::from(self.staged.is_some()));
        buf.extend_from_slice(&self.current.generation.to_be_bytes());
        buf.extend_from_slice(self.current.key.as_slice());
        if let Some(s) = &self.staged {
            buf.extend_from_slice(s.key.as_slice());
        }
        let sum = Sha256::digest(buf.as_slice());
        buf.extend_from_slice(&sum);
        fsutil::write_atomic_private(&self.path, &buf)
    }

    #[cfg(test)]
    pub(crate) fn current_key_bytes(&self) -> [u8; 32] {
        *self.current.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_binds_row_identity() {
        let dir = tempfile::tempdir().unwrap();
        let kr = Keyring::create(&dir.path().join("keyring")).unwrap();
        let sealed = kr.seal(&RowSlot::EpochSecret(7), b"secret").unwrap();
        assert_eq!(
            kr.open_row(&RowSlot::EpochSecret(7), &sealed)
                .unwrap()
                .as_slice(),
            b"secret"
        );
        assert!(kr.open_row(&RowSlot::EpochSecret(8), &sealed).is_err());
        assert!(
            kr.open_row(&RowSlot::RecordingKey([0; 16]), &sealed)
                .is_err()
        );
        let mut tampered = sealed.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert!(kr.open_row(&RowSlot::EpochSecret(7), &tampered).is_err());
    }

    #[test]
    fn rotation_survives_reopen_at_each_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let mut kr = Keyring::create(&path).unwrap();
        let old = kr.seal(&RowSlot::Named("x".into()), b"v").unwrap();
        kr.stage_next().unwrap();
        let reopened = Keyring::open(&path).unwrap();
        assert_eq!(reopened.generation(), 1);
        assert_eq!(reopened.staged_generation(), Some(2));
        let new = reopened.reseal(&RowSlot::Named("x".into()), &old).unwrap();
        let old_key = kr.current_key_bytes();
        kr.commit_next().unwrap();
        let reopened = Keyring::open(&path).unwrap();
        assert_eq!(
            (reopened.generation(), reopened.staged_generation()),
            (2, None)
        );
        assert_eq!(
            reopened
                .open_row(&RowSlot::Named("x".into()), &new)
                .unwrap()
                .as_slice(),
            b"v"
        );
        assert!(
            reopened
                .open_row(&RowSlot::Named("x".into()), &old)
                .is_err()
        );
        let file = std::fs::read(&path).unwrap();
        assert!(
            !file.windows(32).any(|w| w == old_key),
            "old table key left in the file"
        );
    }

    #[test]
    fn corrupt_keyring_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        Keyring::create(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 0xff;
        fsutil::write_atomic_private(&path, &bytes).unwrap();
        assert!(matches!(
            Keyring::open(&path),
            Err(EscrowError::KeyFile { .. })
        ));
    }
}
