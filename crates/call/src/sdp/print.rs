//! The SDP the gateway writes (answers to callers, offers and answers towards the PBX).

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Direction, PayloadFormat, Proto, SdesCrypto};

/// The `o=` line of one leg: session id fixed for the leg, version incremented on every new
/// SDP the gateway sends on it (RFC 3264 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpOrigin {
    /// Session id.
    pub session_id: u64,
    /// Session version.
    pub version: u64,
    /// The gateway's address on this leg.
    pub address: IpAddr,
}

/// One m-line the gateway writes.
#[derive(Debug)]
pub enum LocalStream {
    /// A stream answered with port 0, its media type, protocol and formats copied from the offer
    /// (RFC 3264 §6: the answer keeps the m-line count and order).
    Rejected {
        /// Media type as offered.
        kind: String,
        /// Protocol as offered.
        proto: String,
        /// Formats as offered (at least one is written).
        formats: Vec<String>,
    },
    /// The anchored audio stream.
    Audio {
        /// The gateway's RTP port on this leg.
        port: u16,
        /// RTP/AVP or, with SDES, RTP/SAVP.
        proto: Proto,
        /// Formats with their rtpmap (always written, even for static PTs: RFC 3264 §6.1).
        formats: Vec<PayloadFormat>,
        /// The packetisation the gateway wants to receive.
        ptime: Option<u32>,
        /// The gateway's direction.
        direction: Direction,
        /// The gateway's own SDES key for what it sends.
        crypto: Option<SdesCrypto>,
    },
}

/// A complete SDP body written by the gateway. `Debug` redacts keys; there is deliberately no
/// `Display`: the text is produced only for the wire with [`LocalSdp::to_bytes`].
#[derive(Debug)]
pub struct LocalSdp {
    /// `o=` line.
    pub origin: SdpOrigin,
    /// Streams in m-line order.
    pub streams: Vec<LocalStream>,
}

impl LocalSdp {
    /// The body, CRLF-terminated lines (RFC 8866 §5).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512);
        let ip = ip_token(self.origin.address);
        // write! to a String cannot fail.
        let _ = write!(
            s,
            "v=0\r\no=- {} {} IN {ip}\r\ns=-\r\nc=IN {ip}\r\nt=0 0\r\n",
            self.origin.session_id, self.origin.version
        );
        for stream in &self.streams {
            match stream {
                LocalStream::Rejected {
                    kind,
                    proto,
                    formats,
                } => {
                    let _ = write!(s, "m={kind} 0 {proto}");
                    if formats.is_empty() {
                        s.push_str(" 0");
                    }
                    for f in formats {
                        let _ = write!(s, " {f}");
                    }
                    s.push_str("\r\n");
                }
                LocalStream::Audio {
                    port,
                    proto,
                    formats,
                    ptime,
                    direction,
                    crypto,
                } => {
                    let _ = write!(s, "m=audio {port} {}", proto.as_str());
                    for f in formats {
                        let _ = write!(s, " {}", f.pt);
                    }
                    s.push_str("\r\n");
                    for f in formats {
                        let _ = write!(s, "a=rtpmap:{} {}/{}", f.pt, f.encoding, f.clock_rate);
                        if let Some(ch) = f.channels {
                            let _ = write!(s, "/{ch}");
                        }
                        s.push_str("\r\n");
                        if let Some(p) = &f.fmtp {
                            let _ = write!(s, "a=fmtp:{} {p}\r\n", f.pt);
                        }
                    }
                    if let Some(c) = crypto {
                        let _ = write!(s, "a=crypto:{}\r\n", c.to_attribute_value().as_str());
                    }
                    if let Some(p) = ptime {
                        let _ = write!(s, "a=ptime:{p}\r\n");
                    }
                    let _ = write!(s, "a={}\r\n", direction.as_str());
                }
            }
        }
        let bytes = s.as_bytes().to_vec();
        // The text held our SRTP key when SDES is used: do not leave it in freed memory.
        zeroize::Zeroize::zeroize(&mut s);
        bytes
    }

    /// Sets the direction of the audio stream (re-offers for hold and resume, RFC 3264 §8.4).
    pub fn set_audio_direction(&mut self, d: Direction) {
        for s in &mut self.streams {
            if let LocalStream::Audio { direction, .. } = s {
                *direction = d;
            }
        }
    }

    /// The direction of the audio stream, if any.
    pub fn audio_direction(&self) -> Option<Direction> {
        self.streams.iter().find_map(|s| match s {
            LocalStream::Audio { direction, .. } => Some(*direction),
            LocalStream::Rejected { .. } => None,
        })
    }

    /// The audio stream's port, if any.
    pub fn audio_port(&self) -> Option<u16> {
        self.streams.iter().find_map(|s| match s {
            LocalStream::Audio { port, .. } => Some(*port),
            LocalStream::Rejected { .. } => None,
        })
    }
}

fn ip_token(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("IP4 {a}"),
        IpAddr::V6(a) => format!("IP6 {a}"),
    }
}
