//! SDP per leg: answers to (re-)offers with the leg's anchored port, re-offers that carry a
//! direction change from the other leg (hold/resume pass-through, case 018), and the media
//! commands that apply what was agreed.

use callseal_sip::{MediaType, Message};

use super::CallManager;
use super::call::LegMedia;
use crate::command::{CallHandle, Command, Leg, MediaParams, SrtpKeys};
use crate::error::SdpError;
use crate::sdp::{
    Direction, LocalMedia, NegotiatedAudio, RemoteSdp, SrtpMasterKey, accept_answer, answer_offer,
};

/// A new SDP body for a leg and what it agreed.
pub(super) struct Reanswer {
    pub body: Vec<u8>,
    pub audio: NegotiatedAudio,
    pub srtp: Option<(SrtpMasterKey, SrtpMasterKey)>,
}

impl CallManager {
    /// Answers an offer on a leg whose port exists: same port, same session id; the version
    /// moves on only if the SDP changed (RFC 3264 §8).
    pub(super) fn answer_on_leg(
        &self,
        media: &mut LegMedia,
        offer: &RemoteSdp,
    ) -> Result<Reanswer, SdpError> {
        let previous = media.last_sdp.take();
        let origin = media.origin;
        let local = LocalMedia {
            address: media.local,
            srtp_key: media.srtp_key.as_ref().map(SrtpMasterKey::duplicate),
        };
        let mut plan = answer_offer(offer, local, &self.config.sdp, origin, Direction::SendRecv)
            .inspect_err(|_| media.last_sdp = None)?;
        let mut body = plan.sdp.to_bytes();
        if let Some(p) = &previous
            && p.to_bytes() != body
        {
            plan.sdp.origin.version = origin.version.saturating_add(1);
            body = plan.sdp.to_bytes();
        }
        media.origin = plan.sdp.origin;
        media.audio_index = plan.audio_index;
        media.audio = Some(plan.audio.clone());
        media.peer_direction = plan.audio.peer_direction;
        media.last_sdp = Some(plan.sdp);
        Ok(Reanswer {
            body,
            audio: plan.audio,
            srtp: plan.srtp,
        })
    }

    /// A re-offer on a leg with the audio direction changed, version incremented (RFC 3264
    /// §8: same o= line otherwise, same m-lines in the same order).
    pub(super) fn reoffer_on_leg(media: &mut LegMedia, direction: Direction) -> Option<Vec<u8>> {
        let sdp = media.last_sdp.as_mut()?;
        sdp.set_audio_direction(direction);
        sdp.origin.version = sdp.origin.version.saturating_add(1);
        media.origin = sdp.origin;
        Some(sdp.to_bytes())
    }

    /// Applies an answer to our offer on a leg; returns the agreed audio and the peer's
    /// SRTP key (if any). `Ok(None)` audio: the stream was rejected.
    pub(super) fn accept_on_leg(
        media: &mut LegMedia,
        answer: &RemoteSdp,
    ) -> Result<(Option<NegotiatedAudio>, Option<SrtpMasterKey>), SdpError> {
        let Some(offer) = media.last_sdp.as_ref() else {
            return Err(SdpError::NoMedia);
        };
        let accepted = accept_answer(answer, offer)?;
        if let Some(a) = &accepted.audio {
            media.audio = Some(a.clone());
            media.peer_direction = a.peer_direction;
        }
        Ok((accepted.audio, accepted.remote_key))
    }

    /// Emits `ConfigureMedia` for a leg.
    pub(super) fn configure(
        &mut self,
        call: CallHandle,
        leg: Leg,
        audio: NegotiatedAudio,
        srtp: Option<(SrtpMasterKey, SrtpMasterKey)>,
    ) {
        let srtp = match (srtp, audio.srtp_suite.clone()) {
            (Some((local, remote)), Some(suite)) => Some(SrtpKeys {
                suite,
                local,
                remote,
            }),
            _ => None,
        };
        self.push(Command::ConfigureMedia {
            call,
            params: MediaParams { leg, audio, srtp },
        });
    }
}

/// Puts an SDP body on a message.
pub(super) fn with_sdp(mut m: Message, body: Vec<u8>) -> Message {
    m.set_body(Some(MediaType::sdp()), body);
    m
}

/// The parsed SDP of a message, if it has one.
pub(super) fn sdp_of(m: &Message) -> Option<Result<RemoteSdp, SdpError>> {
    m.sdp_body().map(RemoteSdp::parse)
}
