//! Shared helpers of the integration tests: field-case fixtures and a two-leg session on
//! simulated time. Case addresses (192.0.2.x callers, 203.0.113.10 PBX) are mapped to loopback
//! as the fixtures README requires, although these tests open no socket.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use callseal_media::{
    Codec, LegConfig, MediaEvent, MediaSession, PayloadMap, SessionConfig, StreamInit, Transmit,
};

/// The caller's media address (192.0.2.80 of case 031, mapped to loopback).
pub const CALLER: &str = "127.0.2.80:42000";
/// The PBX's media address (203.0.113.10, mapped to loopback).
pub const PBX: &str = "127.0.113.10:30000";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// The packets of a `*.hex` field case with the comment line that describes each.
pub fn hex_case(name: &str) -> Vec<(String, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cases")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} unreadable: {e}", path.display()));
    let mut out = Vec::new();
    let mut comment = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix('#') {
            comment = c.trim().to_owned();
        } else if !line.is_empty() {
            let bytes = hex::decode(line).unwrap_or_else(|e| panic!("{name}: bad hex: {e}"));
            out.push((comment.clone(), bytes));
        }
    }
    out
}

pub fn session_config(caller: StreamInit, pbx: StreamInit) -> SessionConfig {
    SessionConfig {
        latching_window: Duration::from_secs(2),
        media_timeout: None,
        caller_stream: caller,
        pbx_stream: pbx,
    }
}

pub const CALLER_STREAM: StreamInit = StreamInit {
    ssrc: 0xCA11_E500,
    sequence: 500,
    timestamp: 1_000_000,
};
pub const PBX_STREAM: StreamInit = StreamInit {
    ssrc: 0x0B0B_0B0B,
    sequence: 40_000,
    timestamp: 7_000_000,
};

/// A session with both legs configured for plain G.711 `codec`, 20 ms.
pub fn g711_session(t0: Instant, codec: Codec) -> MediaSession {
    let mut s = MediaSession::new(session_config(CALLER_STREAM, PBX_STREAM));
    s.configure_leg(
        t0,
        callseal_media::Leg::Caller,
        LegConfig::new(Some(addr(CALLER)), PayloadMap::g711(codec)),
    )
    .expect("caller leg");
    s.configure_leg(
        t0,
        callseal_media::Leg::Pbx,
        LegConfig::new(Some(addr(PBX)), PayloadMap::g711(codec)),
    )
    .expect("pbx leg");
    s
}

pub fn drain_transmits(s: &mut MediaSession) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

pub fn drain_events(s: &mut MediaSession) -> Vec<MediaEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Fields of an RTP packet for assertions: (marker, pt, seq, ts, ssrc, payload).
pub fn fields(bytes: &[u8]) -> (bool, u8, u16, u32, u32, Vec<u8>) {
    let v = callseal_media::rtp::RtpView::parse(bytes).expect("valid RTP");
    (
        v.marker(),
        v.payload_type(),
        v.sequence(),
        v.timestamp(),
        v.ssrc(),
        v.payload().to_vec(),
    )
}

/// A plain RTP packet.
pub fn rtp(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    callseal_media::rtp::RtpHeader {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc,
    }
    .write(payload, &mut out);
    out
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A tapped frame, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub leg: callseal_media::Leg,
    pub ssrc: u32,
    pub rtp_timestamp: u32,
    pub sequence: u16,
    pub since_start: Duration,
    pub payload_type: u8,
    pub kind: callseal_media::FrameKind,
    pub payload: Vec<u8>,
}

/// A sink that keeps every frame in shared memory, and can be told to fail.
#[derive(Clone, Default)]
pub struct MemorySink {
    pub frames: std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>,
    pub fail_after: Option<usize>,
}

impl MemorySink {
    pub fn recorded(&self) -> Vec<Recorded> {
        self.frames.lock().expect("sink lock").clone()
    }
}

impl callseal_media::RecordingSink for MemorySink {
    fn push_frame(
        &mut self,
        f: &callseal_media::TapFrame<'_>,
    ) -> Result<(), callseal_media::TapSinkError> {
        let mut frames = self.frames.lock().expect("sink lock");
        if self.fail_after.is_some_and(|n| frames.len() >= n) {
            return Err(callseal_media::TapSinkError {
                reason: "disk full".into(),
            });
        }
        frames.push(Recorded {
            leg: f.leg,
            ssrc: f.ssrc,
            rtp_timestamp: f.rtp_timestamp,
            sequence: f.sequence,
            since_start: f.since_start,
            payload_type: f.payload_type,
            kind: f.kind,
            payload: f.payload.to_vec(),
        });
        Ok(())
    }
}
