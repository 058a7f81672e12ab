//! Helpers shared by the integration tests.
#![allow(dead_code)]

use callseal_recording::keys::{DataKey, EpochId, RecordingId};
use callseal_recording::{Frame, Leg, ReadError, Reader};
use std::time::Duration;

/// The published test-only data key of the format vectors: bytes 0x00, 0x01, ..., 0x1f.
/// Never use it for a real recording.
pub const TEST_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};

/// A second test-only key (0x20 ... 0x3f), for the wrong-key vector.
pub const OTHER_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = 0x20 + i as u8;
        i += 1;
    }
    k
};

pub const TEST_RECORDING: RecordingId = RecordingId::from_bytes([
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
]);
pub const TEST_EPOCH: EpochId = EpochId(20_454);

pub fn test_key() -> DataKey {
    DataKey::from_bytes(TEST_KEY)
}

pub fn frame(leg: Leg, ts: u32, ms: u64, pt: u8, payload: &[u8]) -> Frame {
    Frame {
        leg,
        rtp_timestamp: ts,
        arrival: Duration::from_millis(ms),
        payload_type: pt,
        payload: payload.to_vec(),
    }
}

/// Reads everything: the frames, then `None` for a clean end or the error.
pub fn read_all(bytes: &[u8], key: &DataKey) -> (Vec<Frame>, Option<ReadError>) {
    let mut reader = match Reader::new(bytes, key) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    drain(&mut reader)
}

pub fn drain<R: std::io::Read>(reader: &mut Reader<R>) -> (Vec<Frame>, Option<ReadError>) {
    let mut frames = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}
