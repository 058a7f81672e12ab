//! What a gateway needs from the escrow, whether it runs in the same process
//! ([`LocalGateway`], `callseal serve`) or remotely ([`crate::client::EscrowClient`],
//! `callseal gateway`): the signed epoch table, deposits, erasure on withdrawn consent, health.

use std::future::Future;
use std::sync::Arc;

use callseal_recording::keys::RecordingId;

use crate::client::{ClientError, EscrowClient};
use crate::error::EscrowError;
use crate::ids::GatewayId;
use crate::model::{ApiError, Deposit, DepositOutcome, Health};
use crate::service::{Actor, Service};
use crate::table::SignedEpochTable;

/// One result per deposit.
pub type DepositResults = Vec<Result<DepositOutcome, ApiError>>;

/// The gateway's view of the escrow. Errors are [`ClientError`]s in both cases, so the outbox
/// logic (`is_retryable`) is the same.
pub trait GatewayLink: Send + Sync {
    /// The signed epoch table (verify it with the pinned identity).
    fn epoch_table(&self) -> impl Future<Output = Result<SignedEpochTable, ClientError>> + Send;
    /// Deposits a batch (at most [`crate::server::MAX_BATCH`]).
    fn deposit_batch(
        &self,
        deposits: Vec<Deposit>,
    ) -> impl Future<Output = Result<DepositResults, ClientError>> + Send;
    /// Erases a recording (withdrawn consent), also before its deposit arrived.
    fn erase(
        &self,
        id: RecordingId,
        reason: String,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// Health of the escrow.
    fn health(&self) -> impl Future<Output = Result<Health, ClientError>> + Send;
}

/// The escrow in the same process, acting as gateway account `id`.
#[derive(Clone)]
pub struct LocalGateway {
    svc: Arc<Service>,
    actor: Actor,
}

impl LocalGateway {
    /// A link for gateway `id` (the gateway account created at init is `gateway`).
    pub fn new(svc: Arc<Service>, id: &GatewayId) -> Result<Self, EscrowError> {
        Ok(LocalGateway {
            svc,
            actor: Actor::local_gateway(id)?,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Service, &Actor) -> Result<T, EscrowError> + Send + 'static,
    ) -> Result<T, ClientError> {
        let svc = self.svc.clone();
        let actor = self.actor.clone();
        match tokio::task::spawn_blocking(move || f(&svc, &actor)).await {
            Ok(r) => r.map_err(|e| ClientError::from_escrow(&e)),
            Err(e) => Err(ClientError::from_escrow(&EscrowError::Internal {
                what: e.to_string(),
            })),
        }
    }
}

impl GatewayLink for LocalGateway {
    async fn epoch_table(&self) -> Result<SignedEpochTable, ClientError> {
        self.run(|s, a| s.epoch_table(a)).await
    }
    async fn deposit_batch(&self, deposits: Vec<Deposit>) -> Result<DepositResults, ClientError> {
        self.run(move |s, a| {
            Ok(s.deposit_batch(a, &deposits)?
                .into_iter()
                .map(|r| r.map_err(|e| e.to_api()))
                .collect())
        })
        .await
    }
    async fn erase(&self, id: RecordingId, reason: String) -> Result<(), ClientError> {
        self.run(move |s, a| s.erase(a, &id, &reason)).await
    }
    async fn health(&self) -> Result<Health, ClientError> {
        self.run(|s, _| s.health()).await
    }
}

impl GatewayLink for EscrowClient {
    async fn epoch_table(&self) -> Result<SignedEpochTable, ClientError> {
        EscrowClient::epoch_table(self).await
    }
    async fn deposit_batch(&self, deposits: Vec<Deposit>) -> Result<DepositResults, ClientError> {
        EscrowClient::deposit_batch(self, &deposits).await
    }
    async fn erase(&self, id: RecordingId, reason: String) -> Result<(), ClientError> {
        EscrowClient::erase(self, &id, &reason).await
    }
    async fn health(&self) -> Result<Health, ClientError> {
        EscrowClient::health(self).await
    }
}
