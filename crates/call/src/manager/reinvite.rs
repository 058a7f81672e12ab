//! Re-INVITEs on either leg (RFC 3261 §14): answered locally with the leg's anchored SDP; a
//! direction change (hold, resume) is offered to the other leg in turn (case 018); answers to
//! our own re-offers; offers in a 2xx answered in the ACK (RFC 3264 §4).

use callseal_sip::{HeaderName, HeaderValue, Message, Method, StatusCode};

use super::call::{Call, LegMedia, PbxState, PendingReinvite, State};
use super::caller::with_allow;
use super::sdp_legs::{sdp_of, with_sdp};
use super::{CallManager, Now};
use crate::command::{CallHandle, CallOutcome, Leg, Prompt};
use crate::dialog;
use crate::sdp::{LocalSdp, SrtpMasterKey};
use crate::sip_io::{ServerTx, SipCommand};

impl CallManager {
    /// A re-INVITE from the peer on `leg`: answered locally with the leg's anchored SDP;
    /// a direction change is then offered to the other leg (hold pass-through, case 018).
    pub(super) fn reinvite_from(
        &mut self,
        now: Now,
        h: CallHandle,
        leg: Leg,
        tx: Option<ServerTx>,
        req: &Message,
    ) {
        let Some(tx) = tx else {
            return;
        };
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let pending = match leg {
            Leg::Caller => call.a.reinvite.is_some(),
            Leg::Pbx => call.b.as_ref().is_some_and(|b| b.reinvite.is_some()),
        };
        if pending {
            // RFC 3261 §14.2: glare — our own re-INVITE is outstanding.
            return self.respond_in_dialog(h, leg, Some(tx), req, StatusCode(491));
        }
        // Taken out for the borrow checker and put back below.
        let media = match leg {
            Leg::Caller => call.a.media.take(),
            Leg::Pbx => call.b.as_mut().and_then(|b| b.media.take()),
        };
        let Some(mut media) = media else {
            return self.respond_in_dialog(h, leg, Some(tx), req, StatusCode::SERVER_ERROR);
        };
        let before = media.peer_direction;
        let offer = match sdp_of(req) {
            Some(o) => o,
            None => {
                // RFC 3261 §14.2: a re-INVITE without SDP asks for our offer in the 2xx; the
                // current session, unchanged (same version, RFC 3264 §8), answer in the ACK.
                let body = media.last_sdp.as_ref().map(LocalSdp::to_bytes);
                let Some(call) = self.calls.get_mut(&h) else {
                    return;
                };
                match leg {
                    Leg::Caller => {
                        call.a.media = Some(media);
                        call.a.answer_in_ack = body.is_some();
                    }
                    Leg::Pbx => {
                        if let Some(b) = call.b.as_mut() {
                            b.media = Some(media);
                            b.answer_in_ack = body.is_some();
                        }
                    }
                }
                let Some(body) = body else {
                    return self.respond_in_dialog(h, leg, Some(tx), req, StatusCode::SERVER_ERROR);
                };
                let ok = dialog::response(req, StatusCode::OK, None, Some(&contact));
                let ok = with_allow(with_sdp(ok, body));
                return self.send(SipCommand::Respond { tx, response: ok });
            }
        };
        let result = offer.and_then(|offer| self.answer_on_leg(&mut media, &offer));
        let after = media.peer_direction;
        let restore = |call: &mut Call, media: LegMedia| match leg {
            Leg::Caller => call.a.media = Some(media),
            Leg::Pbx => {
                if let Some(b) = call.b.as_mut() {
                    b.media = Some(media);
                }
            }
        };
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        restore(call, media);
        match result {
            Ok(answer) => {
                let ok = dialog::response(req, StatusCode::OK, None, Some(&contact));
                let ok = with_allow(with_sdp(ok, answer.body));
                self.send(SipCommand::Respond { tx, response: ok });
                self.configure(h, leg, answer.audio, answer.srtp);
                if before != after {
                    self.propagate_direction(now, h, leg.other());
                }
            }
            Err(e) => {
                // RFC 3264 §8: a failed re-offer leaves the session as it was.
                let mut r = dialog::response(req, StatusCode(488), None, None);
                let text = e.to_string().replace('"', "'");
                r.headers.push(
                    HeaderName::Other("Warning".into()),
                    HeaderValue::Text(format!("304 callseal \"{text}\"").into()),
                );
                self.send(SipCommand::Respond { tx, response: r });
            }
        }
    }

    /// Offers the other leg's current direction to `leg` with a re-INVITE (mirrored: the
    /// PBX's `sendonly` becomes the gateway's `sendonly` towards the caller).
    pub(super) fn propagate_direction(&mut self, now: Now, h: CallHandle, leg: Leg) {
        let _ = now;
        let branch = self.ids.branch();
        let via = self.via(&branch);
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let source = match leg {
            Leg::Caller => call.b.as_ref().and_then(|b| b.media.as_ref()),
            Leg::Pbx => call.a.media.as_ref(),
        };
        let Some(wanted) = source.map(|m| m.peer_direction) else {
            return;
        };
        let (dialog, media, pending, update) = match leg {
            Leg::Caller => (
                call.a.dialog.as_mut(),
                call.a.media.as_mut(),
                &mut call.a.reinvite,
                &mut call.a.update_pending,
            ),
            Leg::Pbx => match call.b.as_mut() {
                Some(b) if b.state == PbxState::Confirmed => (
                    b.dialog.as_mut(),
                    b.media.as_mut(),
                    &mut b.reinvite,
                    &mut b.update_pending,
                ),
                _ => return,
            },
        };
        let (Some(dialog), Some(media)) = (dialog, media) else {
            return;
        };
        if pending.is_some() {
            *update = true;
            return;
        }
        *update = false;
        if media.last_sdp.as_ref().and_then(|s| s.audio_direction()) == Some(wanted) {
            return;
        }
        let Some(body) = Self::reoffer_on_leg(media, wanted) else {
            return;
        };
        let invite = with_sdp(dialog.request(Method::Invite, via), body);
        *pending = Some(PendingReinvite {
            branch,
            cseq: dialog.local_cseq(),
        });
        let destination = dialog.destination;
        self.send(SipCommand::Request {
            request: invite,
            destination,
        });
    }

