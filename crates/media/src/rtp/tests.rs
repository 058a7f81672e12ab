//! Parser properties: what the writer emits parses back to the same fields (parse ∘ write = id),
//! arbitrary bytes never panic, and every accepted packet agrees with `rtc-rtp`'s reading.

use proptest::prelude::*;
use rtc_shared::marshal::Unmarshal;

use super::*;

/// A packet assembled by hand from its parts (RFC 3550 §5.1, §5.3.1).
#[derive(Debug, Clone)]
struct Parts {
    header: RtpHeader,
    csrcs: Vec<u32>,
    extension: Option<(u16, Vec<u32>)>,
    payload: Vec<u8>,
    padding: Option<u8>,
}

impl Parts {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.header.write(&[], &mut out);
        out[0] |= u8::try_from(self.csrcs.len()).unwrap();
        for c in &self.csrcs {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, words)) = &self.extension {
            out[0] |= 0x10;
            out.extend_from_slice(&profile.to_be_bytes());
            out.extend_from_slice(&u16::try_from(words.len()).unwrap().to_be_bytes());
            for w in words {
                out.extend_from_slice(&w.to_be_bytes());
            }
        }
        out.extend_from_slice(&self.payload);
        if let Some(count) = self.padding {
            out[0] |= 0x20;
            out.extend(std::iter::repeat_n(0u8, usize::from(count) - 1));
            out.push(count);
        }
        out
    }
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        (
            any::<bool>(),
            0u8..128,
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
        ),
        prop::collection::vec(any::<u32>(), 0..=15),
        prop::option::of((any::<u16>(), prop::collection::vec(any::<u32>(), 0..8))),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::option::of(1u8..=255),
    )
        .prop_map(
            |((marker, pt, seq, ts, ssrc), csrcs, extension, payload, padding)| Parts {
                header: RtpHeader {
                    marker,
                    payload_type: pt,
                    sequence: seq,
                    timestamp: ts,
                    ssrc,
                },
                csrcs,
                extension,
                payload,
                padding,
            },
        )
}

