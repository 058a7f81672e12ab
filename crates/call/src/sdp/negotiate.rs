//! Offer/answer decisions (RFC 3264 §5–§8, RFC 6337) for one leg with media anchored on the
//! gateway: the peer always talks to the gateway's own address and port on that leg.

use std::net::{IpAddr, SocketAddr};

use super::{
    Codec, Direction, Encoding, LocalSdp, LocalStream, PayloadFormat, Proto, RemoteSdp, SdesCrypto,
    SdpOrigin, SrtpMasterKey, key_salt_len,
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
    /// The direction the peer declared (with legacy `c=0.0.0.0` hold folded in), from its
    /// own point of view.
    pub peer_direction: Direction,
}

/// SRTP keys of a leg: (the gateway's key for sending, the peer's key for receiving).
type KeyPair = (SrtpMasterKey, SrtpMasterKey);

/// The result of answering an offer. `Debug` leaves the SRTP keys out.
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

impl std::fmt::Debug for AnswerPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerPlan")
            .field("sdp", &self.sdp)
            .field("audio", &self.audio)
            .field("audio_index", &self.audio_index)
            .field("srtp", &self.srtp.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Checks that `offer` can be answered before any port is allocated, and says which address
/// family the port must have and whether the stream is SDES-SRTP: the first active audio
/// m-line with a relayed codec, a supported family (case 008) and, for `RTP/SAVP`, a crypto
/// suite the media engine implements.
pub fn offered_family(offer: &RemoteSdp, policy: &SdpPolicy) -> Result<(IpAddr, bool), SdpError> {
    offer
        .media
        .iter()
        .filter(|m| m.is_active_audio())
        .filter(|m| pick_codec(&m.formats, &policy.codecs).is_some())
        .filter(|m| {
            !m.proto.is_srtp()
                || (policy.srtp && m.crypto.iter().any(|c| key_salt_len(&c.suite).is_some()))
        })
        .find_map(|m| {
            m.address
                .filter(|a| policy.ipv6 || a.is_ipv4())
                .map(|a| (a, m.proto.is_srtp()))
        })
        .ok_or(SdpError::NoCommonCodec {
            offered: offer.media.len(),
        })
}

/// Answers a peer's offer (initial or re-offer) with the gateway's anchored media.
///
/// Exactly one audio stream is used: the first active audio m-line with PCMU/PCMA on a
/// transport and address family we support. Every other m-line is answered with port 0 in
/// place (case 017). `limit` narrows our direction (e.g. `SendOnly` when the gateway itself does
/// not want to receive); `SendRecv` leaves the RFC 3264 §6.1 answer as it is.
pub fn answer_offer(
    offer: &RemoteSdp,
    mut local: LocalMedia,
    policy: &SdpPolicy,
    origin: SdpOrigin,
    limit: Direction,
) -> Result<AnswerPlan, SdpError> {
    let mut chosen: Option<(usize, NegotiatedAudio, Option<KeyPair>)> = None;
    let mut streams = Vec::with_capacity(offer.media.len());

    for (i, m) in offer.media.iter().enumerate() {
        let usable = chosen.is_none()
            && m.is_active_audio()
            && m.address.is_some_and(|a| {
                a.is_ipv4() == local.address.is_ipv4() && (policy.ipv6 || a.is_ipv4())
            });
        let codec_fmt = if usable {
            pick_codec(&m.formats, &policy.codecs)
        } else {
            None
        };
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
                let answer = peer_dir.answer();
                let ours = Direction::from_flags(
                    answer.sends() && limit.sends(),
                    answer.receives() && limit.receives(),
                );
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
                    // Echo the offerer's ptime only when it gave one (case 018's answer has none).
                    ptime: m.ptime,
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
                    peer_direction: peer_dir,
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

/// What an answer to one of our offers agreed.
pub struct AcceptedAnswer {
    /// The audio, `None` when the answer rejected the audio stream (port 0, e.g. a 183
    /// without usable media, case 020): keep local media running.
    pub audio: Option<NegotiatedAudio>,
    /// The peer's SRTP key when our offer was SDES-SRTP.
    pub remote_key: Option<SrtpMasterKey>,
}

/// Reads the answer to an offer we made (`offer`): the PBX's answer to [`build_offer`], or a
/// caller's answer to a re-offer. RFC 3264 §6: same m-line count; the peer sends with the PTs
/// of our offer (§5.1) and we send with the PTs of its answer.
pub fn accept_answer(answer: &RemoteSdp, offer: &LocalSdp) -> Result<AcceptedAnswer, SdpError> {
    if answer.media.len() != offer.streams.len() {
        return Err(SdpError::MLineCountMismatch {
            offered: offer.streams.len(),
            answered: answer.media.len(),
        });
    }
    let Some((index, offered, our_crypto)) =
        offer.streams.iter().enumerate().find_map(|(i, s)| match s {
            LocalStream::Audio {
                formats, crypto, ..
            } => Some((i, formats, crypto)),
            LocalStream::Rejected { .. } => None,
        })
    else {
        return Err(SdpError::NoMedia);
    };
    let Some(m) = answer.media.get(index) else {
        return Err(SdpError::NoMedia);
    };
    if m.port == 0 {
        return Ok(AcceptedAnswer {
            audio: None,
            remote_key: None,
        });
    }
    let allowed: Vec<Codec> = offered.iter().filter_map(PayloadFormat::codec).collect();
    let (codec, fmt) =
        pick_codec(&m.formats, &allowed).ok_or(SdpError::AnswerWithoutOfferedCodec)?;
    let rx_pt = offered
        .iter()
        .find(|f| f.codec() == Some(codec))
        .map_or(codec.static_pt(), |f| f.pt);
    let our_te = offered
        .iter()
        .find(|f| f.is_telephone_event_8k())
        .map(|f| f.pt);
    let te = m.telephone_event().filter(|_| our_te.is_some());
    let remote_key = match our_crypto {
        Some(ours) => {
            let theirs = m
                .crypto
                .iter()
                .find(|c| c.tag == ours.tag && c.suite == ours.suite)
                .ok_or(SdpError::AnswerWithoutOfferedCodec)?;
            Some(theirs.key.duplicate())
        }
        None => None,
    };
    let peer_dir = m.effective_direction();
    Ok(AcceptedAnswer {
        audio: Some(NegotiatedAudio {
            remote: m
                .address
                .filter(|a| !a.is_unspecified())
                .map(|a| SocketAddr::new(a, m.port)),
            codec,
            tx_pt: fmt.pt,
            rx_pt,
            tx_event_pt: te.map(|t| t.pt),
            rx_event_pt: te.and(our_te),
            ptime_ms: m.ptime.unwrap_or(20),
            direction: peer_dir.answer(),
            srtp_suite: our_crypto.as_ref().map(|c| c.suite.clone()),
            peer_direction: peer_dir,
        }),
        remote_key,
    })
}

fn pick_codec(formats: &[PayloadFormat], allowed: &[Codec]) -> Option<(Codec, PayloadFormat)> {
    // The offerer's order decides among the codecs we support (RFC 3264 §6.1 allows either).
    formats.iter().filter(|f| f.pt <= 127).find_map(|f| {
        f.codec()
            .filter(|c| allowed.contains(c))
            .map(|c| (c, f.clone()))
    })
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
