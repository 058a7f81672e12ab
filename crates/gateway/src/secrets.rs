//! The gateway's own secrets: the caller-number pepper and the Ed25519 key that signs
//! consent evidence. Both live in `<data_dir>/gateway/` as 0600 files created on first
//! run; neither type can be printed, cloned or serialised, and both are zeroized on drop.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::{Zeroize, Zeroizing};

use crate::error::GatewayError;

const PEPPER_FILE: &str = "pepper";
const SIGNING_KEY_FILE: &str = "signing.key";

/// 32 secret bytes keying the caller pseudonym (HMAC-SHA256 of the number).
pub struct Pepper(Zeroizing<[u8; 32]>);

impl Pepper {
    /// Loads `<dir>/pepper`, creating it (0600, random) on first run.
    pub fn open_or_create(dir: &Path) -> Result<Self, GatewayError> {
        let bytes = load_or_create_secret(&dir.join(PEPPER_FILE))?;
        Ok(Self(bytes))
    }

    /// From known bytes (tests and the call core's pseudonym function).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes, for the keyed hash only.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The gateway's Ed25519 signing key (consent evidence, deposits).
pub struct GatewayKey(SigningKey);

impl GatewayKey {
    /// Loads `<dir>/signing.key`, creating it (0600, random) on first run.
    pub fn open_or_create(dir: &Path) -> Result<Self, GatewayError> {
        let mut seed = load_or_create_secret(&dir.join(SIGNING_KEY_FILE))?;
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        Ok(Self(key))
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// Ed25519 signature over `message` (RFC 8032, deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// A second handle on the same key for another task (explicit, not `Clone`).
    pub fn duplicate(&self) -> Self {
        Self(SigningKey::from_bytes(&self.0.to_bytes()))
    }
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn create_private_dir(dir: &Path) -> Result<(), GatewayError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| GatewayError::storage("create folder", dir, e))
}

/// Turns off core dumps for this process: a dump would hold data keys and audio.
/// RLIMIT_CORE = 0 stops the kernel writing one; PR_SET_DUMPABLE = 0 also stops ptrace
/// attaches by other users and core_pattern pipes.
pub fn disable_core_dumps() -> Result<(), GatewayError> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| GatewayError::System {
        call: "setrlimit(RLIMIT_CORE)",
        source: e.into(),
    })?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| GatewayError::System {
            call: "prctl(PR_SET_DUMPABLE)",
            source: e.into(),
        })?;
    Ok(())
}

/// True when core dumps are off (for `callseal doctor` and the startup log).
pub fn core_dumps_disabled() -> bool {
    rustix::process::getrlimit(rustix::process::Resource::Core).current == Some(0)
}

fn load_or_create_secret(path: &Path) -> Result<Zeroizing<[u8; 32]>, GatewayError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let mut secret = Zeroizing::new([0u8; 32]);
            getrandom::fill(secret.as_mut()).map_err(|e| GatewayError::Random(e.to_string()))?;
            file.write_all(secret.as_ref())
                .map_err(|e| GatewayError::storage("write", path, e))?;
            file.sync_all()
                .map_err(|e| GatewayError::storage("fsync", path, e))?;
            sync_parent(path)?;
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret(path),
        Err(e) => Err(GatewayError::storage("create", path, e)),
    }
}

fn read_secret(path: &Path) -> Result<Zeroizing<[u8; 32]>, GatewayError> {
    let file = File::open(path).map_err(|e| GatewayError::storage("open", path, e))?;
    let mode = file
        .metadata()
        .map_err(|e| GatewayError::storage("stat", path, e))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(GatewayError::InsecureMode {
            path: path.to_owned(),
            mode,
        });
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(33));
    (&file)
        .take(33)
        .read_to_end(&mut buf)
        .map_err(|e| GatewayError::storage("read", path, e))?;
    let mut secret = Zeroizing::new([0u8; 32]);
    if buf.len() != 32 {
        return Err(GatewayError::SecretFileDamaged {
            path: path.to_owned(),
            reason: format!("holds {} bytes, not 32", buf.len()),
        });
    }
    secret.copy_from_slice(&buf);
    Ok(secret)
}

/// fsync the folder so a just-created file survives a power cut.
pub(crate) fn sync_parent(path: &Path) -> Result<(), GatewayError> {
    let dir: PathBuf = path
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."));
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| GatewayError::storage("fsync folder", &dir, e))
}

/// Mode of a file, for tests.
#[cfg(test)]
pub(crate) fn file_mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn pepper_is_created_0600_then_reloaded_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let gw = dir.path().join("gateway");
        let a = Pepper::open_or_create(&gw).unwrap();
        assert_eq!(file_mode(&gw.join("pepper")), Some(0o600));
        assert_eq!(file_mode(&gw), Some(0o700));
        let b = Pepper::open_or_create(&gw).unwrap();
        assert_eq!(a.expose_bytes(), b.expose_bytes());
        assert_ne!(a.expose_bytes(), &[0u8; 32]);
    }

    #[test]
    fn world_readable_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Pepper::open_or_create(dir.path()).unwrap();
        let path = dir.path().join("pepper");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Pepper::open_or_create(dir.path()).err().unwrap();
        assert!(
            matches!(err, GatewayError::InsecureMode { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn truncated_secret_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        fs::write(&path, [7u8; 5]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = GatewayKey::open_or_create(dir.path()).err().unwrap();
        assert!(
            matches!(err, GatewayError::SecretFileDamaged { .. }),
            "{err}"
        );
        assert_eq!(
            fs::read(&path).unwrap(),
            vec![7u8; 5],
            "a damaged secret must never be overwritten"
        );
    }

    #[test]
    fn signing_key_persists_and_signatures_verify() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = GatewayKey::open_or_create(dir.path()).unwrap();
        let k2 = GatewayKey::open_or_create(dir.path()).unwrap();
        assert_eq!(k1.verifying_key(), k2.verifying_key());
        let sig = ed25519_dalek::Signature::from_bytes(&k1.sign(b"consent 1"));
        assert!(k2.verifying_key().verify_strict(b"consent 1", &sig).is_ok());
        assert!(
            k2.verifying_key()
                .verify_strict(b"consent 2", &sig)
                .is_err()
        );
    }

    #[test]
    fn core_dumps_can_be_disabled() {
        // Runs in the test process: harmless (tests never need a core), and it checks the call works.
        disable_core_dumps().unwrap();
        assert!(core_dumps_disabled());
    }
}
