//! Bridging an SDES-SRTP caller leg to a plain RTP PBX leg, with a simulated SRTP peer built
//! from independent contexts: both directions, the outgoing sequence wrap (rollover counter of
//! the rewritten stream), a re-INVITE with unchanged keys, forged and replayed packets.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Instant;

use callseal_media::srtp::{Direction, SrtpContext};
use callseal_media::{
    Codec, Leg, LegConfig, MediaEvent, MediaSession, PayloadMap, SrtpConfig, SrtpKeyMaterial,
    SrtpSuite, StreamInit,
};
use common::*;

const PEER_KEY: [u8; 30] = [0x11; 30];
const GATEWAY_KEY: [u8; 30] = [0x22; 30];

fn key(bytes: &[u8; 30]) -> SrtpKeyMaterial {
    SrtpKeyMaterial::from_bytes(SrtpSuite::AesCm128HmacSha1_80, bytes).unwrap()
}

fn caller_config() -> LegConfig {
    let mut c = LegConfig::new(Some(addr(CALLER)), PayloadMap::g711(Codec::Pcmu));
    c.srtp = Some(SrtpConfig {
        inbound: key(&PEER_KEY),
        outbound: key(&GATEWAY_KEY),
    });
    c
}

/// The gateway's caller stream starts just below the sequence wrap.
const NEAR_WRAP: StreamInit = StreamInit {
    ssrc: 0x5EC0_5EC0,
    sequence: 65_533,
    timestamp: 1_000,
};

fn session(t0: Instant) -> MediaSession {
    let mut s = MediaSession::new(session_config(NEAR_WRAP, PBX_STREAM));
    s.configure_leg(t0, Leg::Caller, caller_config()).unwrap();
    s.configure_leg(
        t0,
        Leg::Pbx,
        LegConfig::new(Some(addr(PBX)), PayloadMap::g711(Codec::Pcmu)),
    )
    .unwrap();
    s.set_bridge(true);
    s
}

#[test]
fn srtp_caller_to_plain_pbx_and_back_across_the_sequence_wrap() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer_tx = SrtpContext::new(&key(&PEER_KEY), Direction::Outbound).unwrap();
    let mut peer_rx = SrtpContext::new(&key(&GATEWAY_KEY), Direction::Inbound).unwrap();

    // Caller → PBX: decrypted at the gateway, plain towards the PBX.
    for seq in 0..3u16 {
        let plain = rtp(
            seq == 0,
            0,
            100 + seq,
            160 * u32::from(seq),
            0xCA11,
            &[seq as u8; 160],
        );
        let protected = peer_tx.protect_rtp(&plain).unwrap();
        assert_ne!(
            protected[12..172],
            plain[12..172],
            "payload is encrypted on the wire"
        );
        s.handle_packet(
            t0 + ms(20 * u64::from(seq)),
            Leg::Caller,
            addr(CALLER),
            &protected,
        );
    }
    let to_pbx = drain_transmits(&mut s);
    assert_eq!(to_pbx.len(), 3);
    for (i, t) in to_pbx.iter().enumerate() {
        assert_eq!(t.leg, Leg::Pbx);
        let f = fields(&t.payload);
        assert_eq!(f.5, vec![i as u8; 160]);
        assert_eq!(t.payload.len(), 172, "no SRTP tag towards the plain leg");
    }
    assert_eq!(s.latched_peer(Leg::Caller), Some(addr(CALLER)));

    // PBX → caller: 8 packets; the rewritten sequence crosses 65535 → 0, so the gateway's
    // outbound ROC must step to 1 for the peer to authenticate packets 4..8.
    for seq in 0..8u16 {
        let plain = rtp(
            false,
            0,
            7000 + seq,
            50_000 + 160 * u32::from(seq),
            0xB0B,
            &[0x40 + seq as u8; 160],
        );
        s.handle_packet(
            t0 + ms(100 + 20 * u64::from(seq)),
            Leg::Pbx,
            addr(PBX),
            &plain,
        );
    }
    let to_caller = drain_transmits(&mut s);
    assert_eq!(to_caller.len(), 8);
    let mut seqs = Vec::new();
    for (i, t) in to_caller.iter().enumerate() {
        assert_eq!(t.destination, addr(CALLER));
        assert_eq!(t.payload.len(), 172 + 10, "80-bit tag");
        let plain = peer_rx.unprotect_rtp(&t.payload).unwrap();
        let f = fields(&plain);
        assert_eq!(f.5, vec![0x40 + i as u8; 160]);
        assert_eq!(f.4, NEAR_WRAP.ssrc);
        seqs.push(f.2);
    }
    assert_eq!(seqs, [65_533, 65_534, 65_535, 0, 1, 2, 3, 4]);

    // A re-INVITE that keeps the keys keeps the contexts: ROC 1 continues.
    s.configure_leg(t0 + ms(400), Leg::Caller, caller_config())
        .unwrap();
    s.handle_packet(
        t0 + ms(420),
        Leg::Pbx,
        addr(PBX),
        &rtp(false, 0, 7008, 51_280, 0xB0B, &[9; 160]),
    );
    let after = drain_transmits(&mut s);
    assert_eq!(after.len(), 1);
    assert_eq!(
        fields(&peer_rx.unprotect_rtp(&after[0].payload).unwrap()).5,
        vec![9; 160]
    );
    // The peer's stream also keeps its replay window: an old packet is still a replay.
    let replayed = peer_tx
        .protect_rtp(&rtp(false, 0, 103, 480, 0xCA11, &[3; 160]))
        .unwrap();
    s.handle_packet(t0 + ms(440), Leg::Caller, addr(CALLER), &replayed);
    s.handle_packet(t0 + ms(441), Leg::Caller, addr(CALLER), &replayed);
    assert_eq!(s.stats(Leg::Caller).dropped_srtp, 1);
}