    /// A response to our re-INVITE on `leg`.
    pub(super) fn reinvite_response(
        &mut self,
        now: Now,
        h: CallHandle,
        leg: Leg,
        resp: &Message,
        seq: u32,
    ) {
        let Some(status) = resp.status() else {
            return;
        };
        if status.is_provisional() {
            return;
        }
        let branch = self.ids.branch();
        let via = self.via(&branch);
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let (dialog, media, pending, ack_cache, update) = match leg {
            Leg::Caller => (
                call.a.dialog.as_ref(),
                call.a.media.as_mut(),
                &mut call.a.reinvite,
                &mut call.a.ack,
                call.a.update_pending,
            ),
            Leg::Pbx => match call.b.as_mut() {
                Some(b) => (
                    b.dialog.as_ref(),
                    b.media.as_mut(),
                    &mut b.reinvite,
                    &mut b.ack,
                    b.update_pending,
                ),
                None => return,
            },
        };
        let Some(dialog) = dialog else {
            return;
        };
        if pending.as_ref().is_none_or(|p| p.cseq != seq) {
            // A retransmitted 2xx for a re-INVITE already answered: ACK it again.
            if status.is_success()
                && let Some(ack) = ack_cache.clone()
                && ack.headers.cseq().is_some_and(|c| c.seq == seq)
            {
                let destination = dialog.destination;
                self.send(SipCommand::Ack {
                    request: ack,
                    destination,
                });
            }
            return;
        }
        *pending = None;
        if status.is_success() {
            let ack = dialog.ack(seq, via);
            *ack_cache = Some(ack.clone());
            let destination = dialog.destination;
            let accepted = match (media, sdp_of(resp)) {
                (Some(m), Some(Ok(answer))) => Self::accept_on_leg(m, &answer).ok(),
                _ => None,
            };
            let srtp = call
                .a
                .media
                .as_ref()
                .and_then(|m| m.srtp_key.as_ref().map(SrtpMasterKey::duplicate));
            self.send(SipCommand::Ack {
                request: ack,
                destination,
            });
            if let Some((Some(audio), remote)) = accepted {
                let srtp = match (leg, srtp, remote) {
                    (Leg::Caller, Some(l), Some(r)) => Some((l, r)),
                    _ => None,
                };
                self.configure(h, leg, audio, srtp);
            }
            if update {
                self.propagate_direction(now, h, leg);
            }
        } else if matches!(status.0, 408 | 481) {
            // RFC 3261 §12.2.1.2: this dialog is gone (case 024) — no BYE on it; the other
            // leg is torn down.
            self.drop_dialog(h, leg);
            self.terminate(now, h, CallOutcome::MediaFailure, "Dialog lost");
        } else if update {
            self.propagate_direction(now, h, leg);
        }
    }

    /// An ACK on a leg: when our 2xx carried an offer, it carries the answer (RFC 3264 §4).
    pub(super) fn ack_with_answer(&mut self, now: Now, h: CallHandle, leg: Leg, ack: &Message) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let (flag, media) = match leg {
            Leg::Caller => (&mut call.a.answer_in_ack, call.a.media.as_mut()),
            Leg::Pbx => match call.b.as_mut() {
                Some(b) => (&mut b.answer_in_ack, b.media.as_mut()),
                None => return,
            },
        };
        if !std::mem::take(flag) {
            return;
        }
        let Some(media) = media else {
            return;
        };
        let before = media.peer_direction;
        let accepted = match sdp_of(ack) {
            Some(Ok(answer)) => Self::accept_on_leg(media, &answer).ok(),
            _ => None,
        };
        let after = media.peer_direction;
        let local_key = media.srtp_key.as_ref().map(SrtpMasterKey::duplicate);
        let initial = leg == Leg::Caller && call.state == State::AwaitingAck;
        match accepted {
            Some((Some(audio), remote)) => {
                let srtp = local_key.zip(remote);
                self.configure(h, leg, audio, srtp);
                if initial {
                    if let Some(call) = self.calls.get_mut(&h) {
                        call.state = State::PlayingPrompt { plays: 1 };
                    }
                    self.play(h, Leg::Caller, Prompt::Consent, true);
                } else if before != after {
                    self.propagate_direction(now, h, leg.other());
                }
            }
            // RFC 3261 §13.2.1: without a usable answer the session cannot go on.
            _ if initial => self.terminate(
                now,
                h,
                CallOutcome::OfferRejected,
                "No usable answer in ACK",
            ),
            _ => {}
        }
    }

    /// Forgets a leg's dialog after a 408/481 or a failed transaction on it.
    pub(super) fn drop_dialog(&mut self, h: CallHandle, leg: Leg) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        match leg {
            Leg::Caller => {
                call.a.dialog = None;
                call.a.bye = None;
            }
            Leg::Pbx => {
                if let Some(b) = call.b.as_mut() {
                    b.state = PbxState::Terminated;
                    b.bye = None;
                }
            }
        }
    }
}
