//! Wire formats the generator sends: G.711 PCMU RTP packets that carry a probe
//! (stream id, sequence, send time) inside the 160-byte payload, and RFC 4733
//! telephone-event packets for the consent digit.
//!
//! The probe lives in the payload, not in the RTP header, because a media relay may
//! rewrite SSRC, sequence numbers and timestamps (RFC 3550 §7), but forwards the
//! payload of an un-transcoded G.711 stream unchanged.

/// RTP fixed header length (RFC 3550 §5.1), no CSRC, no extension.
pub const RTP_HEADER_LEN: usize = 12;
/// 20 ms of 8 kHz G.711: 160 samples, one byte each.
pub const PCMU_PAYLOAD_LEN: usize = 160;
/// Full probe packet length on the wire (UDP payload).
pub const PACKET_LEN: usize = RTP_HEADER_LEN + PCMU_PAYLOAD_LEN;
/// Static payload type of PCMU (RFC 3551 §6, table 4).
pub const PT_PCMU: u8 = 0;
/// Dynamic payload type the harness offers for telephone-event.
pub const PT_TELEPHONE_EVENT: u8 = 101;

const MAGIC: [u8; 4] = *b"CSLB";
const PROBE_LEN: usize = 4 + 4 + 4 + 8;
/// mu-law encodes silence as 0xFF; the rest of each payload is silence.
const PCMU_SILENCE: u8 = 0xFF;

/// What the receiver learns from one probe packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub stream: u32,
    pub seq: u32,
    /// CLOCK_REALTIME nanoseconds at send, the clock SO_TIMESTAMPNS uses.
    pub sent_ns: u64,
}

