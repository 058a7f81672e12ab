//! The escrow's part of a data folder, and `init`, which creates everything from nothing.
//!
//! ```text
//! DIR/escrow/            0700
//!   escrow.db (+ -wal, -shm)  SQLite database
//!   keyring              0600  table key(s)
//!   identity.key         0600  Ed25519 identity
//!   identity.pub               its public half, 64 hex digits (what gateways pin)
//!   escrow.url                 where the API listens (rewritten by the server once bound)
//!   tls/ca.pem, tls/ca.key (0600), tls/server.pem, tls/server.key (0600)
//! DIR/gateway/escrow.token 0600  the gateway account's bearer token
//! ```

use std::path::{Path, PathBuf};

use crate::clock::Clock;
use crate::error::EscrowError;
use crate::fsutil;
use crate::ids::{OperatorId, Role};
use crate::keyring::Keyring;
use crate::model::NewOperator;
use crate::secret::{IdentityKey, Token};
use crate::service::{Service, ServiceConfig};
use crate::store::SqliteStore;

/// Paths of the escrow's files inside a data folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    data: PathBuf,
}

/// The TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// CA certificate (PEM), pinned by clients.
    pub ca_cert: PathBuf,
    /// CA private key (PEM, 0600).
    pub ca_key: PathBuf,
    /// Server certificate (PEM).
    pub server_cert: PathBuf,
    /// Server private key (PEM, 0600).
    pub server_key: PathBuf,
}

impl DataDir {
    /// The escrow part of data folder `data`.
    pub fn new(data: &Path) -> Self {
        DataDir {
            data: data.to_owned(),
        }
    }
    /// `DIR/escrow`.
    pub fn root(&self) -> PathBuf {
        self.data.join("escrow")
    }
    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.root().join("escrow.db")
    }
    /// The keyring file.
    pub fn keyring(&self) -> PathBuf {
        self.root().join("keyring")
    }
    /// The identity key file.
    pub fn identity_key(&self) -> PathBuf {
        self.root().join("identity.key")
    }
    /// The identity public key (hex text).
    pub fn identity_pub(&self) -> PathBuf {
        self.root().join("identity.pub")
    }
    /// The URL file.
    pub fn url_file(&self) -> PathBuf {
        self.root().join("escrow.url")
    }
    /// TLS files.
    pub fn tls(&self) -> TlsPaths {
        let t = self.root().join("tls");
        TlsPaths {
            ca_cert: t.join("ca.pem"),
            ca_key: t.join("ca.key"),
            server_cert: t.join("server.pem"),
            server_key: t.join("server.key"),
        }
    }
    /// The gateway's token file.
    pub fn gateway_token(&self) -> PathBuf {
        self.data.join("gateway").join("escrow.token")
    }
    /// Whether `init` ran here (the keyring and identity exist).
    pub fn is_initialised(&self) -> bool {
        self.keyring().exists() && self.identity_key().exists()
    }
    pub(crate) fn check_initialised(&self) -> Result<(), EscrowError> {
        if self.is_initialised() {
            Ok(())
        } else {
            Err(EscrowError::KeyFile {
                path: self.root().display().to_string(),
                reason: "is not an initialised escrow (no keyring or identity key); run `callseal init` first".into(),
            })
        }
    }
    /// The URL written at init or by the running server.
    pub fn url(&self) -> Option<String> {
        std::fs::read_to_string(self.url_file())
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }
}

/// What `init` creates.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The first admin's id.
    pub admin: OperatorId,
    /// The gateway account's id.
    pub gateway: OperatorId,
    /// Names and addresses the server certificate is valid for.
    pub hosts: Vec<String>,
    /// The API URL to record (`https://127.0.0.1:7443` by default).
    pub url: String,
    /// Default retention in days.
    pub default_retention_days: u32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            admin: OperatorId::literal("admin"),
            gateway: OperatorId::literal("gateway"),
            hosts: vec!["localhost".into(), "127.0.0.1".into()],
            url: "https://127.0.0.1:7443".into(),
            default_retention_days: 30,
        }
    }
}

