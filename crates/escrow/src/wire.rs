//! Serde adapters for the recording crate's key types, which carry no serde impls of their own:
//! ids and keys travel as lowercase hex strings, epochs as numbers.

use callseal_recording::keys::{EpochId, PublicKey, RecordingId, WrappedKey};
use serde::{Deserialize, Deserializer, Serializer};

pub(crate) mod recording_id {
    use super::*;
    pub fn serialize<S: Serializer>(v: &RecordingId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RecordingId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) mod epoch_id {
    use super::*;
    pub fn serialize<S: Serializer>(v: &EpochId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(v.0)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EpochId, D::Error> {
        u32::deserialize(d).map(EpochId)
    }
}

pub(crate) mod public_key {
    use super::*;
    pub fn serialize<S: Serializer>(v: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) mod wrapped_key {
    use super::*;
    pub fn serialize<S: Serializer>(v: &WrappedKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v.to_bytes()))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<WrappedKey, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() > 2 * WrappedKey::LEN + 2 {
            return Err(serde::de::Error::custom("wrapped key is too long"));
        }
        let bytes =
            hex::decode(&s).map_err(|_| serde::de::Error::custom("wrapped key is not hex"))?;
        WrappedKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}
