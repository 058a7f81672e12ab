//! Frames and their compact encoding inside a segment's plaintext.
//!
//! Each frame starts with a control byte:
//!
//! ```text
//! bit 0     leg (0 caller, 1 consultant)
//! bit 1     P: a payload-type byte follows
//! bit 2     T: a timestamp field follows
//! bit 3     L: a length varint follows
//! bits 4-7  arrival nibble: zigzag deviation from the expected arrival, or 15 = varint follows
//! ```
//!
//! then `[pt] [ts] [arrival varint] [len] payload`. The state that lets fields be left out is
//! reset at every segment, so each segment decodes on its own. Varints are unsigned LEB128;
//! signed values are zigzag-encoded first. Typical G.711 frames cost one byte besides the payload.

use crate::format::{MAX_FRAME_PAYLOAD, SAMPLE_RATE};
use std::time::Duration;

/// Which direction of the call a frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leg {
    /// Audio from the caller (the left channel of a stereo export).
    Caller,
    /// Audio from the consultant, through the PBX (the right channel).
    Consultant,
}

impl Leg {
    fn bit(self) -> u8 {
        match self {
            Leg::Caller => 0,
            Leg::Consultant => 1,
        }
    }

    fn index(self) -> usize {
        usize::from(self.bit())
    }
}

/// One recorded RTP frame, as given to [`crate::Writer::push_frame`] and returned by
/// [`crate::Reader`].
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// The leg the packet arrived on.
    pub leg: Leg,
    /// The RTP timestamp of the packet (RFC 3550 §5.1).
    pub rtp_timestamp: u32,
    /// Arrival time since the recording started, at millisecond resolution.
    pub arrival: Duration,
    /// The RTP payload type (0..=127).
    pub payload_type: u8,
    /// The RTP payload (plaintext audio after decryption).
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    /// Shows the metadata and the payload length, never the audio.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("leg", &self.leg)
            .field("rtp_timestamp", &self.rtp_timestamp)
            .field("arrival", &self.arrival)
            .field("payload_type", &self.payload_type)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

const P_BIT: u8 = 1 << 1;
const T_BIT: u8 = 1 << 2;
const L_BIT: u8 = 1 << 3;
const ARRIVAL_ESCAPE: u8 = 15;

/// What one leg's previous frame in the segment left behind.
#[derive(Clone, Copy, Default)]
struct LegState {
    /// (timestamp, arrival ms) of the previous frame of this leg.
    last: Option<(u32, u64)>,
    /// Timestamp delta of the last explicit T field.
    stride: Option<i32>,
    payload_type: u8,
    len: usize,
}

/// Per-segment coding state, shared by the encoder and the decoder.
#[derive(Clone, Copy, Default)]
pub(crate) struct FrameCodec {
    legs: [LegState; 2],
}

/// The largest encoding of one frame: control, pt, ts (max 5-byte varint), arrival (10-byte
/// varint), length (2-byte varint), payload.
pub(crate) const MAX_FRAME_ENCODING: usize = 1 + 1 + 5 + 10 + 2 + MAX_FRAME_PAYLOAD;

/// Where a frame is expected to arrive, given the previous frame of its leg: later by the
/// timestamp delta converted to milliseconds (floor division, at 8000 Hz).
fn expected_arrival(last_arrival: u64, ts_delta: i32) -> i64 {
    let ms = (i64::from(ts_delta) * 1000).div_euclid(i64::from(SAMPLE_RATE));
    i64::try_from(last_arrival)
        .unwrap_or(i64::MAX)
        .saturating_add(ms)
}

impl FrameCodec {
    /// Appends the encoding of a frame to `out`. The caller has checked `pt <= 127` and the
    /// payload length.
    pub(crate) fn encode(
        &mut self,
        out: &mut Vec<u8>,
        leg: Leg,
        ts: u32,
        arrival_ms: u64,
        pt: u8,
        payload: &[u8],
    ) {
        let state = &mut self.legs[leg.index()];
        let mut control = leg.bit();
        let ctrl_at = out.len();
        out.push(0);
        if state.last.is_none() || state.payload_type != pt {
            control |= P_BIT;
            out.push(pt);
        }
        let nibble;
        match state.last {
            None => {
                control |= T_BIT;
                out.extend_from_slice(&ts.to_be_bytes());
                nibble = ARRIVAL_ESCAPE;
                put_varint(out, arrival_ms);
                state.stride = None;
            }
            Some((last_ts, last_arrival)) => {
                let delta = ts.wrapping_sub(last_ts) as i32;
                if state.stride != Some(delta) {
                    control |= T_BIT;
                    put_varint(out, zigzag(i64::from(delta)));
                    state.stride = Some(delta);
                }
                let deviation = i64::try_from(arrival_ms)
                    .unwrap_or(i64::MAX)
                    .saturating_sub(expected_arrival(last_arrival, delta));
                let z = zigzag(deviation);
                if z < u64::from(ARRIVAL_ESCAPE) {
                    nibble = z as u8;
                } else {
                    nibble = ARRIVAL_ESCAPE;
                    put_varint(out, z);
                }
            }
        }
        if state.last.is_none() || state.len != payload.len() {
            control |= L_BIT;
            put_varint(out, payload.len() as u64);
        }
        out.extend_from_slice(payload);
        out[ctrl_at] = control | (nibble << 4);
        state.last = Some((ts, arrival_ms));
        state.payload_type = pt;
        state.len = payload.len();
    }

