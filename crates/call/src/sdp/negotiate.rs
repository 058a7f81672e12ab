//! Offer/answer decisions (RFC 3264 §5–§8, RFC 6337) for one leg with media anchored on the
//! gateway: the peer always talks to the gateway's own address and port on that leg.

use std::net::{IpAddr, SocketAddr};

use super::{
    Codec, Direction, Encoding, LocalSdp, LocalStream, PayloadFormat, Proto, RemoteSdp,
    SdesCrypto, SdpOrigin, SrtpMasterKey, key_salt_len,
};
use crate::error::SdpError;

/// What the gateway accepts and offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpPolicy {
    /// Codecs the gateway relays, in its own order of preference for offers.
    pub codecs: Vec<Codec>,
    /// Accept SDES-keyed `RTP/SAVP` from callers (only if the media engine has SRTP).
    pub srtp: bool,
    /// The media relay has IPv6 sockets (case 008: otherwise a `c=IN IP6` stream is rejected).
    pub ipv6: bool,
    /// The telephone-event PT the gateway uses in its own offers (any dynamic PT, case 031).
    pub telephone_event_pt: u8,
    /// The packetisation the gateway asks for in its own offers, in ms.
    pub ptime_ms: u32,
}

impl Default for SdpPolicy {
    fn default() -> Self {
        Self {
            codecs: vec![Codec::Pcma, Codec::Pcmu],
            srtp: false,
            ipv6: true,
            telephone_event_pt: 101,
            ptime_ms: 20,
        }
    }
}

/// The gateway's media endpoint on one leg, as allocated by the shell.
pub struct LocalMedia {
    /// Address and RTP port the peer must send to.
    pub address: SocketAddr,
    /// Fresh random SRTP key material (at least 44 bytes; the prefix the suite needs is used),
    /// present when the shell can do SRTP.
    pub srtp_key: Option<SrtpMasterKey>,
}

/// What was agreed for the audio of one leg, from the gateway's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// Where to send RTP; `None` while the peer asked not to receive (e.g. `c=0.0.0.0`).
    pub remote: Option<SocketAddr>,
    /// The codec on this leg.
    pub codec: Codec,
    /// PT to put on audio sent to the peer.
    pub tx_pt: u8,
    /// PT of audio the peer sends.
    pub rx_pt: u8,
    /// PT for RFC 4733 events sent to the peer (`None`: peer has no telephone-event).
    pub tx_event_pt: Option<u8>,
    /// PT on which the peer's RFC 4733 events arrive (case 031: never assume 101).
    pub rx_event_pt: Option<u8>,
    /// Packet duration the peer asked to receive, in ms (case 029).
    pub ptime_ms: u32,
    /// The gateway's direction on this leg (`sends()`: the gateway sends to the peer).
    pub direction: Direction,
    /// SRTP suite, when the leg is SDES-SRTP.
    pub srtp_suite: Option<String>,
}

/// The result of answering an offer.
#[derive(Debug)]
pub struct AnswerPlan {
    /// The answer to send.
    pub sdp: LocalSdp,
    /// The agreed audio.
    pub audio: NegotiatedAudio,
    /// Index of the audio m-line in the offer.
    pub audio_index: usize,
    /// SRTP keys: (the gateway's key for sending, the peer's key for receiving).
    pub srtp: Option<(SrtpMasterKey, SrtpMasterKey)>,
}

/// The IP family of the first audio stream the gateway could use in `offer`, so that the shell
/// allocates a port of that family before the answer is built.
pub fn offered_family(offer: &RemoteSdp, policy: &SdpPolicy) -> Option<IpAddr> {
    offer
        .media
        .iter()
        .filter(|m| m.is_active_audio())
        .filter_map(|m| m.address)
        .find(|a| policy.ipv6 || a.is_ipv4())
}