/// What `init` produced. The tokens are shown once: the escrow keeps only their hashes.
pub struct InitReport {
    /// The first admin's token (`cs1_…`).
    pub admin_token: Token,
    /// Where the gateway's token was written.
    pub gateway_token_file: PathBuf,
    /// The identity public key (hex).
    pub identity: String,
    /// The CA certificate clients pin.
    pub ca_cert: PathBuf,
    /// The recorded URL.
    pub url: String,
}

/// Creates the escrow part of data folder `data`: identity, keyring, database, TLS CA and
/// server certificate, the first admin and the gateway account. Refuses an existing escrow.
pub fn init(
    data: &Path,
    opts: &InitOptions,
    config: &ServiceConfig,
    clock: std::sync::Arc<dyn Clock>,
) -> Result<InitReport, EscrowError> {
    let dir = DataDir::new(data);
    if dir.keyring().exists() || dir.identity_key().exists() || dir.database().exists() {
        return Err(EscrowError::AlreadyExists {
            what: format!("an escrow in {}", dir.root().display()),
        });
    }
    if !(1..=crate::ids::RetentionDays::MAX).contains(&opts.default_retention_days) {
        return Err(EscrowError::InvalidRetention {
            days: i64::from(opts.default_retention_days),
            min: crate::ids::RetentionDays::MIN,
            max: crate::ids::RetentionDays::MAX,
        });
    }
    fsutil::create_private_dir(&dir.root())?;
    fsutil::create_private_dir(&dir.root().join("tls"))?;
    if let Some(gw) = dir.gateway_token().parent() {
        fsutil::create_private_dir(gw)?;
    }
    let identity = IdentityKey::generate()?;
    identity.store(&dir.identity_key())?;
    let identity_hex = hex::encode(identity.verifying_key().as_bytes());
    fsutil::write_atomic_public(&dir.identity_pub(), format!("{identity_hex}\n").as_bytes())?;
    crate::tls::create_ca_and_server(&dir.tls(), &opts.hosts)?;
    fsutil::write_atomic_public(&dir.url_file(), format!("{}\n", opts.url).as_bytes())?;
    let keyring = Keyring::create(&dir.keyring())?;
    let store =
        SqliteStore::open(&dir.database()).map_err(EscrowError::storage("create the database"))?;
    let svc = Service::assemble(Box::new(store), keyring, identity, config.clone(), clock)?;
    let (admin_token, gateway_token) = svc.bootstrap(opts)?;
    fsutil::write_atomic_private(
        &dir.gateway_token(),
        format!("{}\n", gateway_token.expose().as_str()).as_bytes(),
    )?;
    Ok(InitReport {
        admin_token,
        gateway_token_file: dir.gateway_token(),
        identity: identity_hex,
        ca_cert: dir.tls().ca_cert,
        url: opts.url.clone(),
    })
}

impl Service {
    /// Creates the first admin and the gateway account and the default retention (init only).
    fn bootstrap(&self, opts: &InitOptions) -> Result<(Token, Token), EscrowError> {
        let out = self.write(|s, tx, _| {
            if tx
                .operator_count()
                .map_err(EscrowError::storage("count operators"))?
                != 0
            {
                return Err(EscrowError::AlreadyExists {
                    what: "operators in this escrow".into(),
                });
            }
            tx.meta_set(
                "retention_default",
                opts.default_retention_days.to_string().as_bytes(),
            )
            .map_err(EscrowError::storage("write the retention policy"))?;
            let (admin, _) = s.create_operator(
                tx,
                &NewOperator {
                    id: opts.admin.clone(),
                    role: Role::Admin,
                    public_key: None,
                },
            )?;
            let (gateway, _) = s.create_operator(
                tx,
                &NewOperator {
                    id: opts.gateway.clone(),
                    role: Role::Gateway,
                    public_key: None,
                },
            )?;
            s.audit_append(
                tx,
                "init",
                "init",
                None,
                None,
                &format!("done: admin {}, gateway {}", opts.admin, opts.gateway),
            )?;
            Ok((admin, gateway))
        })?;
        self.tick()?;
        Ok(out)
    }
}
