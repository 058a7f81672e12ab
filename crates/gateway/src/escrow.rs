//! The gateway's view of the key escrow: one seam, two implementations, and the signed epoch
//! table cached on disk.
//!
//! [`EscrowApi`] is what the gateway needs (epoch table, deposit, erase). `callseal serve`
//! implements it with the escrow service in the same process, `callseal gateway` with the
//! HTTPS client; both come from the escrow crate's `GatewayLink`. Deposits and erasures never
//! call it directly: they go through the durable [`crate::outbox::Outbox`], whose
//! [`Deliver`] is implemented here on top of the seam. The epoch table is verified against
//! the pinned escrow identity and kept in `<data>/gateway/epochs.json`, so recording starts
//! even while the escrow is down (tables are issued days ahead).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use callseal_escrow::{EpochTable, SignedEpochTable, Timestamp};
use callseal_recording::keys::{EpochId, PublicKey, RecordingId};
pub use ed25519_dalek::VerifyingKey;
use tokio::sync::watch;

use crate::error::GatewayError;
use crate::outbox::{Deliver, DeliveryError, OutboxItem};

/// A boxed future, so the seam is object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the gateway asks of the escrow.
pub trait EscrowApi: Send + Sync + 'static {
    /// The current signed epoch table.
    fn epoch_table(&self) -> BoxFuture<'_, Result<SignedEpochTable, DeliveryError>>;
    /// Stores one deposit (idempotent by recording id).
    fn deposit<'a>(
        &'a self,
        deposit: &'a callseal_escrow::Deposit,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// Erases a recording (works before its deposit arrived).
    fn erase<'a>(
        &'a self,
        recording: RecordingId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// Delivers outbox items through an [`EscrowApi`].
pub struct OutboxDelivery(pub Arc<dyn EscrowApi>);

impl Deliver for OutboxDelivery {
    fn deliver<'a>(
        &'a self,
        item: &'a OutboxItem,
    ) -> Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>> {
        Box::pin(async move {
            match item {
                OutboxItem::Deposit(d) => self.0.deposit(d).await,
                OutboxItem::Erase { recording, reason } => {
                    let id: RecordingId = recording.parse().map_err(|_| DeliveryError {
                        retryable: false,
                        message: format!("'{recording}' is not a recording id"),
                    })?;
                    self.0.erase(id, reason).await
                }
            }
        })
    }
}

const CACHE_FILE: &str = "epochs.json";

/// The verified epoch table, kept in memory and on disk.
pub struct EpochCache {
    path: PathBuf,
    identity: VerifyingKey,
    table: RwLock<Option<EpochTable>>,
}

