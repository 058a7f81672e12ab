//! The PBX leg: INVITE with the caller's identity replaced, early media, the answer, CANCEL
//! (with the 200-after-CANCEL race, case 022), BYE and failures.

use std::net::SocketAddr;

use callseal_sip::{
    CSeq, Contact, HeaderName, HeaderValue, Message, Method, NameAddr, Reason, SipUri, StatusCode,
    Uri,
};

use super::call::{LegMedia, PbxLeg, PbxState, State};
use super::sdp_legs::{sdp_of, with_sdp};
use super::{CallManager, Now};
use crate::command::{CallHandle, CallOutcome, Command, IpFamily, Leg};
use crate::config::Target;
use crate::dialog::Dialog;
use crate::sdp::{Codec, Direction, SdpOrigin, build_offer};
use crate::sip_io::{ServerTx, SipCommand, TransactionFailure};
use crate::timers::Timer;

impl CallManager {
    pub(super) fn call_pbx(&mut self, now: Now, h: CallHandle, next_hop: SocketAddr) {
        let branch = self.ids.branch();
        let local_tag = self.ids.token();
        let call_id = format!("{}@callseal", self.ids.token());
        let ring = self.config.ring_timeout;
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let offered_first = call
            .a
            .media
            .as_ref()
            .and_then(|m| m.audio.as_ref())
            .map_or(Codec::Pcma, |a| a.codec);
        call.state = State::CallingPbx;
        call.timers.set(Timer::Ring, now.instant + ring);
        call.b = Some(PbxLeg {
            state: PbxState::AwaitingMedia,
            invite: None,
            branch,
            local_tag,
            call_id: call_id.clone(),
            dialog: None,
            offered_first,
            media: None,
            reinvite: None,
            update_pending: false,
            early_media: false,
            answer_in_ack: false,
            provisional_seen: false,
            cancel_wanted: false,
            early: Vec::new(),
            ack: None,
            bye: None,
        });
        self.by_pbx_call_id.insert(call_id, h);
        self.push(Command::AllocateMedia {
            call: h,
            leg: Leg::Pbx,
            family: if next_hop.is_ipv4() {
                IpFamily::V4
            } else {
                IpFamily::V6
            },
            srtp: false,
        });
    }

    pub(super) fn pbx_media_allocated(&mut self, _now: Now, h: CallHandle, local: SocketAddr) {
        let Target::Pbx { uri, next_hop } = self.config.target.clone() else {
            return;
        };
        let session_id = self.ids.number();
        let host = self.host();
        let contact = self.contact();
        let pbx_branch = self
            .calls
            .get(&h)
            .and_then(|c| c.b.as_ref())
            .map(|b| b.branch.clone())
            .unwrap_or_default();
        let via = self.via(&pbx_branch);
        let mode = self.config.identity;
        let origin = SdpOrigin {
            session_id,
            version: session_id,
            address: local.ip(),
        };
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        // RFC 3323 §4.2: a caller who asked for privacy of its identity is never passed
        // through, whatever the mode.
        let private = call.a.invite.headers.text("Privacy").is_some_and(|p| {
            p.split(';')
                .any(|v| matches!(v.trim(), "id" | "user" | "header"))
        });
        let mode = if private && mode == crate::identity::IdentityMode::Passthrough {
            crate::identity::IdentityMode::Pseudonym
        } else {
            mode
        };
        let presented = call.caller.presented(mode);
        let line = call.line.clone();
        let Some(b) = call.b.as_mut() else {
            return;
        };
        if b.state != PbxState::AwaitingMedia {
            return;
        }
        let offer = build_offer(
            local,
            &self.config.sdp,
            origin,
            b.offered_first,
            Direction::SendRecv,
        );
        let body = offer.to_bytes();
        b.media = Some(LegMedia {
            local,
            srtp_key: None,
            origin,
            last_sdp: Some(offer),
            audio_index: 0,
            audio: None,
            peer_direction: Direction::SendRecv,
        });

        // The Request-URI: the configured PBX URI; without a user part, the line called.
        let mut target = uri;
        if let Uri::Sip(u) = &mut target
            && u.user.is_none()
            && !line.is_empty()
        {
            u.user = Some(line.into());
        }
        // From carries the presented identity only (pseudonym by default); nothing else of the
        // A-leg crosses over: no P-Asserted-Identity, Remote-Party-ID, User-Agent or Subject.
        let mut from = NameAddr::new(Uri::Sip(SipUri::new(Some(&presented), host, None)));
        from.display = Some(presented.into());
        from.set_tag(&b.local_tag);
        let mut invite = Message::new_request(Method::Invite, target.clone());
        let hd = &mut invite.headers;
        hd.push(HeaderName::Via, HeaderValue::Via(via));
        hd.push(HeaderName::MaxForwards, HeaderValue::Number(70));
        hd.push(HeaderName::From, HeaderValue::NameAddr(from));
        hd.push(HeaderName::To, HeaderValue::NameAddr(NameAddr::new(target)));
        hd.push(
            HeaderName::CallId,
            HeaderValue::Text(b.call_id.as_str().into()),
        );
        hd.push(
            HeaderName::CSeq,
            HeaderValue::CSeq(CSeq {
                seq: 1,
                method: Method::Invite,
            }),
        );
        hd.push(
            HeaderName::Contact,
            HeaderValue::Contact(Contact::Addr(contact)),
        );
        let invite = with_sdp(invite, body);
        b.invite = Some(invite.clone());
        b.state = PbxState::Calling;
        self.send(SipCommand::Request {
            request: invite,
            destination: next_hop,
        });
    }

