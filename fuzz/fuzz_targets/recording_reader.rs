//! Fuzzes the sealed recording reader three ways:
//! 1. the input as a whole file (header parsing, framing, truncation handling);
//! 2. the input as a decrypted segment plaintext (the frame decoder, reachable in a real file
//!    only with the key);
//! 3. a valid recording built from the input, then cut and bit-flipped where the input says:
//!    the reader must return only a prefix of the frames that were written, then stop.
#![no_main]

use callseal_recording::keys::{DataKey, EpochId, RecordingId};
use callseal_recording::primitives::decode_segment_plaintext;
use callseal_recording::{Leg, Reader, Writer, WriterConfig};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

/// Test-only key (bytes 0x00..0x1f), the same as the format vectors'.
fn key() -> DataKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    DataKey::from_bytes(k)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(reader) = Reader::new(rest, &key()) {
                for item in reader {
                    if item.is_err() {
                        break;
                    }
                }
            }
        }
        1 => {
            let _ = decode_segment_plaintext(rest);
        }
        _ => mutated_recording(rest),
    }
});

fn mutated_recording(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let cut = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let flip_at = usize::from(data[2]) * 7;
    let flip_mask = data[3];
    let key = key();
    let config = WriterConfig {
        segment_duration: Duration::from_millis(40),
        ..WriterConfig::default()
    };
    let Ok(mut w) = Writer::new(
        Vec::new(),
        &key,
        RecordingId::from_bytes([1; 16]),
        EpochId(1),
        config,
    ) else {
        return;
    };
    let mut written = Vec::new();
    for (i, chunk) in data[4..].chunks(9).enumerate() {
        let leg = if chunk[0] & 1 == 0 {
            Leg::Caller
        } else {
            Leg::Consultant
        };
        let ts = u32::from(chunk[0]) * 160;
        let arrival = Duration::from_millis(10 * i as u64 + u64::from(chunk[0] >> 5));
        let pt = chunk.get(1).copied().unwrap_or(0) & 0x7f;
        let payload = chunk.get(2..).unwrap_or(&[]);
        if w.push_frame(leg, ts, arrival, pt, payload).is_ok() {
            written.push((leg, ts, pt, payload.to_vec()));
        }
    }
    let Ok(mut file) = w.finish() else {
        return;
    };
    let intact = (flip_mask == 0 || flip_at >= file.len()) && (cut == 0 || cut >= file.len());
    if flip_mask != 0 && flip_at < file.len() {
        file[flip_at] ^= flip_mask;
    }
    if cut != 0 && cut < file.len() {
        file.truncate(cut);
    }
    let Ok(reader) = Reader::new(&file[..], &key) else {
        return;
    };
    let mut n = 0;
    for item in reader {
        let Ok(frame) = item else { break };
        let Some((leg, ts, pt, payload)) = written.get(n) else {
            panic!("the reader returned more frames than were written");
        };
        assert!(
            frame.leg == *leg
                && frame.rtp_timestamp == *ts
                && frame.payload_type == *pt
                && frame.payload == *payload,
            "the reader returned a frame that was not written at this position"
        );
        n += 1;
    }
    if intact {
        assert_eq!(n, written.len(), "an intact recording lost frames");
    }
}