proptest! {
    #[test]
    fn parse_of_written_packet_returns_its_parts(p in parts()) {
        let bytes = p.to_bytes();
        let view = RtpView::parse(&bytes).unwrap();
        prop_assert_eq!(view.marker(), p.header.marker);
        prop_assert_eq!(view.payload_type(), p.header.payload_type);
        prop_assert_eq!(view.sequence(), p.header.sequence);
        prop_assert_eq!(view.timestamp(), p.header.timestamp);
        prop_assert_eq!(view.ssrc(), p.header.ssrc);
        prop_assert_eq!(usize::from(view.csrc_count()), p.csrcs.len());
        prop_assert_eq!(view.has_extension(), p.extension.is_some());
        prop_assert_eq!(view.has_padding(), p.padding.is_some());
        let ext_len = p.extension.as_ref().map_or(0, |(_, w)| 4 + 4 * w.len());
        prop_assert_eq!(view.payload_offset(), 12 + 4 * p.csrcs.len() + ext_len);
        prop_assert_eq!(view.payload(), p.payload.as_slice());
        prop_assert_eq!(view.as_bytes(), bytes.as_slice());
    }

    #[test]
    fn rewrite_header_changes_only_the_fixed_fields(p in parts(), h in (any::<bool>(), 0u8..128, any::<u16>(), any::<u32>(), any::<u32>())) {
        let mut bytes = p.to_bytes();
        let new = RtpHeader { marker: h.0, payload_type: h.1, sequence: h.2, timestamp: h.3, ssrc: h.4 };
        rewrite_header(&mut bytes, &new);
        let view = RtpView::parse(&bytes).unwrap();
        prop_assert_eq!(
            (view.marker(), view.payload_type(), view.sequence(), view.timestamp(), view.ssrc()),
            h
        );
        prop_assert_eq!(view.payload(), p.payload.as_slice());
        let original = p.to_bytes();
        prop_assert_eq!(&bytes[0], &original[0]);
        prop_assert_eq!(&bytes[12..], &original[12..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_agree_with_rtc_rtp(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        check_against_rtc_rtp(&bytes)?;
    }

    #[test]
    fn mutated_packets_never_panic_and_agree_with_rtc_rtp(p in parts(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
        let mut bytes = p.to_bytes();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        check_against_rtc_rtp(&bytes)?;
    }
}

/// Every packet the strict parser accepts is one `rtc-rtp` accepts too, with the same header
/// fields and payload, unless an RFC 8285 element overruns the extension block (which
/// `to_rtc_packet` then refuses).
fn check_against_rtc_rtp(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(view) = RtpView::parse(bytes) else {
        return Ok(());
    };
    prop_assert!(view.payload_offset() <= bytes.len());
    prop_assert!(view.payload_offset() + view.payload().len() <= bytes.len());
    let mut buf = Bytes::copy_from_slice(bytes);
    let theirs = rtc_rtp::Packet::unmarshal(&mut buf);
    match view.to_rtc_packet() {
        Ok(packet) => {
            prop_assert_eq!(packet.header.ssrc, view.ssrc());
            prop_assert_eq!(packet.header.sequence_number, view.sequence());
            prop_assert_eq!(packet.header.timestamp, view.timestamp());
            prop_assert_eq!(packet.header.payload_type, view.payload_type());
            prop_assert_eq!(packet.header.marker, view.marker());
            prop_assert_eq!(packet.header.csrc.len(), usize::from(view.csrc_count()));
            prop_assert_eq!(&packet.payload[..], view.payload());
        }
        Err(RtpError::ExtensionTruncated { .. }) => {
            // rtc-rtp either refused it as well or mis-sliced the payload.
            if let Ok(p) = theirs {
                prop_assert_ne!(&p.payload[..], view.payload());
            }
        }
        Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
    }
    Ok(())
}

#[test]
fn refusals_name_each_malformation() {
    let mut base = vec![0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    assert_eq!(
        RtpView::parse(&base[..11]),
        Err(RtpError::TooShort { len: 11 })
    );
    base[0] = 0x40;
    assert_eq!(
        RtpView::parse(&base),
        Err(RtpError::BadVersion { version: 1 })
    );
    base[0] = 0x81;
    assert_eq!(
        RtpView::parse(&base),
        Err(RtpError::CsrcTruncated {
            csrc_count: 1,
            needed: 16,
            len: 12
        })
    );
    base[0] = 0x90;
    assert_eq!(
        RtpView::parse(&base),
        Err(RtpError::ExtensionTruncated {
            needed: 16,
            len: 12
        })
    );
    base[0] = 0xa0;
    assert_eq!(
        RtpView::parse(&base),
        Err(RtpError::BadPadding {
            count: 0,
            available: 0
        })
    );
    base.extend_from_slice(&[9, 9, 0]);
    assert_eq!(
        RtpView::parse(&base),
        Err(RtpError::BadPadding {
            count: 0,
            available: 3
        })
    );
    // A padding count of exactly what follows the header leaves an empty payload: valid.
    *base.last_mut().unwrap() = 3;
    assert_eq!(RtpView::parse(&base).unwrap().payload(), b"");
}

#[test]
fn classify_demultiplexes_rtcp_and_others() {
    assert_eq!(classify(&[0x80, 0x00]), PacketKind::Rtp);
    assert_eq!(
        classify(&[0x80, 0xe0]),
        PacketKind::Rtp,
        "PT 96 with marker"
    );
    assert_eq!(classify(&[0x80, 200]), PacketKind::Rtcp);
    assert_eq!(classify(&[0x81, 223]), PacketKind::Rtcp);
    assert_eq!(
        classify(&[0x00, 0x01]),
        PacketKind::Other,
        "STUN binding request"
    );
    assert_eq!(classify(&[0x16, 0xfe]), PacketKind::Other, "DTLS");
    assert_eq!(classify(&[0x80]), PacketKind::Other);
}
