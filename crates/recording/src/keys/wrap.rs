//! The HPKE wrap of a data key (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305), to an epoch key and re-wrapped to an operator's or a hold key.

use super::{DataKey, EpochId, KeyError, PublicKey, RecordingId, SecretKey, WrapKem, fill_random};
use crate::format::FORMAT_VERSION;
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use std::convert::Infallible;
use zeroize::{Zeroize, Zeroizing};

type WrapAead = hpke::aead::ChaCha20Poly1305;
type WrapKdf = hpke::kdf::HkdfSha256;

/// Version byte of the wrapped-key encoding.
const WRAP_VERSION: u8 = 1;
/// Domain-separation label at the start of every HPKE `info`.
const INFO_LABEL: &[u8] = b"callseal recording key";
const ENC_LEN: usize = 32;
const TAG_LEN: usize = 16;
const CT_LEN: usize = DataKey::LEN + TAG_LEN;
const PREFIX_LEN: usize = 1 + 1 + RecordingId::LEN + 4;

/// Who can open a [`WrappedKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Recipient {
    /// The retention epoch's key (what the gateway deposits).
    Epoch,
    /// An operator's own key (what the escrow releases to a listener).
    Operator,
    /// A legal-hold key (keeps one recording out of its epoch's shred).
    Hold,
}

impl Recipient {
    fn code(self) -> u8 {
        match self {
            Recipient::Epoch => 1,
            Recipient::Operator => 2,
            Recipient::Hold => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Recipient::Epoch),
            2 => Some(Recipient::Operator),
            3 => Some(Recipient::Hold),
            _ => None,
        }
    }
}

/// A data key sealed with HPKE to one recipient, with the recording id and epoch id it belongs
/// to. Not secret (it is ciphertext), but only useful to the holder of the recipient's
/// [`SecretKey`]. The ids are authenticated when the key is unwrapped.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    recipient: Recipient,
    recording: RecordingId,
    epoch: EpochId,
    enc: [u8; ENC_LEN],
    ct: [u8; CT_LEN],
}

impl WrappedKey {
    /// Length of the encoding (version 1).
    pub const LEN: usize = PREFIX_LEN + ENC_LEN + CT_LEN;

    /// The versioned encoding (see `docs/recording-format.md`, "Wrapped key").
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(WRAP_VERSION);
        out.push(self.recipient.code());
        out.extend_from_slice(self.recording.as_bytes());
        out.extend_from_slice(&self.epoch.0.to_be_bytes());
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&self.ct);
        out
    }

    /// Parses the encoding. Only the structure is checked here; authenticity is checked by
    /// [`unwrap`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(KeyError::MalformedWrappedKey { reason: "empty" })?;
        if version != WRAP_VERSION {
            return Err(KeyError::UnsupportedWrapVersion {
                found: version,
                supported: WRAP_VERSION,
            });
        }
        if bytes.len() != Self::LEN {
            return Err(KeyError::MalformedWrappedKey {
                reason: "wrong length for a version 1 wrapped key (expected 102 bytes)",
            });
        }
        let (&kind, rest) = rest.split_first().ok_or(KeyError::MalformedWrappedKey {
            reason: "truncated",
        })?;
        let recipient = Recipient::from_code(kind).ok_or(KeyError::MalformedWrappedKey {
            reason: "unknown recipient kind",
        })?;
        let (rid, rest) = split_array::<{ RecordingId::LEN }>(rest)?;
        let (epoch, rest) = split_array::<4>(rest)?;
        let (enc, rest) = split_array::<ENC_LEN>(rest)?;
        let (ct, _) = split_array::<CT_LEN>(rest)?;
        Ok(Self {
            recipient,
            recording: RecordingId::from_bytes(rid),
            epoch: EpochId(u32::from_be_bytes(epoch)),
            enc,
            ct,
        })
    }

    /// Whose key opens this wrap.
    pub fn recipient(&self) -> Recipient {
        self.recipient
    }

    /// The recording this key belongs to (authenticated by [`unwrap`]).
    pub fn recording_id(&self) -> RecordingId {
        self.recording
    }

    /// The retention epoch of the recording (authenticated by [`unwrap`]).
    pub fn epoch(&self) -> EpochId {
        self.epoch
    }
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("recipient", &self.recipient)
            .field("recording", &self.recording)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Wraps a data key to an epoch public key (what the gateway deposits with the escrow).
pub fn wrap(
    key: &DataKey,
    recording: RecordingId,
    epoch: EpochId,
    epoch_public: &PublicKey,
) -> Result<WrappedKey, KeyError> {
    seal(key, Recipient::Epoch, recording, epoch, epoch_public)
}

/// Opens a wrapped key with the recipient's secret key (the epoch secret for
/// [`Recipient::Epoch`], the operator's or hold key for the others).
///
/// Fails with [`KeyError::Unwrap`] if the key is not the recipient's, or if the blob, its
/// recording id, epoch id or recipient kind were altered.
pub fn unwrap(wrapped: &WrappedKey, secret: &SecretKey) -> Result<DataKey, KeyError> {
    let info = info(
        wrapped.recipient,
        wrapped.recording,
        wrapped.epoch,
        &secret.public_key(),
    );
    let mut buf = Zeroizing::new([0u8; DataKey::LEN]);
    buf.copy_from_slice(&wrapped.ct[..DataKey::LEN]);
    hpke_open(
        secret,
        &wrapped.enc,
        &info,
        &[],
        buf.as_mut_slice(),
        &wrapped.ct[DataKey::LEN..],
    )?;
    Ok(DataKey::from_bytes(*buf))
}