    /// Decodes the next frame from `input`, advancing it.
    pub(crate) fn decode(&mut self, input: &mut &[u8]) -> Result<Frame, &'static str> {
        let control = take_byte(input)?;
        let leg = if control & 1 == 0 {
            Leg::Caller
        } else {
            Leg::Consultant
        };
        let state = &mut self.legs[leg.index()];
        let first = state.last.is_none();
        if first && control & (P_BIT | T_BIT | L_BIT) != (P_BIT | T_BIT | L_BIT) {
            return Err("first frame of a leg lacks a payload type, timestamp or length");
        }
        let pt = if control & P_BIT != 0 {
            let pt = take_byte(input)?;
            if pt > 127 {
                return Err("payload type above 127");
            }
            pt
        } else {
            state.payload_type
        };
        let nibble = control >> 4;
        let (ts, arrival_ms) = match state.last {
            None => {
                let b = take(input, 4)?;
                let ts = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                if nibble != ARRIVAL_ESCAPE {
                    return Err("first frame of a leg lacks an absolute arrival time");
                }
                state.stride = None;
                (ts, take_varint(input)?)
            }
            Some((last_ts, last_arrival)) => {
                if control & T_BIT != 0 {
                    let delta = unzigzag(take_varint(input)?);
                    let delta = i32::try_from(delta).map_err(|_| "timestamp delta out of range")?;
                    state.stride = Some(delta);
                }
                let stride = state
                    .stride
                    .ok_or("timestamp left out before any timestamp delta")?;
                let deviation = if nibble == ARRIVAL_ESCAPE {
                    unzigzag(take_varint(input)?)
                } else {
                    unzigzag(u64::from(nibble))
                };
                let arrival = expected_arrival(last_arrival, stride)
                    .checked_add(deviation)
                    .and_then(|a| u64::try_from(a).ok())
                    .ok_or("arrival time out of range")?;
                (last_ts.wrapping_add(stride as u32), arrival)
            }
        };
        let len = if control & L_BIT != 0 {
            usize::try_from(take_varint(input)?).map_err(|_| "payload length out of range")?
        } else {
            state.len
        };
        if len > MAX_FRAME_PAYLOAD {
            return Err("payload longer than 4096 bytes");
        }
        let payload = take(input, len)?.to_vec();
        state.last = Some((ts, arrival_ms));
        state.payload_type = pt;
        state.len = len;
        Ok(Frame {
            leg,
            rtp_timestamp: ts,
            arrival: Duration::from_millis(arrival_ms),
            payload_type: pt,
            payload,
        })
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_byte(input: &mut &[u8]) -> Result<u8, &'static str> {
    let (&b, rest) = input.split_first().ok_or("frame cut short")?;
    *input = rest;
    Ok(b)
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    let (head, rest) = input.split_at_checked(n).ok_or("frame cut short")?;
    *input = rest;
    Ok(head)
}

