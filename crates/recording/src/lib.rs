//! The sealed recording format of callseal: a streaming writer that seals call audio segment by
//! segment as it arrives (ChaCha20-Poly1305 in the STREAM construction under a per-recording
//! key), a streaming reader that returns exactly the verified prefix of a file followed by a
//! precise error, the HPKE wrap of the per-recording key to an escrow epoch, and the export of
//! recovered frames to WAV.
//!
//! It is not a media engine (no RTP parsing, no jitter buffer) and does no I/O of its own beyond
//! the `io::Write`/`io::Read` it is given: no files, clock or sockets. Keys come from
//! [`keys`]; the byte layout is specified in `docs/recording-format.md`.

pub mod keys;

mod format;
