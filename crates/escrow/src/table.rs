//! The signed epoch table gateways fetch, cache and verify: the public key of every usable
//! epoch, when it is shredded, and the retention policy that says which epoch a new recording
//! belongs to. Signed with the escrow's Ed25519 identity over
//! `"callseal/epoch-table/v1\0" ‖ table JSON`, so a cached copy can be trusted offline.

use callseal_recording::keys::{EpochId, PublicKey};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::error::EscrowError;
use crate::ids::{LineId, Timestamp};
use crate::model::RetentionPolicy;
use crate::retention::epoch_for;
use crate::secret::{IdentityKey, verify_signature};
use crate::wire;

const DOMAIN: &[u8] = b"callseal/epoch-table/v1\0";

/// One usable epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochEntry {
    /// Epoch id (UTC day number of its last day).
    #[serde(with = "wire::epoch_id")]
    pub epoch: EpochId,
    /// The X25519 public key to wrap data keys to.
    #[serde(with = "wire::public_key")]
    pub public_key: PublicKey,
    /// When it is shredded.
    pub shred_after: Timestamp,
}

/// The table's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochTable {
    /// The signing identity (hex), for display; trust comes from the pinned key.
    pub escrow_key: String,
    /// When the escrow issued it.
    pub issued_at: Timestamp,
    /// Retention policy.
    pub retention: RetentionPolicy,
    /// Usable epochs, oldest first.
    pub epochs: Vec<EpochEntry>,
}

impl EpochTable {
    /// The epoch a recording started at `started_at` on `line` is wrapped to, if the table has
    /// it (tables are issued seven days ahead, so a cached table keeps working offline).
    pub fn epoch_for(&self, started_at: Timestamp, line: Option<&LineId>) -> Option<&EpochEntry> {
        let days = self.retention.days_for(line);
        let want = epoch_for(started_at, days)?;
        self.epochs.iter().find(|e| e.epoch.0 == want)
    }
}

/// The table as transmitted: exact JSON text plus signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEpochTable {
    /// JSON text of [`EpochTable`] (verified byte for byte).
    pub table: String,
    /// Ed25519 signature, 128 hex digits.
    pub signature: String,
}

impl SignedEpochTable {
    pub(crate) fn sign(table: &EpochTable, key: &IdentityKey) -> Result<Self, EscrowError> {
        let text = serde_json::to_string(table).map_err(|e| EscrowError::Internal {
            what: e.to_string(),
        })?;
        let sig = key.sign(&[DOMAIN, text.as_bytes()].concat());
        Ok(SignedEpochTable {
            table: text,
            signature: hex::encode(sig),
        })
    }

    /// Verifies the signature with the pinned identity key and returns the table.
    pub fn verify(&self, key: &VerifyingKey) -> Result<EpochTable, EscrowError> {
        let bad = || EscrowError::Crypto {
            what: "the epoch table signature does not verify with the pinned escrow identity",
        };
        let sig = hex::decode(&self.signature).map_err(|_| bad())?;
        let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| bad())?;
        if !verify_signature(key, &[DOMAIN, self.table.as_bytes()].concat(), &sig) {
            return Err(bad());
        }
        serde_json::from_str(&self.table)
            .map_err(|e| EscrowError::invalid("epoch table", e.to_string()))
    }
}

/// Parses an identity public key from its 64 hex digits (as in `escrow/identity.pub`).
pub fn parse_identity(hex_text: &str) -> Result<VerifyingKey, EscrowError> {
    let bad = |r: &str| EscrowError::invalid("escrow identity", r.to_owned());
    let bytes = hex::decode(hex_text.trim()).map_err(|_| bad("is not hex"))?;
    let bytes: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| bad("is not 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad("is not an Ed25519 public key"))
}