impl EpochCache {
    /// Opens the cache in `dir`, loading a previously stored table if it still verifies.
    pub fn open(dir: &Path, identity: VerifyingKey) -> Self {
        let path = dir.join(CACHE_FILE);
        let table = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<SignedEpochTable>(&b).ok())
            .and_then(|s| match s.verify(&identity) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cached epoch table ignored: {e}");
                    None
                }
            });
        Self {
            path,
            identity,
            table: RwLock::new(table),
        }
    }

    /// True once a verified table is known.
    pub fn is_ready(&self) -> bool {
        self.table.read().map(|t| t.is_some()).unwrap_or(false)
    }

    /// The public key of `epoch`, if the table has it.
    pub fn public_key(&self, epoch: EpochId) -> Option<PublicKey> {
        let t = self.table.read().ok()?;
        t.as_ref()?
            .epochs
            .iter()
            .find(|e| e.epoch == epoch)
            .map(|e| e.public_key.clone())
    }

    /// The epoch and key for a recording started at `unix_ms`, by the table's retention policy.
    pub fn epoch_for(&self, unix_ms: u64) -> Option<(EpochId, PublicKey)> {
        let t = self.table.read().ok()?;
        let ms = i64::try_from(unix_ms).ok()?;
        t.as_ref()?
            .epoch_for(Timestamp::from_unix_ms(ms), None)
            .map(|e| (e.epoch, e.public_key.clone()))
    }

    /// Fetches, verifies and stores the table.
    pub async fn refresh(&self, api: &dyn EscrowApi) -> Result<(), GatewayError> {
        let signed = api
            .epoch_table()
            .await
            .map_err(|e| GatewayError::Escrow(e.message))?;
        let table = signed
            .verify(&self.identity)
            .map_err(|e| GatewayError::Escrow(format!("epoch table refused: {e}")))?;
        let bytes = serde_json::to_vec(&signed).map_err(|e| GatewayError::Escrow(e.to_string()))?;
        crate::outbox::write_atomic(&self.path, &bytes)?;
        if let Ok(mut t) = self.table.write() {
            *t = Some(table);
        }
        Ok(())
    }

    /// Refreshes every `every` (every `retry` while failing) until `stop` turns true.
    pub async fn run(
        self: Arc<Self>,
        api: Arc<dyn EscrowApi>,
        every: Duration,
        retry: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let wait = match self.refresh(api.as_ref()).await {
                Ok(()) => every,
                Err(e) => {
                    tracing::warn!(
                        "escrow epoch table: {e}; using the cached one, retrying in {retry:?}"
                    );
                    retry
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The escrow crate's gateway link (in-process [`callseal_escrow::LocalGateway`] or the HTTPS
/// [`callseal_escrow::client::EscrowClient`]) as the gateway's seam.
pub struct Link<L>(pub L);

fn client_error(e: &callseal_escrow::client::ClientError) -> DeliveryError {
    DeliveryError {
        retryable: e.is_retryable(),
        message: e.to_string(),
    }
}

impl<L: callseal_escrow::GatewayLink + 'static> EscrowApi for Link<L> {
    fn epoch_table(&self) -> BoxFuture<'_, Result<SignedEpochTable, DeliveryError>> {
        Box::pin(async move { self.0.epoch_table().await.map_err(|e| client_error(&e)) })
    }

    fn deposit<'a>(
        &'a self,
        deposit: &'a callseal_escrow::Deposit,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let results = self
                .0
                .deposit_batch(vec![deposit.clone()])
                .await
                .map_err(|e| client_error(&e))?;
            match results.into_iter().next() {
                Some(Ok(_)) => Ok(()),
                Some(Err(api)) => Err(DeliveryError {
                    retryable: api.code.is_retryable(),
                    message: format!("{}: {}", api.code, api.message),
                }),
                None => Err(DeliveryError {
                    retryable: true,
                    message: "the escrow answered a deposit with no result".into(),
                }),
            }
        })
    }

    fn erase<'a>(
        &'a self,
        recording: RecordingId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.0
                .erase(recording, reason.to_owned())
                .await
                .map_err(|e| client_error(&e))
        })
    }
}

/// The escrow of `callseal serve`: opened (created on first run) in `<data>/escrow`.
pub struct InProcess {
    /// The service, for the HTTPS API and the retention scheduler.
    pub service: Arc<callseal_escrow::Service>,
    /// What first run created (tokens), when it did.
    pub created: Option<callseal_escrow::InitReport>,
    /// The seam for the gateway.
    pub api: Arc<dyn EscrowApi>,
    /// The escrow identity the epoch table is verified with.
    pub identity: VerifyingKey,
}

/// Opens the in-process escrow for `data` as gateway account `gateway`.
pub fn in_process(
    data: &Path,
    clock: Arc<dyn callseal_escrow::Clock>,
) -> Result<InProcess, GatewayError> {
    let esc = |e: callseal_escrow::EscrowError| GatewayError::Escrow(e.to_string());
    let (service, created) = callseal_escrow::Service::open_or_init(
        data,
        &callseal_escrow::InitOptions::default(),
        callseal_escrow::ServiceConfig::default(),
        clock,
    )
    .map_err(esc)?;
    let gateway = callseal_escrow::GatewayId::new("gateway").map_err(esc)?;
    let link = callseal_escrow::LocalGateway::new(service.clone(), &gateway).map_err(esc)?;
    let identity = read_identity(&data.join("escrow").join("identity.pub"))?;
    Ok(InProcess {
        service,
        created,
        api: Arc::new(Link(link)),
        identity,
    })
}

/// Reads a pinned escrow identity (64 hex digits).
pub fn read_identity(path: &Path) -> Result<VerifyingKey, GatewayError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| GatewayError::storage("read escrow identity", path, e))?;
    callseal_escrow::table::parse_identity(&text)
        .map_err(|e| GatewayError::Escrow(format!("{}: {e}", path.display())))
}
