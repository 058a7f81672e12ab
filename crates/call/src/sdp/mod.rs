//! SDP offer/answer for the two legs (RFC 3264, RFC 6337), media anchored on the gateway.
//!
//! Parsing goes through `ezk-sdp-types` after a line pre-pass of our own: the pre-pass keeps
//! every m-line's raw text (so a rejected `m=image 0 udptl t38` or `m=video 0 RTP/AVP 255` is
//! answered in place, case 017), hides streams we will not use from the strict parser (so a
//! malformed attribute on a disabled stream cannot fail the whole offer), and takes `a=crypto`
//! lines out itself so that SRTP keys only ever live in secret types.

mod codec;
mod crypto;
mod negotiate;
mod print;

use std::net::IpAddr;

use bytesstr::BytesStr;
use ezk_sdp_types::{SessionDescription, TaggedAddress};

pub use codec::{Codec, Encoding, PayloadFormat, static_format};
pub use crypto::{SdesCrypto, SrtpMasterKey, key_salt_len};
pub use negotiate::{
    AcceptedAnswer, AnswerPlan, LocalMedia, NegotiatedAudio, SdpPolicy, accept_answer,
    answer_offer, build_offer, offered_family,
};
pub use print::{LocalSdp, LocalStream, SdpOrigin};

use crate::error::SdpError;

/// Media direction from the point of view of the SDP's author (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Sends and receives (default when no attribute is present, RFC 8866 §6.7).
    #[default]
    SendRecv,
    /// Only sends.
    SendOnly,
    /// Only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The direction an answerer uses for this offered direction (RFC 3264 §6.1).
    pub fn answer(self) -> Self {
        match self {
            Self::SendRecv => Self::SendRecv,
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            Self::Inactive => Self::Inactive,
        }
    }

    /// True if the author may send media.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// True if the author wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The direction with the given send/receive flags.
    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
}

/// The transport protocol of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Proto {
    /// `RTP/AVP`.
    RtpAvp,
    /// `RTP/AVPF` (RFC 4585): plain RTP for our purposes.
    RtpAvpf,
    /// `RTP/SAVP` (SDES-keyed SRTP).
    RtpSavp,
    /// `RTP/SAVPF`.
    RtpSavpf,
    /// Anything else (`UDP/TLS/RTP/SAVP`, `udptl`, …), kept as written.
    Other(String),
}

impl Proto {
    fn from_token(t: &str) -> Self {
        match t {
            _ if t.eq_ignore_ascii_case("RTP/AVP") => Self::RtpAvp,
            _ if t.eq_ignore_ascii_case("RTP/AVPF") => Self::RtpAvpf,
            _ if t.eq_ignore_ascii_case("RTP/SAVP") => Self::RtpSavp,
            _ if t.eq_ignore_ascii_case("RTP/SAVPF") => Self::RtpSavpf,
            _ => Self::Other(t.to_owned()),
        }
    }

    /// True for the SRTP profiles keyed by SDES.
    pub fn is_srtp(&self) -> bool {
        matches!(self, Self::RtpSavp | Self::RtpSavpf)
    }

    /// True for the RTP profiles derived from RTP/AVP that we relay (static PTs apply, case 016).
    pub fn is_rtp(&self) -> bool {
        !matches!(self, Self::Other(_))
    }

    /// As written in an m-line.
    pub fn as_str(&self) -> &str {
        match self {
            Self::RtpAvp => "RTP/AVP",
            Self::RtpAvpf => "RTP/AVPF",
            Self::RtpSavp => "RTP/SAVP",
            Self::RtpSavpf => "RTP/SAVPF",
            Self::Other(s) => s,
        }
    }
}

/// One m-line of a received SDP.
#[derive(Debug)]
pub struct RemoteMedia {
    /// Media type as written (`audio`, `video`, `image`, …).
    pub kind: String,
    /// Port; 0 means the stream is disabled.
    pub port: u16,
    /// Transport protocol.
    pub proto: Proto,
    /// The format tokens as written, for echoing in a rejected m-line.
    pub raw_formats: Vec<String>,
    /// Payload formats we understood, in m-line order (empty for streams we do not use).
    pub formats: Vec<PayloadFormat>,
    /// The connection address (media-level `c=` or else session-level); `None` if absent or a
    /// host name.
    pub address: Option<IpAddr>,
    /// Declared direction (media-level, else session-level, else sendrecv).
    pub direction: Direction,
    /// `a=ptime` in ms.
    pub ptime: Option<u32>,
    /// `a=maxptime` in ms.
    pub maxptime: Option<u32>,
    /// `a=crypto` lines (secret keys inside).
    pub crypto: Vec<SdesCrypto>,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
    /// A direction attribute was present (media or session level).
    pub direction_declared: bool,
}