    pub(super) fn pbx_response(&mut self, now: Now, h: CallHandle, resp: Message) {
        let (Some(status), Some(cseq)) = (resp.status(), resp.headers.cseq().cloned()) else {
            return;
        };
        let branch = resp
            .headers
            .top_via()
            .and_then(|v| v.branch())
            .map(str::to_owned);
        let Some(b) = self.calls.get(&h).and_then(|c| c.b.as_ref()) else {
            return;
        };
        let initial = cseq.method == Method::Invite && branch.as_deref() == Some(b.branch.as_str());
        match cseq.method {
            Method::Invite if initial => {
                if status.is_provisional() {
                    self.pbx_provisional(now, h, &resp);
                } else if status.is_success() {
                    self.pbx_answered(now, h, &resp, cseq.seq);
                } else {
                    self.pbx_rejected(now, h, status);
                }
            }
            Method::Invite => self.reinvite_response(now, h, Leg::Pbx, &resp, cseq.seq),
            Method::Bye if status.is_final() && b.bye == branch => {
                if let Some(b) = self.calls.get_mut(&h).and_then(|c| c.b.as_mut()) {
                    b.bye = None;
                }
                self.end_when_idle_if_ending(now, h);
            }
            // A 200 or 481 to our CANCEL changes nothing: the INVITE's final response decides
            // (RFC 3261 §9.1, case 022 step 3).
            _ => {}
        }
    }

