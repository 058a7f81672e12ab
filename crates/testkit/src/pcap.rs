//! RTP streams as classic pcap files for sipp's `play_pcap_audio`.
//!
//! One [`RtpStream`] is one SSRC with continuous sequence numbers and timestamps, mixing
//! 20 ms G.711 frames and RFC 4733 telephone-events, as a real phone sends them (sipp's own
//! `dtmf_2833_*.pcap` use a foreign SSRC and fixed numbers, which a strict receiver must treat
//! as another stream). sipp replays each record at its capture time and rewrites the IP/UDP
//! headers, so the addresses written here do not matter.

use std::path::Path;

use crate::process::PeerError;

/// Samples per 20 ms frame at 8 kHz.
const FRAME: u32 = 160;

/// A growing RTP stream: packets with their send time.
#[derive(Debug, Clone)]
pub struct RtpStream {
    ssrc: u32,
    audio_pt: u8,
    event_pt: u8,
    seq: u16,
    ts: u32,
    /// Send time of the next packet, µs from the start.
    t_us: u64,
    marker: bool,
    packets: Vec<(u64, Vec<u8>)>,
}

impl RtpStream {
    /// A stream with this SSRC, audio payload type (0 = PCMU) and telephone-event PT.
    pub fn new(ssrc: u32, audio_pt: u8, event_pt: u8) -> Self {
        Self {
            ssrc,
            audio_pt,
            event_pt,
            seq: 1000,
            ts: 16_000,
            t_us: 0,
            marker: true,
            packets: Vec::new(),
        }
    }

    /// Appends audio, 160 bytes (20 ms) per packet; a short last chunk is padded with silence.
    pub fn audio(&mut self, ulaw: &[u8]) -> &mut Self {
        for chunk in ulaw.chunks(FRAME as usize) {
            let mut payload = chunk.to_vec();
            payload.resize(FRAME as usize, 0xff);
            let marker = std::mem::replace(&mut self.marker, false);
            self.push(self.audio_pt, marker, self.ts, &payload);
            self.ts = self.ts.wrapping_add(FRAME);
            self.t_us += 20_000;
        }
        self
    }

    /// Appends `ms` of μ-law silence.
    pub fn silence(&mut self, ms: u32) -> &mut Self {
        let n = (ms / 20 * FRAME) as usize;
        self.audio(&vec![0xff; n])
    }

    /// One key press as RFC 4733 §2.5 events: updates every 20 ms for `ms`, then three end
    /// packets carrying the final duration; all with the event's start timestamp, M=1 on the
    /// first. Audio resumes after it with the timestamp advanced by the event duration.
    pub fn digit(&mut self, key: char, ms: u32) -> Result<&mut Self, PeerError> {
        let event = event_code(key)
            .ok_or_else(|| PeerError::Protocol(format!("'{key}' is not a DTMF key")))?;
        let start = self.ts;
        let steps = (ms / 20).max(1);
        for i in 1..=steps {
            let duration = u16::try_from(i * FRAME).unwrap_or(u16::MAX);
            self.push(
                self.event_pt,
                i == 1,
                start,
                &[event, 10, (duration >> 8) as u8, duration as u8],
            );
            self.t_us += 20_000;
        }
        let duration = u16::try_from(steps * FRAME).unwrap_or(u16::MAX);
        for _ in 0..3 {
            // E bit set, volume 10 dBm0 below full scale.
            self.push(
                self.event_pt,
                false,
                start,
                &[event, 0x80 | 10, (duration >> 8) as u8, duration as u8],
            );
            self.t_us += 5_000;
        }
        self.ts = start.wrapping_add(steps * FRAME);
        self.t_us += 5_000;
        Ok(self)
    }

    /// Several keys with `gap_ms` of silence after each.
    pub fn digits(&mut self, keys: &str, ms: u32, gap_ms: u32) -> Result<&mut Self, PeerError> {
        for key in keys.chars() {
            self.digit(key, ms)?;
            self.silence(gap_ms);
        }
        Ok(self)
    }