impl RemoteMedia {
    /// True for an audio stream with a non-zero port on an RTP profile.
    pub fn is_active_audio(&self) -> bool {
        self.kind == "audio" && self.port != 0 && self.proto.is_rtp()
    }

    /// True if the peer says "do not send to me": legacy hold `c=0.0.0.0` / `::` (RFC 3264 §8.4).
    pub fn null_address(&self) -> bool {
        self.address.is_some_and(|a| a.is_unspecified())
    }

    /// The direction the peer effectively asks for, folding legacy `c=0.0.0.0` hold in
    /// (RFC 6337 §5.4: treat it as sendonly, or inactive when the peer also declared that).
    pub fn effective_direction(&self) -> Direction {
        if self.null_address() {
            // RFC 2543 hold carries no attribute and meant "stop both ways".
            let sends = self.direction_declared && self.direction.sends();
            Direction::from_flags(sends, false)
        } else {
            self.direction
        }
    }

    /// The first telephone-event/8000 format on a dynamic PT.
    pub fn telephone_event(&self) -> Option<&PayloadFormat> {
        self.formats.iter().find(|f| f.is_telephone_event_8k())
    }
}

/// A parsed SDP body (offer or answer).
#[derive(Debug)]
pub struct RemoteSdp {
    /// `o=` session id.
    pub session_id: String,
    /// `o=` session version.
    pub session_version: String,
    /// m-lines in order.
    pub media: Vec<RemoteMedia>,
}

impl RemoteSdp {
    /// Parses an SDP body. Accepts LF or CRLF line ends and a last line without any
    /// (case 018). Never panics; the error never quotes the body.
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        parse_text(text)
    }
}

struct RawSection<'a> {
    kind: &'a str,
    port: u16,
    proto: Proto,
    fmts: Vec<&'a str>,
    crypto: Vec<SdesCrypto>,
    use_it: bool,
    direction_declared: bool,
}

fn parse_text(text: &str) -> Result<RemoteSdp, SdpError> {
    let lines = text
        .split(['\r', '\n'])
        .map(str::trim_end)
        .filter(|l| !l.is_empty());

    let mut sections: Vec<RawSection<'_>> = Vec::new();
    let mut session_direction = false;
    // What the strict parser sees: session lines, used sections verbatim, placeholders for the
    // rest so that indexes stay aligned.
    let mut filtered = String::with_capacity(text.len());
    for line in lines {
        if let Some(m) = line.strip_prefix("m=") {
            let section = raw_section(m)?;
            if section.use_it {
                filtered.push_str("m=audio ");
                filtered.push_str(&section.port.to_string());
                filtered.push(' ');
                filtered.push_str(section.proto.as_str());
                for f in usable_pts(&section.fmts) {
                    filtered.push(' ');
                    filtered.push_str(&f.to_string());
                }
                filtered.push_str("\r\n");
            } else {
                filtered.push_str("m=audio 0 RTP/AVP 0\r\n");
            }
            sections.push(section);
            continue;
        }
        let is_direction = matches!(
            line,
            "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"
        );
        match sections.last_mut() {
            Some(section) if !section.use_it => continue,
            Some(section) => {
                section.direction_declared |= is_direction;
                if let Some(value) = line.strip_prefix("a=crypto:") {
                    // Keys never reach the general parser; unusable lines are skipped.
                    if let Some(c) = SdesCrypto::parse(value) {
                        section.crypto.push(c);
                    }
                    continue;
                }
                if !attribute_pt_ok(line) {
                    continue;
                }
            }
            None => {
                session_direction |= is_direction;
                if line.starts_with("a=crypto:") {
                    continue;
                }
            }
        }
        filtered.push_str(line);
        filtered.push_str("\r\n");
    }
    if sections.is_empty() {
        return Err(SdpError::NoMedia);
    }

    let sd = SessionDescription::parse(&BytesStr::from(filtered)).map_err(|_| {
        SdpError::Unparseable {
            what: "session or audio-stream line",
        }
    })?;
    if sd.media_descriptions.len() != sections.len() {
        return Err(SdpError::Unparseable { what: "m-line" });
    }

    let session_addr = sd.connection.as_ref().and_then(|c| ip_of(&c.address));
    let mut media = Vec::with_capacity(sections.len());
    for (raw, md) in sections.into_iter().zip(sd.media_descriptions.iter()) {
        let mut rm = RemoteMedia {
            kind: raw.kind.to_owned(),
            port: raw.port,
            proto: raw.proto,
            raw_formats: raw.fmts.iter().map(|s| (*s).to_owned()).collect(),
            formats: Vec::new(),
            address: None,
            direction: Direction::SendRecv,
            ptime: None,
            maxptime: None,
            crypto: raw.crypto,
            rtcp_mux: false,
            direction_declared: raw.direction_declared || session_direction,
        };
        if raw.use_it {
            rm.address = md
                .connection
                .as_ref()
                .map_or(session_addr, |c| ip_of(&c.address));
            rm.direction = direction_of(md.direction);
            rm.rtcp_mux = md.rtcp_mux;
            rm.formats = formats_of(md);
            for a in &md.attributes {
                let value = a
                    .value
                    .as_ref()
                    .and_then(|v| v.as_str().trim().parse().ok());
                match a.name.as_str() {
                    "ptime" => rm.ptime = value.filter(|v: &u32| (1..=1000).contains(v)),
                    "maxptime" => rm.maxptime = value.filter(|v: &u32| (1..=1000).contains(v)),
                    _ => {}
                }
            }
        }
        media.push(rm);
    }

    Ok(RemoteSdp {
        session_id: sd.origin.session_id.as_str().to_owned(),
        session_version: sd.origin.session_version.as_str().to_owned(),
        media,
    })
}