    fn pbx_provisional(&mut self, now: Now, h: CallHandle, resp: &Message) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let caller_waiting = call.state == State::CallingPbx;
        let Some(b) = call.b.as_mut() else {
            return;
        };
        b.provisional_seen = true;
        if b.cancel_wanted {
            b.cancel_wanted = false;
            return self.send_cancel(h);
        }
        let Some(tag) = resp.headers.to().and_then(NameAddr::tag).map(str::to_owned) else {
            return;
        };
        if b.state == PbxState::Calling {
            b.state = PbxState::Early;
        }
        // RFC 3261 §13.2.1: the first SDP in a response of an early dialog is its answer; each
        // forked dialog (To-tag) has its own (case 020).
        let Some(Ok(answer)) = sdp_of(resp) else {
            return;
        };
        if b.early.iter().any(|(t, _)| *t == tag) {
            return;
        }
        let Some(media) = b.media.as_mut() else {
            return;
        };
        let Ok((audio, _)) = Self::accept_on_leg(media, &answer) else {
            return;
        };
        // A 183 whose only stream is port 0 carries no media: keep what plays now (case 020).
        let Some(audio) = audio else {
            return;
        };
        b.early.push((tag, audio.clone()));
        let first = !b.early_media;
        b.early_media = true;
        if caller_waiting {
            self.configure(h, Leg::Pbx, audio, None);
            if first {
                // Early media (ringback, announcements) is relayed to the caller, unrecorded.
                self.push(Command::BridgeMedia { call: h });
            }
        }
        let _ = now;
    }

    fn pbx_answered(&mut self, now: Now, h: CallHandle, resp: &Message, seq: u32) {
        let branch = self.ids.branch();
        let via = self.via(&branch);
        let Target::Pbx { next_hop, .. } = self.config.target.clone() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let caller_gone = call.state == State::Ending;
        let Some(b) = call.b.as_mut() else {
            return;
        };
        if b.dialog.is_some() {
            // A 2xx retransmission (or a second fork's 2xx, acknowledged the same way): ACK
            // again (RFC 3261 §13.2.2.4).
            if let Some(ack) = b.ack.clone() {
                self.send(SipCommand::Ack {
                    request: ack,
                    destination: next_hop,
                });
            }
            return;
        }
        let Some(invite) = b.invite.as_ref() else {
            return;
        };
        let Some(d) = Dialog::uac(invite, resp, next_hop) else {
            return;
        };
        // RFC 3261 §13.2.2.4: every 2xx is ACKed, end to end, with a new branch.
        let ack = d.ack(seq, via);
        b.ack = Some(ack.clone());
        b.dialog = Some(d);
        let was_cancelling = b.state == PbxState::Cancelling || b.cancel_wanted;
        b.state = PbxState::Confirmed;
        b.cancel_wanted = false;
        self.send(SipCommand::Ack {
            request: ack,
            destination: next_hop,
        });
        if caller_gone || was_cancelling {
            // Case 022: answered after our CANCEL — ACK then BYE; nothing reaches the caller.
            if let Some(call) = self.calls.get_mut(&h) {
                call.outcome = Some(CallOutcome::AnsweredAfterCancel);
            }
            self.bye_pbx(h, Some(Reason::sip(487, "Caller cancelled")));
            return self.end_when_idle(now, h);
        }
        let tag = resp.headers.to().and_then(NameAddr::tag).map(str::to_owned);
        let audio = {
            let Some(b) = self.calls.get_mut(&h).and_then(|c| c.b.as_mut()) else {
                return;
            };
            match (sdp_of(resp), b.media.as_mut()) {
                // The 2xx may carry a different SDP than the 18x (media server switch): it is
                // used (case 020, tolerated as most PBXs need).
                (Some(Ok(answer)), Some(media)) => Self::accept_on_leg(media, &answer)
                    .ok()
                    .and_then(|(a, _)| a),
                _ => b
                    .early
                    .iter()
                    .find(|(t, _)| Some(t) == tag.as_ref())
                    .map(|(_, a)| a.clone()),
            }
        };
        let Some(audio) = audio else {
            self.bye_pbx(h, Some(Reason::sip(488, "No usable media")));
            return self.terminate(now, h, CallOutcome::MediaFailure, "No usable media");
        };
        let early = self
            .calls
            .get(&h)
            .and_then(|c| c.b.as_ref())
            .is_some_and(|b| b.early_media);
        self.configure(h, Leg::Pbx, audio, None);
        // A hold the caller asked for while the PBX was ringing reaches the PBX now.
        if self
            .calls
            .get(&h)
            .and_then(|c| c.a.media.as_ref())
            .is_some_and(|m| m.peer_direction != Direction::SendRecv)
        {
            self.propagate_direction(now, h, Leg::Pbx);
        }
        if early {
            // Already relaying since the 18x: only the recording starts now.
            self.push_bridge_suppressed(now, h);
        } else {
            self.bridged(now, h);
        }
    }

    fn push_bridge_suppressed(&mut self, now: Now, h: CallHandle) {
        let n = self.commands.len();
        self.bridged(now, h);
        // `bridged` emits BridgeMedia; the bridge already runs since the early media.
        let mut i = n;
        while i < self.commands.len() {
            if matches!(self.commands[i], Command::BridgeMedia { .. }) {
                self.commands.remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn pbx_rejected(&mut self, now: Now, h: CallHandle, status: StatusCode) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(b) = call.b.as_mut() else {
            return;
        };
        let cancelled = b.state == PbxState::Cancelling;
        b.state = PbxState::Terminated;
        if cancelled || call.state == State::Ending {
            // The 487 to our CANCEL (or a failure while we were leaving anyway).
            return self.end_when_idle(now, h);
        }
        self.terminate(
            now,
            h,
            CallOutcome::PbxRejected { status: status.0 },
            "PBX rejected the call",
        );
    }

    pub(super) fn pbx_in_dialog(
        &mut self,
        now: Now,
        h: CallHandle,
        tx: Option<ServerTx>,
        req: Message,
    ) {
        let Some(method) = req.method().cloned() else {
            return;
        };
        if method == Method::Ack {
            return self.ack_with_answer(now, h, Leg::Pbx, &req);
        }
        let in_order = self
            .calls
            .get_mut(&h)
            .and_then(|c| c.b.as_mut())
            .and_then(|b| b.dialog.as_mut())
            .is_some_and(|d| d.accept_remote_cseq(&req));
        if !in_order {
            return self.respond_in_dialog(h, Leg::Pbx, tx, &req, StatusCode::SERVER_ERROR);
        }
        match method {
            Method::Bye => {
                self.respond_in_dialog(h, Leg::Pbx, tx, &req, StatusCode::OK);
                self.pbx_hung_up(now, h);
            }
            Method::Invite => self.reinvite_from(now, h, Leg::Pbx, tx, &req),
            Method::Options | Method::Info => {
                self.respond_in_dialog(h, Leg::Pbx, tx, &req, StatusCode::OK)
            }
            _ => self.respond_in_dialog(h, Leg::Pbx, tx, &req, StatusCode(501)),
        }
    }

    /// Cancels the B-leg INVITE (RFC 3261 §9.1), or marks it to be cancelled at the first
    /// provisional response.
    pub(super) fn cancel_pbx(&mut self, _now: Now, h: CallHandle) {
        let Some(b) = self.calls.get_mut(&h).and_then(|c| c.b.as_mut()) else {
            return;
        };
        match b.state {
            PbxState::AwaitingMedia => b.state = PbxState::Terminated,
            PbxState::Calling | PbxState::Early if !b.provisional_seen => {
                b.cancel_wanted = true;
                b.state = PbxState::Cancelling;
            }
            PbxState::Calling | PbxState::Early => self.send_cancel(h),
            PbxState::Confirmed => self.bye_pbx(h, None),
            PbxState::Cancelling | PbxState::Terminated => {}
        }
    }

    fn send_cancel(&mut self, h: CallHandle) {
        let Target::Pbx { next_hop, .. } = self.config.target.clone() else {
            return;
        };
        let Some(b) = self.calls.get_mut(&h).and_then(|c| c.b.as_mut()) else {
            return;
        };
        if b.invite.is_none() {
            return;
        }
        b.state = PbxState::Cancelling;
        let invite_branch = b.branch.clone();
        self.send(SipCommand::Cancel {
            invite_branch,
            destination: next_hop,
        });
    }

    /// BYE on the confirmed B-leg.
    pub(super) fn bye_pbx(&mut self, h: CallHandle, reason: Option<Reason>) {
        let branch = self.ids.branch();
        let via = self.via(&branch);
        let Some(b) = self.calls.get_mut(&h).and_then(|c| c.b.as_mut()) else {
            return;
        };
        if b.state != PbxState::Confirmed || b.bye.is_some() {
            return;
        }
        let Some(d) = b.dialog.as_mut() else {
            return;
        };
        let mut bye = d.request(Method::Bye, via);
        if let Some(r) = reason {
            bye.headers.push(HeaderName::Reason, HeaderValue::Reason(r));
        }
        let destination = d.destination;
        b.bye = Some(branch);
        b.state = PbxState::Terminated;
        self.send(SipCommand::Request {
            request: bye,
            destination,
        });
    }

    pub(super) fn ring_timeout(&mut self, now: Now, h: CallHandle) {
        if self
            .calls
            .get(&h)
            .is_some_and(|c| c.state == State::CallingPbx)
        {
            self.terminate(now, h, CallOutcome::PbxUnreachable, "PBX did not answer");
        }
    }

    pub(super) fn leg_failed(
        &mut self,
        now: Now,
        h: CallHandle,
        leg: Leg,
        method: &Method,
        failure: TransactionFailure,
    ) {
        let _ = failure;
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        match (leg, method) {
            (Leg::Pbx, Method::Bye) => {
                if let Some(b) = call.b.as_mut() {
                    b.bye = None;
                }
                self.end_when_idle_if_ending(now, h);
            }
            (Leg::Caller, Method::Bye) => {
                call.a.bye = None;
                self.end_when_idle_if_ending(now, h);
            }
            (Leg::Pbx, Method::Invite) if call.b.as_ref().is_some_and(|b| b.dialog.is_none()) => {
                if let Some(b) = call.b.as_mut() {
                    b.state = PbxState::Terminated;
                }
                if call.state == State::Ending {
                    self.end_when_idle(now, h);
                } else {
                    self.terminate(now, h, CallOutcome::PbxUnreachable, "PBX unreachable");
                }
            }
            // A failed re-INVITE means the dialog is gone (RFC 3261 §12.2.1.2, case 024).
            _ => {
                self.drop_dialog(h, leg);
                self.terminate(now, h, CallOutcome::MediaFailure, "Dialog lost");
            }
        }
    }

    fn end_when_idle_if_ending(&mut self, now: Now, h: CallHandle) {
        if self.calls.get(&h).is_some_and(|c| c.state == State::Ending) {
            self.end_when_idle(now, h);
        }
    }
}