/// Answers a peer's offer (initial or re-offer) with the gateway's anchored media.
///
/// Exactly one audio stream is used: the first active audio m-line with PCMU/PCMA on a
/// transport and address family we support. Every other m-line is answered with port 0 in
/// place (case 017). `hold` narrows our direction to sendonly/inactive.
pub fn answer_offer(
    offer: &RemoteSdp,
    mut local: LocalMedia,
    policy: &SdpPolicy,
    origin: SdpOrigin,
    hold: bool,
) -> Result<AnswerPlan, SdpError> {
    let mut chosen: Option<(usize, NegotiatedAudio, Option<(SrtpMasterKey, SrtpMasterKey)>)> = None;
    let mut streams = Vec::with_capacity(offer.media.len());

    for (i, m) in offer.media.iter().enumerate() {
        let usable = chosen.is_none()
            && m.is_active_audio()
            && m.address
                .is_some_and(|a| a.is_ipv4() == local.address.is_ipv4() && (policy.ipv6 || a.is_ipv4()));
        let codec_fmt = if usable { pick_codec(&m.formats, &policy.codecs) } else { None };
        let srtp = if usable && m.proto.is_srtp() {
            pick_crypto(m, policy, &mut local)
        } else {
            None
        };
        let srtp_ok = !m.proto.is_srtp() || srtp.is_some();
        match (codec_fmt, srtp_ok) {
            (Some((codec, fmt)), true) => {
                let te = m.telephone_event().cloned();
                let peer_dir = m.effective_direction();
                let mut ours = peer_dir.answer();
                if hold {
                    ours = Direction::from_flags(ours.sends(), false);
                }
                let remote = m
                    .address
                    .filter(|a| !a.is_unspecified())
                    .map(|a| SocketAddr::new(a, m.port));
                let ptime_ms = m.ptime.unwrap_or(20);
                let mut formats = vec![canonical(&fmt, codec)];
                if let Some(t) = &te {
                    formats.push(PayloadFormat {
                        pt: t.pt,
                        encoding: Encoding::TelephoneEvent,
                        clock_rate: 8000,
                        channels: None,
                        fmtp: Some(t.fmtp.clone().unwrap_or_else(|| "0-15".into())),
                    });
                }
                let (answer_crypto, srtp_pair) = match srtp {
                    Some((ours_c, theirs)) => {
                        let dup = ours_c.key.duplicate();
                        (Some(ours_c), Some((dup, theirs)))
                    }
                    None => (None, None),
                };
                streams.push(LocalStream::Audio {
                    port: local.address.port(),
                    proto: m.proto.clone(),
                    formats,
                    ptime: Some(ptime_ms),
                    direction: ours,
                    crypto: answer_crypto,
                });
                let audio = NegotiatedAudio {
                    remote,
                    codec,
                    tx_pt: fmt.pt,
                    rx_pt: fmt.pt,
                    tx_event_pt: te.as_ref().map(|t| t.pt),
                    rx_event_pt: te.as_ref().map(|t| t.pt),
                    ptime_ms,
                    direction: ours,
                    srtp_suite: srtp_pair.as_ref().map(|_| suite_of(m)),
                };
                chosen = Some((i, audio, srtp_pair));
            }
            _ => streams.push(rejected(m)),
        }
    }

    let Some((audio_index, audio, srtp)) = chosen else {
        return Err(SdpError::NoCommonCodec {
            offered: offer.media.len(),
        });
    };
    Ok(AnswerPlan {
        sdp: LocalSdp { origin, streams },
        audio,
        audio_index,
        srtp,
    })
}

/// Re-answers a re-offer on an established leg (hold, resume, new address): same rules as
/// [`answer_offer`]; the caller keeps the leg's port and bumps the origin version.
pub fn reanswer_offer(
    offer: &RemoteSdp,
    local: LocalMedia,
    policy: &SdpPolicy,
    origin: SdpOrigin,
    hold: bool,
) -> Result<AnswerPlan, SdpError> {
    answer_offer(offer, local, policy, origin, hold)
}