#[test]
fn forged_srtp_neither_latches_nor_passes() {
    let t0 = Instant::now();
    let mut s = session(t0);
    // Plain RTP on an SRTP leg, and SRTP under the wrong key, from an address inside the
    // latching window: both fail authentication, and neither latches.
    let plain = rtp(true, 0, 1, 0, 0xBAD, &[0; 160]);
    s.handle_packet(t0, Leg::Caller, addr("127.0.9.9:4000"), &plain);
    let mut wrong = SrtpContext::new(&key(&[0x33; 30]), Direction::Outbound).unwrap();
    let forged = wrong.protect_rtp(&plain).unwrap();
    s.handle_packet(t0, Leg::Caller, addr("127.0.9.9:4000"), &forged);
    // A truncated header is caught before the SRTP library sees it.
    s.handle_packet(t0, Leg::Caller, addr("127.0.9.9:4000"), &forged[..10]);
    let st = s.stats(Leg::Caller);
    assert_eq!(st.dropped_srtp, 2);
    assert_eq!(st.malformed, 1);
    assert_eq!(s.latched_peer(Leg::Caller), None);
    assert!(
        !drain_events(&mut s)
            .iter()
            .any(|e| matches!(e, MediaEvent::Latched { .. }))
    );
    assert!(drain_transmits(&mut s).is_empty());
}

#[test]
fn srtcp_from_the_peer_is_authenticated_and_counted() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut peer_tx = SrtpContext::new(&key(&PEER_KEY), Direction::Outbound).unwrap();
    let rr = hex::decode("80c9000100000ca1").unwrap();
    let protected = peer_tx.protect_rtcp(&rr).unwrap();
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &protected);
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &rr);
    let st = s.stats(Leg::Caller);
    assert_eq!(st.rtcp_received, 1);
    assert_eq!(st.dropped_srtp, 1);
}

#[test]
fn a_bad_key_is_a_configuration_error() {
    let t0 = Instant::now();
    let err = SrtpKeyMaterial::from_bytes(SrtpSuite::AesCm128HmacSha1_80, &[0; 16])
        .err()
        .unwrap();
    assert!(err.to_string().contains("30 bytes"), "{err}");
    // A GCM key through the whole session setup works too.
    let gcm = |b: u8| SrtpKeyMaterial::from_bytes(SrtpSuite::AeadAes128Gcm, &[b; 28]).unwrap();
    let mut c = LegConfig::new(Some(addr(CALLER)), PayloadMap::g711(Codec::Pcmu));
    c.srtp = Some(SrtpConfig {
        inbound: gcm(1),
        outbound: gcm(2),
    });
    let mut s = MediaSession::new(session_config(NEAR_WRAP, PBX_STREAM));
    s.configure_leg(t0, Leg::Caller, c).unwrap();
    let mut peer = SrtpContext::new(&gcm(1), Direction::Outbound).unwrap();
    let p = peer.protect_rtp(&rtp(true, 0, 1, 0, 5, &[1; 160])).unwrap();
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &p);
    assert_eq!(s.stats(Leg::Caller).packets_received, 1);
}

/// Found by the rtp_parse fuzz target: a valid-length one-byte extension block whose elements
/// `rtc-rtp` re-measures as 68 bytes instead of the declared 64 made `rtc-srtp` slice out of
/// bounds when the packet was relayed to an SRTP leg.
const NON_CANONICAL_EXTENSION: &str = concat!(
    "9000fd680000410011223344bede001070707070707070703030303030303030",
    "3030303030307070707070707070707070700030303030303030303030303030",
    "30303030303030303030303030303080e8",
);

#[test]
fn fuzz_non_canonical_extension_relayed_to_an_srtp_leg_does_not_panic() {
    let packet = hex::decode(NON_CANONICAL_EXTENSION).unwrap();
    assert_eq!(
        callseal_media::rtp::RtpView::parse(&packet)
            .unwrap()
            .payload(),
        &[0xe8]
    );
    // Plain caller → SRTP PBX.
    let t0 = Instant::now();
    let mut s = MediaSession::new(session_config(CALLER_STREAM, NEAR_WRAP));
    s.configure_leg(
        t0,
        Leg::Caller,
        LegConfig::new(Some(addr(CALLER)), PayloadMap::g711(Codec::Pcmu)),
    )
    .unwrap();
    let mut pbx = LegConfig::new(Some(addr(PBX)), PayloadMap::g711(Codec::Pcmu));
    pbx.srtp = Some(SrtpConfig {
        inbound: key(&PEER_KEY),
        outbound: key(&GATEWAY_KEY),
    });
    s.configure_leg(t0, Leg::Pbx, pbx).unwrap();
    s.set_bridge(true);
    s.handle_packet(t0, Leg::Caller, addr(CALLER), &packet);
    let sent = drain_transmits(&mut s);
    assert_eq!(sent.len(), 1);
    let mut peer_rx = SrtpContext::new(&key(&GATEWAY_KEY), Direction::Inbound).unwrap();
    let plain = peer_rx.unprotect_rtp(&sent[0].payload).unwrap();
    assert_eq!(fields(&plain).5, vec![0xe8], "relayed with a plain header");
    // The contexts themselves refuse such a header instead of panicking.
    let mut ctx = SrtpContext::new(&key(&PEER_KEY), Direction::Outbound).unwrap();
    let err = ctx.protect_rtp(&packet).unwrap_err();
    assert!(err.to_string().contains("canonical"), "{err}");
    let mut rx = SrtpContext::new(&key(&PEER_KEY), Direction::Inbound).unwrap();
    assert!(rx.unprotect_rtp(&packet).is_err());
}