/// Opens `wrapped` with `secret` and seals the data key again to `to_public` as `recipient`,
/// keeping the recording id and epoch id. The plaintext key exists only inside this call.
pub fn rewrap(
    wrapped: &WrappedKey,
    secret: &SecretKey,
    recipient: Recipient,
    to_public: &PublicKey,
) -> Result<WrappedKey, KeyError> {
    let key = unwrap(wrapped, secret)?;
    seal(&key, recipient, wrapped.recording, wrapped.epoch, to_public)
}

fn seal(
    key: &DataKey,
    recipient: Recipient,
    recording: RecordingId,
    epoch: EpochId,
    to: &PublicKey,
) -> Result<WrappedKey, KeyError> {
    let mut ikm_e = Zeroizing::new([0u8; 32]);
    fill_random(ikm_e.as_mut())?;
    let info = info(recipient, recording, epoch, to);
    let mut ct = [0u8; CT_LEN];
    let (body, tag_out) = ct.split_at_mut(DataKey::LEN);
    body.copy_from_slice(key.expose());
    let (enc, tag) = hpke_seal(to, &info, &[], body, &ikm_e)?;
    tag_out.copy_from_slice(&tag);
    Ok(WrappedKey {
        recipient,
        recording,
        epoch,
        enc,
        ct,
    })
}

/// HPKE `info`: label, wrap version, recording format version, recipient kind, recording id,
/// epoch id, recipient public key (RFC 9180 §5.1: `info` is bound into the key schedule).
fn info(recipient: Recipient, recording: RecordingId, epoch: EpochId, to: &PublicKey) -> Vec<u8> {
    let mut info = Vec::with_capacity(INFO_LABEL.len() + 4 + RecordingId::LEN + 4 + 32);
    info.extend_from_slice(INFO_LABEL);
    info.push(WRAP_VERSION);
    info.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    info.push(recipient.code());
    info.extend_from_slice(recording.as_bytes());
    info.extend_from_slice(&epoch.0.to_be_bytes());
    info.extend_from_slice(&to.to_bytes());
    info
}

/// Single-shot HPKE base-mode seal of `buf` in place, whose ephemeral key is derived from
/// `ikm_e` (RFC 9180 §7.1.3 DeriveKeyPair), so the known-answer test of RFC 9180 A.2.1 runs
/// through exactly this code. Returns `enc` and the tag.
pub(crate) fn hpke_seal(
    to: &PublicKey,
    info: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    ikm_e: &[u8; 32],
) -> Result<([u8; ENC_LEN], [u8; TAG_LEN]), KeyError> {
    let pk = to.to_hpke()?;
    let mut rng = PrefilledRng {
        bytes: Zeroizing::new(*ikm_e),
        used: 0,
        failed: false,
    };
    let (enc, mut ctx) = hpke::setup_sender_with_rng::<WrapAead, WrapKdf, WrapKem>(
        &OpModeS::Base,
        &pk,
        info,
        &mut rng,
    )
    .map_err(|_| KeyError::Wrap {
        reason: "encapsulation failed",
    })?;
    if rng.failed {
        return Err(KeyError::Randomness {
            reason: "the OS generator failed during encapsulation".to_owned(),
        });
    }
    let tag = ctx
        .seal_inout_detached(buf.into(), aad)
        .map_err(|_| KeyError::Wrap {
            reason: "sealing failed",
        })?;
    let mut enc_bytes = [0u8; ENC_LEN];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    let mut tag_bytes = [0u8; TAG_LEN];
    tag_bytes.copy_from_slice(&tag.to_bytes());
    Ok((enc_bytes, tag_bytes))
}

/// Single-shot HPKE base-mode open of `buf` in place (RFC 9180 §6.1).
pub(crate) fn hpke_open(
    secret: &SecretKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), KeyError> {
    let enc = <WrapKem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| KeyError::Unwrap)?;
    let tag = hpke::aead::AeadTag::<WrapAead>::from_bytes(tag).map_err(|_| KeyError::Unwrap)?;
    let mut ctx = hpke::setup_receiver::<WrapAead, WrapKdf, WrapKem>(
        &OpModeR::Base,
        secret.as_hpke(),
        &enc,
        info,
    )
    .map_err(|_| KeyError::Unwrap)?;
    let result = ctx.open_inout_detached(buf.into(), aad, &tag);
    if result.is_err() {
        // Do not leave unauthenticated plaintext behind.
        buf.zeroize();
        return Err(KeyError::Unwrap);
    }
    Ok(())
}

/// Hands hpke the ephemeral keying material we drew (fallibly) ourselves, so that a failing OS
/// generator is an error instead of the panic inside hpke's own `SysRng` wrapper. Should hpke
/// ever ask for more bytes, they come from the OS and a failure is reported after the call.
struct PrefilledRng {
    bytes: Zeroizing<[u8; 32]>,
    used: usize,
    failed: bool,
}

impl TryRng for PrefilledRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let available = self.bytes.get(self.used..).unwrap_or(&[]);
        let n = available.len().min(dst.len());
        let (head, tail) = dst.split_at_mut(n);
        head.copy_from_slice(&available[..n]);
        self.used += n;
        if !tail.is_empty() && fill_random(tail).is_err() {
            self.failed = true;
        }
        Ok(())
    }
}

impl TryCryptoRng for PrefilledRng {}

fn split_array<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), KeyError> {
    let (head, rest) = bytes
        .split_at_checked(N)
        .ok_or(KeyError::MalformedWrappedKey {
            reason: "truncated",
        })?;
    let mut out = [0u8; N];
    out.copy_from_slice(head);
    Ok((out, rest))
}

#[cfg(test)]
#[path = "wrap_tests.rs"]
mod tests;
