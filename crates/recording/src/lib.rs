//! The sealed recording format of callseal: a streaming writer that seals call audio segment by
//! segment as it arrives (ChaCha20-Poly1305 in the STREAM construction under a per-recording
//! key), a streaming reader that returns exactly the verified prefix of a file followed by a
//! precise error, the HPKE wrap of the per-recording key to an escrow epoch, and the export of
//! recovered frames to WAV.
//!
//! It is not a media engine (no RTP parsing, no jitter buffer) and does no I/O of its own beyond
//! the `io::Write`/`io::Read` it is given: no files, clock or sockets. Keys come from
//! [`keys`]; the byte layout is specified in `docs/recording-format.md`.
//!
//! ```
//! use callseal_recording::keys::{DataKey, EpochId, RecordingId};
//! use callseal_recording::{Leg, ReadError, Reader, Writer, WriterConfig};
//! use std::time::Duration;
//!
//! let key = DataKey::generate()?;
//! let id = RecordingId::generate()?;
//! let mut w = Writer::new(Vec::new(), &key, id, EpochId(20_454), WriterConfig::default())?;
//! for i in 0..100u32 {
//!     let at = Duration::from_millis(20 * u64::from(i));
//!     w.push_frame(Leg::Caller, 160 * i, at, 0, &[0xff; 160])?;
//!     w.push_frame(Leg::Consultant, 9000 + 160 * i, at, 8, &[0xd5; 160])?;
//! }
//! let file = w.finish()?;
//!
//! let frames: Result<Vec<_>, ReadError> = Reader::new(&file[..], &key)?.collect();
//! assert_eq!(frames?.len(), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod export;
pub mod g711;
pub mod keys;

mod buf;
mod crypto;
mod format;
mod frames;
mod payload;
mod reader;
mod writer;

pub use format::{
    FORMAT_VERSION, Header, MAGIC, MAX_FRAME_PAYLOAD, MAX_SEGMENT_PLAINTEXT, SAMPLE_RATE,
};
pub use frames::{Frame, Leg};
pub use payload::{Encoding, PayloadTypeError, PayloadTypes};
pub use reader::{ReadError, Reader};
pub use writer::{MIN_SEGMENT_BYTES, WriteError, Writer, WriterConfig, WriterStats};

/// Test-only access to the primitives the format calls, so that the Wycheproof and RFC vectors
/// in `tests/` and the fuzz target run through exactly the code the writer and reader use. Not
/// part of the API.
#[doc(hidden)]
pub mod primitives {
    /// ChaCha20-Poly1305 seal in place with a raw key; returns the tag.
    pub fn chacha20poly1305_seal(
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<[u8; 16]> {
        crate::crypto::seal_in_place(&crate::crypto::aead_for_key(key), nonce, aad, buf)
    }

    /// Decodes a segment's plaintext into frames, as the reader does after authentication (for
    /// the fuzz target: the only parser that sees decrypted bytes).
    pub fn decode_segment_plaintext(mut bytes: &[u8]) -> Result<Vec<crate::Frame>, &'static str> {
        let mut codec = crate::frames::FrameCodec::default();
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            frames.push(codec.decode(&mut bytes)?);
        }
        Ok(frames)
    }

    /// ChaCha20-Poly1305 open in place with a raw key.
    pub fn chacha20poly1305_open(
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> bool {
        crate::crypto::open_in_place(&crate::crypto::aead_for_key(key), nonce, aad, buf, tag)
    }
}