    /// Length of the stream in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.t_us / 1000
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    fn push(&mut self, pt: u8, marker: bool, ts: u32, payload: &[u8]) {
        let mut p = Vec::with_capacity(12 + payload.len());
        p.push(0x80);
        p.push(if marker { 0x80 } else { 0 } | (pt & 0x7f));
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.packets.push((self.t_us, p));
    }

    /// Writes a classic pcap (magic a1b2c3d4, v2.4, Ethernet): per packet an Ethernet, IPv4
    /// and UDP header (127.0.0.1:6000 → 127.0.0.1:6001) around the RTP bytes.
    pub fn write_pcap(&self, path: &Path) -> Result<(), PeerError> {
        let mut out = Vec::with_capacity(24 + self.packets.len() * 230);
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&65_535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (t_us, rtp) in &self.packets {
            let udp_len = 8 + rtp.len();
            let ip_len = 20 + udp_len;
            let frame_len = 14 + ip_len;
            out.extend_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame_len as u32).to_le_bytes());
            out.extend_from_slice(&(frame_len as u32).to_le_bytes());
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&[0x08, 0x00]);
            out.extend_from_slice(&[
                0x45,
                0,
                (ip_len >> 8) as u8,
                ip_len as u8,
                0,
                0,
                0,
                0,
                64,
                17,
                0,
                0,
            ]);
            out.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
            out.extend_from_slice(&6000u16.to_be_bytes());
            out.extend_from_slice(&6001u16.to_be_bytes());
            out.extend_from_slice(&(udp_len as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(rtp);
        }
        std::fs::write(path, out).map_err(|source| PeerError::Io {
            what: format!("write {}", path.display()),
            source,
        })
    }
}

/// RFC 4733 §3.2 event code of a key.
pub fn event_code(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keeps_one_ssrc_and_continuous_numbers_across_a_digit() {
        let mut s = RtpStream::new(0x1234_5678, 0, 101);
        s.audio(&[0x55; 320]);
        s.digit('1', 100).unwrap();
        s.audio(&[0x55; 160]);
        // 2 audio + 5 updates + 3 ends + 1 audio.
        assert_eq!(s.len(), 11);
        let seqs: Vec<u16> = s
            .packets
            .iter()
            .map(|(_, p)| u16::from_be_bytes([p[2], p[3]]))
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "{seqs:?}"
        );
        assert!(
            s.packets
                .iter()
                .all(|(_, p)| p[8..12] == [0x12, 0x34, 0x56, 0x78])
        );
        let (_, first_event) = &s.packets[2];
        assert_eq!(first_event[1], 0x80 | 101, "M=1 on the first event packet");
        assert_eq!(&first_event[12..], &[1, 10, 0, 160]);
        let (_, last_end) = &s.packets[9];
        assert_eq!(
            &last_end[12..],
            &[1, 0x8a, 0x03, 0x20],
            "end flag, duration 800"
        );
        let ts = |i: usize| u32::from_be_bytes(s.packets[i].1[4..8].try_into().unwrap());
        assert_eq!(ts(2), ts(9), "one timestamp per event");
        assert_eq!(ts(10), ts(2) + 800, "audio resumes after the event");
        assert!(s.digit('x', 100).is_err());
    }

    #[test]
    fn pcap_layout_is_classic_ethernet() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = RtpStream::new(1, 0, 101);
        s.silence(40);
        let path = dir.path().join("a.pcap");
        s.write_pcap(&path).unwrap();
        let b = std::fs::read(&path).unwrap();
        assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(b.len(), 24 + 2 * (16 + 14 + 20 + 8 + 12 + 160));
        // Second record at 20 ms.
        let rec2 = 24 + 16 + 14 + 20 + 8 + 172;
        assert_eq!(
            u32::from_le_bytes(b[rec2 + 4..rec2 + 8].try_into().unwrap()),
            20_000
        );
    }
}