/// Writes a complete probe packet into `buf` (which must be `PACKET_LEN` long).
pub fn write_probe(buf: &mut [u8; PACKET_LEN], ssrc: u32, probe: Probe) {
    buf[0] = 0x80; // V=2, no padding, no extension, CC=0
    buf[1] = PT_PCMU;
    buf[2..4].copy_from_slice(&(probe.seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(
        &probe
            .seq
            .wrapping_mul(PCMU_PAYLOAD_LEN as u32)
            .to_be_bytes(),
    );
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let p = &mut buf[RTP_HEADER_LEN..];
    p[0..4].copy_from_slice(&MAGIC);
    p[4..8].copy_from_slice(&probe.stream.to_be_bytes());
    p[8..12].copy_from_slice(&probe.seq.to_be_bytes());
    p[12..20].copy_from_slice(&probe.sent_ns.to_be_bytes());
    p[PROBE_LEN..].fill(PCMU_SILENCE);
}

/// Only the send time changes between packets of a batch; rewriting it in place
/// keeps the stamp as close to the `sendmmsg` call as possible.
pub fn restamp(buf: &mut [u8; PACKET_LEN], sent_ns: u64) {
    buf[RTP_HEADER_LEN + 12..RTP_HEADER_LEN + 20].copy_from_slice(&sent_ns.to_be_bytes());
}

/// Reads the probe from a received datagram. Anything else (a prompt played by the
/// system under test, RTCP, a telephone-event) yields `None`. The RTP header length
/// is computed from the header itself so a relay that adds CSRCs or an extension
/// (RFC 3550 §5.3.1) does not hide the probe.
pub fn read_probe(datagram: &[u8]) -> Option<Probe> {
    let first = *datagram.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(first & 0x0F) * 4;
    let mut off = RTP_HEADER_LEN + csrc;
    if first & 0x10 != 0 {
        let ext = datagram.get(off + 2..off + 4)?;
        let words = usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        off += 4 + words * 4;
    }
    let p = datagram.get(off..off + PROBE_LEN)?;
    if p[0..4] != MAGIC {
        return None;
    }
    Some(Probe {
        stream: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        seq: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        sent_ns: u64::from_be_bytes([p[12], p[13], p[14], p[15], p[16], p[17], p[18], p[19]]),
    })
}

/// The packets of one RFC 4733 digit press: three updates 20 ms apart in media
/// time, then the end packet sent three times (RFC 4733 §2.5.1.4), all with the
/// event's start timestamp (§2.5.1.2). `seq0`/`ts0` continue the audio stream's
/// numbering so a receiver that tracks the SSRC sees one stream.
pub fn digit_packets(digit: u8, ssrc: u32, seq0: u16, ts0: u32) -> Vec<[u8; 16]> {
    const VOLUME: u8 = 10; // -10 dBm0, what common phones send
    let mut out = Vec::with_capacity(6);
    for i in 0..6u16 {
        let end = i >= 3;
        let duration: u16 = if end { 640 } else { 160 * (i + 1) };
        let mut b = [0u8; 16];
        b[0] = 0x80;
        // RFC 4733 §2.5.1.1: the marker bit starts a new event.
        b[1] = PT_TELEPHONE_EVENT | if i == 0 { 0x80 } else { 0 };
        b[2..4].copy_from_slice(&seq0.wrapping_add(i).to_be_bytes());
        b[4..8].copy_from_slice(&ts0.to_be_bytes());
        b[8..12].copy_from_slice(&ssrc.to_be_bytes());
        b[12] = digit;
        b[13] = if end { 0x80 | VOLUME } else { VOLUME };
        b[14..16].copy_from_slice(&duration.to_be_bytes());
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_round_trips_through_a_plain_rtp_header() {
        let mut buf = [0u8; PACKET_LEN];
        let probe = Probe {
            stream: 77,
            seq: 70_000,
            sent_ns: 1_700_000_000_123_456_789,
        };
        write_probe(&mut buf, 0xDEAD_BEEF, probe);
        assert_eq!(read_probe(&buf), Some(probe));
        assert_eq!(&buf[2..4], &(70_000u32 as u16).to_be_bytes());
        assert_eq!(buf[PACKET_LEN - 1], 0xFF);
        restamp(&mut buf, 42);
        assert_eq!(read_probe(&buf).map(|p| p.sent_ns), Some(42));
    }

    #[test]
    fn probe_is_found_behind_csrcs_and_a_header_extension() {
        let mut plain = [0u8; PACKET_LEN];
        let probe = Probe {
            stream: 3,
            seq: 9,
            sent_ns: 5,
        };
        write_probe(&mut plain, 1, probe);
        // One CSRC, X bit, a one-word extension: 12 + 4 + 4 + 4 header bytes.
        let mut grown = Vec::from(&plain[..RTP_HEADER_LEN]);
        grown[0] = 0x80 | 0x10 | 0x01;
        grown.extend_from_slice(&[0, 0, 0, 9]);
        grown.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]);
        grown.extend_from_slice(&plain[RTP_HEADER_LEN..]);
        assert_eq!(read_probe(&grown), Some(probe));
    }

    #[test]
    fn foreign_and_truncated_packets_are_not_probes() {
        let mut buf = [0u8; PACKET_LEN];
        write_probe(
            &mut buf,
            1,
            Probe {
                stream: 1,
                seq: 1,
                sent_ns: 1,
            },
        );
        assert_eq!(read_probe(&buf[..RTP_HEADER_LEN + 10]), None);
        let mut prompt = buf;
        prompt[RTP_HEADER_LEN..].fill(0x7F);
        assert_eq!(read_probe(&prompt), None);
        let mut v1 = buf;
        v1[0] = 0x40;
        assert_eq!(read_probe(&v1), None);
        assert_eq!(read_probe(&[]), None);
    }

    #[test]
    fn digit_packets_follow_rfc4733_update_then_end() {
        let pkts = digit_packets(1, 0xABCD, 65_534, 8000);
        assert_eq!(pkts.len(), 6);
        assert_eq!(pkts[0][1], 0x80 | 101, "marker on the first packet only");
        assert_eq!(pkts[1][1], 101);
        assert_eq!(&pkts[1][2..4], &65_535u16.to_be_bytes());
        assert_eq!(&pkts[2][2..4], &0u16.to_be_bytes(), "sequence wraps");
        for p in &pkts {
            assert_eq!(&p[4..8], &8000u32.to_be_bytes(), "one timestamp per event");
            assert_eq!(p[12], 1);
        }
        assert_eq!(pkts[2][13] & 0x80, 0);
        assert_eq!(pkts[3][13] & 0x80, 0x80, "E bit on the end packets");
        assert_eq!(&pkts[5][14..16], &640u16.to_be_bytes());
    }
}
