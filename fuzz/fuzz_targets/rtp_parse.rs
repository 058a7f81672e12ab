//! The RTP parser and the media core's per-packet path on arbitrary datagrams: no panic, no
//! out-of-bounds slice, and every accepted packet's payload lies inside the datagram and agrees
//! with `rtc-rtp`'s structured reading where that one succeeds.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use callseal_media::dtmf::TelephoneEvent;
use callseal_media::rtp::{self, RtpView};
use callseal_media::{
    Codec, InbandDtmf, Leg, LegConfig, MediaSession, PayloadMap, SessionConfig, SrtpConfig,
    SrtpKeyMaterial, SrtpSuite, StreamInit,
};
use libfuzzer_sys::fuzz_target;

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn session() -> MediaSession {
    let t0 = t0();
    let mut s = MediaSession::new(SessionConfig {
        latching_window: Duration::from_secs(2),
        media_timeout: Some(Duration::from_secs(1)),
        caller_stream: StreamInit { ssrc: 1, sequence: 65_530, timestamp: u32::MAX - 500 },
        pbx_stream: StreamInit { ssrc: 2, sequence: 0, timestamp: 0 },
    });
    let caller = PayloadMap::g711(Codec::Pcmu).with_telephone_event(96).with_comfort_noise(13);
    let pbx = PayloadMap::g711(Codec::Pcma);
    let mut a = LegConfig::new(Some(SocketAddr::from(([127, 0, 2, 1], 4000))), caller);
    a.inband_dtmf = InbandDtmf::On;
    let mut b = LegConfig::new(Some(SocketAddr::from(([127, 0, 113, 1], 5000))), pbx);
    // The PBX leg is SDES-SRTP, so the header check before decryption is exercised too.
    let key = |byte| SrtpKeyMaterial::from_bytes(SrtpSuite::AesCm128HmacSha1_80, &[byte; 30]);
    if let (Ok(inbound), Ok(outbound)) = (key(1), key(2)) {
        b.srtp = Some(SrtpConfig { inbound, outbound });
    }
    if s.configure_leg(t0, Leg::Caller, a).is_err() || s.configure_leg(t0, Leg::Pbx, b).is_err() {
        panic!("fuzz session setup failed");
    }
    s.set_bridge(true);
    s
}

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = RtpView::parse(data) {
        let start = view.payload_offset();
        assert!(start <= data.len());
        assert!(start + view.payload().len() <= data.len());
        assert_eq!(rtp::header_len(data), Ok(start));
        if let Ok(packet) = view.to_rtc_packet() {
            assert_eq!(packet.header.ssrc, view.ssrc());
            assert_eq!(packet.header.sequence_number, view.sequence());
            assert_eq!(&packet.payload[..], view.payload());
        }
        let _ = TelephoneEvent::parse(view.payload());
    }
    let _ = rtp::rtcp::parse_rtcp(data);

    // The whole per-packet path, split into datagrams at 0xFF bytes, on both legs.
    let mut s = session();
    let t0 = t0();
    for (i, datagram) in data.split(|&b| b == 0xff).enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        let (leg, from) = if i % 2 == 0 {
            (Leg::Caller, SocketAddr::from(([127, 0, 2, 1], 4000)))
        } else {
            (Leg::Pbx, SocketAddr::from(([127, 0, 113, 1], 5000)))
        };
        s.handle_packet(now, leg, from, datagram);
        s.handle_timeout(now);
        while let Some(t) = s.poll_transmit() {
            // Towards the SRTP leg the tag follows the packet; the header stays valid RTP.
            assert!(rtp::header_len(&t.payload).is_ok(), "the core emits only valid RTP");
            if t.leg == Leg::Caller {
                assert!(RtpView::parse(&t.payload).is_ok(), "the core emits only valid RTP");
            }
            s.recycle(t.payload);
        }
        while s.poll_event().is_some() {}
    }
});
