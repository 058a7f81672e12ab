//! Constants and byte layout of the sealed recording format (version 1).

/// The recording format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
