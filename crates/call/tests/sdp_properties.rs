//! Properties of the SDP layer: no input makes it panic, and what the gateway writes parses
//! back to what it agreed (parse ∘ print on our own answers).

use std::net::SocketAddr;

use callseal_call::sdp::*;
use proptest::prelude::*;

fn offer_strategy() -> impl Strategy<Value = String> {
    let pt = prop_oneof![
        Just(0u16),
        Just(8),
        Just(18),
        Just(13),
        96u16..=127,
        0u16..=300
    ];
    let line = (
        prop_oneof![Just("audio"), Just("video"), Just("image")],
        prop_oneof![Just(0u16), 1024u16..65000],
        prop_oneof![
            Just("RTP/AVP"),
            Just("RTP/AVPF"),
            Just("RTP/SAVP"),
            Just("udptl")
        ],
        prop::collection::vec(pt, 1..5),
        prop::option::of(prop_oneof![
            Just("sendonly"),
            Just("recvonly"),
            Just("inactive"),
            Just("sendrecv")
        ]),
        prop::option::of(10u32..=60),
        any::<bool>(),
    );
    (prop::collection::vec(line, 1..4), any::<bool>()).prop_map(|(lines, v6)| {
        let c = if v6 {
            "IP6 2001:db8::7"
        } else {
            "IP4 192.0.2.7"
        };
        let mut s = format!("v=0\r\no=- 1 1 IN {c}\r\ns=-\r\nc=IN {c}\r\nt=0 0\r\n");
        for (kind, port, proto, pts, dir, ptime, te) in lines {
            let fmts: Vec<String> = pts.iter().map(u16::to_string).collect();
            s.push_str(&format!("m={kind} {port} {proto} {}\r\n", fmts.join(" ")));
            for p in &pts {
                if *p >= 96 && *p <= 127 {
                    let enc = if te { "telephone-event" } else { "PCMA" };
                    s.push_str(&format!("a=rtpmap:{p} {enc}/8000\r\n"));
                }
            }
            if let Some(d) = dir {
                s.push_str(&format!("a={d}\r\n"));
            }
            if let Some(p) = ptime {
                s.push_str(&format!("a=ptime:{p}\r\n"));
            }
        }
        s
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = RemoteSdp::parse(&bytes);
    }

    #[test]
    fn our_answer_parses_back_to_what_was_agreed(offer in offer_strategy()) {
        let Ok(remote) = RemoteSdp::parse(offer.as_bytes()) else { return Ok(()); };
        let policy = SdpPolicy::default();
        let Ok((family, _)) = offered_family(&remote, &policy) else { return Ok(()); };
        let ip = if family.is_ipv4() { "198.51.100.5" } else { "2001:db8::5" };
        let address: SocketAddr = SocketAddr::new(ip.parse().expect("ip"), 30010);
        let origin = SdpOrigin { session_id: 9, version: 9, address: address.ip() };
        let Ok(plan) = answer_offer(&remote, LocalMedia { address, srtp_key: None }, &policy, origin, Direction::SendRecv) else {
            return Ok(());
        };
        let bytes = plan.sdp.to_bytes();
        let back = RemoteSdp::parse(&bytes).expect("our own answer parses");
        // RFC 3264 §6: same m-line count and order, media types kept.
        prop_assert_eq!(back.media.len(), remote.media.len());
        for (a, o) in back.media.iter().zip(remote.media.iter()) {
            prop_assert_eq!(&a.kind, &o.kind);
        }
        let audio = &back.media[plan.audio_index];
        prop_assert_eq!(audio.port, 30010);
        prop_assert_eq!(audio.address, Some(address.ip()));
        prop_assert_eq!(audio.direction, plan.audio.direction);
        let ours = audio.formats.iter().find_map(|f| f.codec());
        prop_assert_eq!(ours, Some(plan.audio.codec));
        for (i, m) in back.media.iter().enumerate() {
            if i != plan.audio_index {
                prop_assert_eq!(m.port, 0);
            }
        }
    }
}