/// The gateway's offer to the PBX: one plain-RTP audio stream, `first` codec first, then the
/// other allowed codecs, telephone-event on the policy PT.
pub fn build_offer(
    local: SocketAddr,
    policy: &SdpPolicy,
    origin: SdpOrigin,
    first: Codec,
    direction: Direction,
) -> LocalSdp {
    let mut codecs = vec![first];
    codecs.extend(policy.codecs.iter().copied().filter(|c| *c != first));
    let mut formats: Vec<PayloadFormat> = codecs
        .iter()
        .map(|c| PayloadFormat {
            pt: c.static_pt(),
            encoding: c.encoding(),
            clock_rate: 8000,
            channels: None,
            fmtp: None,
        })
        .collect();
    formats.push(PayloadFormat {
        pt: policy.telephone_event_pt,
        encoding: Encoding::TelephoneEvent,
        clock_rate: 8000,
        channels: None,
        fmtp: Some("0-16".into()),
    });
    LocalSdp {
        origin,
        streams: vec![LocalStream::Audio {
            port: local.port(),
            proto: Proto::RtpAvp,
            formats,
            ptime: Some(policy.ptime_ms),
            direction,
        crypto: None,
        }],
    }
}

/// Reads the PBX's answer to [`build_offer`]. `Ok(None)`: the answer rejects the audio stream
/// (port 0, e.g. a 183 without usable media, case 020) — keep local media running.
pub fn accept_answer(
    answer: &RemoteSdp,
    policy: &SdpPolicy,
    offered_first: Codec,
) -> Result<Option<NegotiatedAudio>, SdpError> {
    if answer.media.len() != 1 {
        return Err(SdpError::MLineCountMismatch {
            offered: 1,
            answered: answer.media.len(),
        });
    }
    let Some(m) = answer.media.first() else {
        return Err(SdpError::NoMedia);
    };
    if m.port == 0 {
        return Ok(None);
    }
    let mut offered = vec![offered_first];
    offered.extend(policy.codecs.iter().copied().filter(|c| *c != offered_first));
    let (codec, fmt) =
        pick_codec(&m.formats, &offered).ok_or(SdpError::AnswerWithoutOfferedCodec)?;
    let te = m.telephone_event();
    let peer_dir = m.effective_direction();
    Ok(Some(NegotiatedAudio {
        remote: m
            .address
            .filter(|a| !a.is_unspecified())
            .map(|a| SocketAddr::new(a, m.port)),
        codec,
        tx_pt: fmt.pt,
        // RFC 3264 §5.1: the peer sends with the PTs of *our* offer.
        rx_pt: codec.static_pt(),
        tx_event_pt: te.map(|t| t.pt),
        rx_event_pt: te.map(|_| policy.telephone_event_pt),
        ptime_ms: m.ptime.unwrap_or(20),
        direction: peer_dir.answer(),
        srtp_suite: None,
    }))
}

fn pick_codec(formats: &[PayloadFormat], allowed: &[Codec]) -> Option<(Codec, PayloadFormat)> {
    // The offerer's order decides among the codecs we support (RFC 3264 §6.1 allows either).
    formats
        .iter()
        .filter(|f| f.pt <= 127)
        .find_map(|f| f.codec().filter(|c| allowed.contains(c)).map(|c| (c, f.clone())))
}

fn canonical(fmt: &PayloadFormat, codec: Codec) -> PayloadFormat {
    PayloadFormat {
        pt: fmt.pt,
        encoding: codec.encoding(),
        clock_rate: 8000,
        channels: None,
        fmtp: fmt.fmtp.clone(),
    }
}

fn pick_crypto(
    m: &super::RemoteMedia,
    policy: &SdpPolicy,
    local: &mut LocalMedia,
) -> Option<(SdesCrypto, SrtpMasterKey)> {
    if !policy.srtp {
        return None;
    }
    let offered = m.crypto.iter().find(|c| key_salt_len(&c.suite).is_some())?;
    let len = key_salt_len(&offered.suite)?;
    let material = local.srtp_key.as_ref()?;
    let ours = material.expose_bytes().get(..len)?.to_vec();
    Some((
        SdesCrypto {
            tag: offered.tag,
            suite: offered.suite.clone(),
            key: SrtpMasterKey::from_bytes(ours),
        },
        offered.key.duplicate(),
    ))
}

fn suite_of(m: &super::RemoteMedia) -> String {
    m.crypto
        .iter()
        .find(|c| key_salt_len(&c.suite).is_some())
        .map(|c| c.suite.clone())
        .unwrap_or_default()
}

fn rejected(m: &super::RemoteMedia) -> LocalStream {
    LocalStream::Rejected {
        kind: m.kind.clone(),
        proto: m.proto.as_str().to_owned(),
        formats: m.raw_formats.clone(),
    }
}