fn take_varint(input: &mut &[u8]) -> Result<u64, &'static str> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = take_byte(input)?;
        let bits = u64::from(b & 0x7f);
        if shift == 63 && bits > 1 {
            return Err("varint overflows 64 bits");
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(leg: Leg, ts: u32, ms: u64, pt: u8, payload: &[u8]) -> Frame {
        Frame {
            leg,
            rtp_timestamp: ts,
            arrival: Duration::from_millis(ms),
            payload_type: pt,
            payload: payload.to_vec(),
        }
    }

    fn encode_all(frames: &[Frame]) -> Vec<u8> {
        let mut codec = FrameCodec::default();
        let mut out = Vec::new();
        for f in frames {
            let ms = u64::try_from(f.arrival.as_millis()).unwrap();
            codec.encode(
                &mut out,
                f.leg,
                f.rtp_timestamp,
                ms,
                f.payload_type,
                &f.payload,
            );
        }
        out
    }

    fn decode_all(mut bytes: &[u8]) -> Result<Vec<Frame>, &'static str> {
        let mut codec = FrameCodec::default();
        let mut out = Vec::new();
        while !bytes.is_empty() {
            out.push(codec.decode(&mut bytes)?);
        }
        Ok(out)
    }

    #[test]
    fn steady_g711_costs_one_byte_per_frame() {
        let p = [0x55u8; 160];
        let frames: Vec<Frame> = (0..50u32)
            .map(|i| frame(Leg::Caller, 1000 + 160 * i, 20 * u64::from(i) + 3, 8, &p))
            .collect();
        let bytes = encode_all(&frames);
        // First frame: ctrl, pt, ts(4), arrival(1), len(2); second: + ts delta (2 bytes).
        assert_eq!(bytes.len(), 50 * 160 + (1 + 1 + 4 + 1 + 2) + (1 + 2) + 48);
        assert_eq!(decode_all(&bytes).unwrap(), frames);
    }

    #[test]
    fn exact_bytes_of_a_small_sequence() {
        let frames = [
            frame(Leg::Caller, 0x0102_0304, 300, 0, &[0xaa]),
            frame(Leg::Consultant, 7, 301, 8, &[]),
            frame(Leg::Caller, 0x0102_0304 + 160, 321, 0, &[0xbb]),
        ];
        let bytes = encode_all(&frames);
        let expected: Vec<u8> = vec![
            0xfe, 0x00, 0x01, 0x02, 0x03, 0x04, 0xac, 0x02, 0x01, 0xaa, // caller, arrival 300
            0xff, 0x08, 0x00, 0x00, 0x00, 0x07, 0xad, 0x02, 0x00, // consultant, arrival 301
            0x24, 0xc0, 0x02, 0xbb, // caller: T + delta 160, deviation +1 → nibble 2
        ];
        assert_eq!(hex::encode(&bytes), hex::encode(&expected));
        assert_eq!(decode_all(&bytes).unwrap(), frames);
    }

    #[test]
    fn wrapping_jumps_and_late_arrivals_round_trip() {
        let frames = [
            frame(Leg::Consultant, u32::MAX - 100, 0, 13, &[1]),
            frame(Leg::Consultant, 59, 1000, 13, &[2, 3]),
            frame(Leg::Consultant, 219, 900, 0, &[2, 3]),
            frame(Leg::Consultant, 379, 5_000_000, 0, &[2, 3]),
            frame(Leg::Consultant, 100, 5_000_001, 0, &[4]),
            frame(Leg::Caller, 5, u64::from(u32::MAX) * 10, 101, &[9; 4096]),
        ];
        let bytes = encode_all(&frames);
        assert_eq!(decode_all(&bytes).unwrap(), frames);
    }

    #[test]
    fn malformed_input_is_refused() {
        // Cut anywhere inside a valid encoding.
        let frames = [
            frame(Leg::Caller, 1, 2, 0, &[1, 2, 3]),
            frame(Leg::Caller, 161, 22, 0, &[1, 2, 3]),
        ];
        let bytes = encode_all(&frames);
        for cut in 1..bytes.len() {
            if cut == 11 {
                continue; // a frame boundary
            }
            assert!(decode_all(&bytes[..cut]).is_err(), "cut at {cut} accepted");
        }
        // First frame without T.
        assert!(decode_all(&[0xfa, 0, 0, 0]).is_err());
        // Payload type 128.
        assert!(decode_all(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0]).is_err());
        // Over-long varint.
        assert!(
            decode_all(&[
                0xfe, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0
            ])
            .is_err()
        );
        // Length above the maximum.
        let mut big = vec![0xfe, 0, 0, 0, 0, 0, 0];
        put_varint(&mut big, 4097);
        big.extend(std::iter::repeat_n(0, 4097));
        assert_eq!(decode_all(&big), Err("payload longer than 4096 bytes"));
        // Second frame leaving out T before any delta.
        let mut bytes = encode_all(&frames[..1]);
        bytes.extend_from_slice(&[0x00]);
        assert_eq!(
            decode_all(&bytes),
            Err("timestamp left out before any timestamp delta")
        );
    }

    #[test]
    fn zigzag_and_varint_edges() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        for v in [0u64, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut s = &out[..];
            assert_eq!(take_varint(&mut s).unwrap(), v);
            assert!(s.is_empty());
        }
    }
}