fn raw_section(m: &str) -> Result<RawSection<'_>, SdpError> {
    let mut tokens = m.split_ascii_whitespace();
    let kind = tokens
        .next()
        .ok_or(SdpError::Unparseable { what: "m-line" })?;
    let port_tok = tokens
        .next()
        .ok_or(SdpError::Unparseable { what: "m-line" })?;
    // `port/number` (RFC 8866 §5.14) is not used for audio to a single peer; keep the port.
    let port: u16 = port_tok
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or(SdpError::Unparseable {
            what: "m-line port",
        })?;
    let proto = Proto::from_token(
        tokens
            .next()
            .ok_or(SdpError::Unparseable { what: "m-line" })?,
    );
    let fmts: Vec<&str> = tokens.collect();
    // Only active audio on an RTP profile with at least one valid PT is handed to the parser;
    // everything else is answered as rejected and never validated (RFC 3264 §6, case 017).
    let use_it = kind == "audio"
        && port != 0
        && proto.is_rtp()
        && !port_tok.contains('/')
        && usable_pts(&fmts).next().is_some();
    Ok(RawSection {
        kind,
        port,
        proto,
        fmts,
        crypto: Vec::new(),
        use_it,
        direction_declared: false,
    })
}

// RTP payload types are 7 bits (RFC 3550 §5.1): 255 fits a u8 but is not a PT (case 017).
fn usable_pts<'a>(fmts: &'a [&'a str]) -> impl Iterator<Item = u8> + 'a {
    fmts.iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|pt| *pt <= 127)
}

// rtpmap/fmtp lines naming an invalid PT are dropped instead of failing the parse.
fn attribute_pt_ok(line: &str) -> bool {
    let value = line
        .strip_prefix("a=rtpmap:")
        .or_else(|| line.strip_prefix("a=fmtp:"));
    match value {
        None => true,
        Some(v) => v
            .split_ascii_whitespace()
            .next()
            .and_then(|pt| pt.parse::<u8>().ok())
            .is_some_and(|pt| pt <= 127),
    }
}

fn ip_of(addr: &TaggedAddress) -> Option<IpAddr> {
    match addr {
        TaggedAddress::IP4(a) => Some(IpAddr::V4(*a)),
        TaggedAddress::IP6(a) => Some(IpAddr::V6(*a)),
        TaggedAddress::IP4FQDN(_) | TaggedAddress::IP6FQDN(_) => None,
    }
}

fn direction_of(d: ezk_sdp_types::Direction) -> Direction {
    match d {
        ezk_sdp_types::Direction::SendRecv => Direction::SendRecv,
        ezk_sdp_types::Direction::SendOnly => Direction::SendOnly,
        ezk_sdp_types::Direction::RecvOnly => Direction::RecvOnly,
        ezk_sdp_types::Direction::Inactive => Direction::Inactive,
    }
}

fn formats_of(md: &ezk_sdp_types::MediaDescription) -> Vec<PayloadFormat> {
    let mut out = Vec::new();
    for &pt in &md.media.fmts {
        let fmtp = md
            .fmtp
            .iter()
            .find(|f| f.format == pt)
            .map(|f| f.params.as_str().to_owned());
        // An explicit rtpmap wins over the static table, even for a static number (case 016).
        if let Some(map) = md.rtpmap.iter().find(|m| m.payload == pt) {
            out.push(PayloadFormat {
                pt,
                encoding: Encoding::from_name(map.encoding.as_str()),
                clock_rate: map.clock_rate,
                channels: map.params.as_ref().and_then(|p| p.as_str().parse().ok()),
                fmtp,
            });
        } else if let Some((encoding, clock_rate)) = static_format(pt) {
            out.push(PayloadFormat {
                pt,
                encoding,
                clock_rate,
                channels: None,
                fmtp,
            });
        }
        // A dynamic PT without rtpmap is unknown: left out of the answer, not an error.
    }
    out
}
