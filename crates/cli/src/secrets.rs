//! The operator's two secrets on disk: the bearer token and the X25519 operator key.
//!
//! Both are read only from files that no other user can read (mode 0600 or stricter); a file with
//! a looser mode is refused with the `chmod` to run. Neither type has `Debug`, `Clone` or
//! `Serialize`, and both are zeroized on drop.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use crate::error::CliError;

/// Environment variable holding the operator token.
pub const TOKEN_ENV: &str = "CALLSEAL_TOKEN";

/// An operator's bearer token. Printed never; sent only in the Authorization header.
pub struct Token(String);

impl Token {
    pub fn new(s: String) -> Self {
        Token(s)
    }

    /// The token text, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Where the token comes from: CALLSEAL_TOKEN first, then the token file.
pub fn load_token(token_file: &Path) -> Result<Token, CliError> {
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        let t = Zeroizing::new(t);
        let trimmed = t.trim();
        if !trimmed.is_empty() {
            return Ok(Token(trimmed.to_owned()));
        }
    }
    if !token_file.exists() {
        return Err(CliError::TokenMissing {
            path: token_file.to_owned(),
        });
    }
    let text = read_private("token file", token_file)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(CliError::TokenRejected);
    }
    Ok(Token(trimmed.to_owned()))
}

/// Reads a file that must not be accessible to group or others.
pub fn read_private(what: &'static str, path: &Path) -> Result<Zeroizing<String>, CliError> {
    check_private_mode(what, path)?;
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| CliError::io("cannot read", path, &e))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| CliError::Io {
        what: "cannot read",
        path: path.to_owned(),
        reason: "the file is not UTF-8 text".into(),
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Refuses a file whose mode lets group or others read or write it.
pub fn check_private_mode(what: &'static str, path: &Path) -> Result<(), CliError> {
    let meta = fs::metadata(path).map_err(|e| CliError::io("cannot read", path, &e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(CliError::InsecureFileMode {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Writes a new secret file with mode 0600; never replaces an existing file.
pub fn write_private_new(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CliError::OutputExists {
                path: path.to_owned(),
            },
            _ => CliError::OutputNotWritable {
                path: path.to_owned(),
                reason: e.to_string(),
            },
        })?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::OutputNotWritable {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

const KEY_FILE_LABEL: &str = "callseal-operator-key-v1";

/// The operator's X25519 secret key as stored in the key file: 32 bytes, zeroized on drop.
pub struct OperatorKeyBytes(Zeroizing<[u8; 32]>);

impl OperatorKeyBytes {
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Key file text: a label line, then the secret as 64 hex digits.
pub fn encode_operator_key(secret: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(format!("{KEY_FILE_LABEL}\n{}\n", hex::encode(secret)))
}

/// Reads and checks an operator key file (mode 0600, label, 64 hex digits).
pub fn load_operator_key(path: &Path) -> Result<OperatorKeyBytes, CliError> {
    if !path.exists() {
        return Err(CliError::OperatorKeyMissing {
            path: path.to_owned(),
        });
    }
    let text = read_private("operator key file", path)?;
    let invalid = |reason: &str| CliError::OperatorKeyInvalid {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(KEY_FILE_LABEL) {
        return Err(invalid(
            "the first line is not the callseal operator key label",
        ));
    }
    let hex_line = lines
        .next()
        .ok_or_else(|| invalid("the key line is missing"))?
        .trim();
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_line, out.as_mut_slice())
        .map_err(|_| invalid("the key is not 64 hex digits"))?;
    Ok(OperatorKeyBytes(out))
}

/// Default locations inside the data folder.
pub fn default_token_file(data: &Path) -> PathBuf {
    data.join("operator.token")
}

pub fn default_key_file(data: &Path) -> PathBuf {
    data.join("operator.key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_mode_is_refused_with_the_chmod() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        fs::write(&p, "abc").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let err = check_private_mode("token file", &p).unwrap_err();
        assert!(
            matches!(err, CliError::InsecureFileMode { mode: 0o640, .. }),
            "{err}"
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        check_private_mode("token file", &p).unwrap();
    }

    #[test]
    fn key_file_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let secret = [7u8; 32];
        write_private_new(&p, encode_operator_key(&secret).as_bytes()).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_operator_key(&p).unwrap().expose(), &secret);
        assert!(matches!(
            write_private_new(&p, b"x"),
            Err(CliError::OutputExists { .. })
        ));

        let q = dir.path().join("q");
        write_private_new(&q, b"callseal-operator-key-v1\nzz\n").unwrap();
        assert!(matches!(
            load_operator_key(&q),
            Err(CliError::OperatorKeyInvalid { .. })
        ));
    }
}
