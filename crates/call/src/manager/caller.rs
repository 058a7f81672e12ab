//! The caller's leg: a new INVITE, the answer with the gateway's anchored SDP, in-dialog
//! requests (ACK, BYE, re-INVITE), CANCEL, and our own requests towards the caller.

use std::net::SocketAddr;

use callseal_sip::{HeaderName, HeaderValue, Message, Method, NameAddr, Reason, StatusCode, Uri};

use super::call::{Call, CallerLeg, LegMedia, PbxState, Recording, State};
use super::sdp_legs::{sdp_of, with_sdp};
use super::{CallManager, Now};
use crate::command::{CallHandle, CallOutcome, Command, IpFamily, Leg, Prompt, StopReason};
use crate::dialog::{self, Dialog};
use crate::error::SdpError;
use crate::identity::CallerNumber;
use crate::sdp::{Codec, Direction, SdpOrigin, SrtpMasterKey, build_offer, offered_family};
use crate::sip_io::{ServerTx, SipCommand};
use crate::timers::TimerTable;

impl CallManager {
    pub(super) fn new_call(
        &mut self,
        now: Now,
        tx: Option<ServerTx>,
        req: Message,
        source: SocketAddr,
        call_id: String,
        from_tag: String,
    ) {
        let Some(tx) = tx else {
            return;
        };
        if self
            .by_caller
            .contains_key(&(call_id.clone(), from_tag.clone()))
        {
            // RFC 3261 §8.2.2.2: same Call-ID and From-tag, new transaction: a merged request.
            self.respond_plain(Some(tx), &req, StatusCode(482));
            return;
        }
        if !self.accepting || self.calls.len() >= self.config.max_calls {
            // RFC 3261 §21.5.4: overloaded or going down — try again later (elsewhere).
            let tag = self.ids.token();
            let mut r = dialog::response(&req, StatusCode(503), Some(&tag), None);
            r.headers.push(
                HeaderName::Other("Retry-After".into()),
                HeaderValue::Text(self.config.retry_after_secs.to_string().into()),
            );
            self.send(SipCommand::Respond { tx, response: r });
            return;
        }
        if req.headers.contact().is_none() {
            // RFC 3261 §8.1.1.8: an INVITE MUST carry a Contact; no dialog can be built without.
            let mut r = dialog::response(&req, StatusCode::BAD_REQUEST, None, None);
            r.set_reason_phrase("Missing Contact");
            self.send(SipCommand::Respond { tx, response: r });
            return;
        }
        let required: Vec<String> = req.headers.require().map(str::to_owned).collect();
        if !required.is_empty() {
            // RFC 3261 §8.2.2.3: we support no extension (no 100rel, no timer): 420 naming them.
            let tag = self.ids.token();
            let mut r = dialog::response(&req, StatusCode(420), Some(&tag), None);
            r.headers.push(
                HeaderName::Other("Unsupported".into()),
                HeaderValue::Tokens(required.iter().collect()),
            );
            self.send(SipCommand::Respond { tx, response: r });
            return;
        }
        let (offer, addr, srtp) = match sdp_of(&req) {
            Some(Ok(o)) => match offered_family(&o, &self.config.sdp) {
                Ok((addr, srtp)) => (Some(o), addr, srtp),
                Err(e) => return self.reject_offer(tx, &req, &e),
            },
            Some(Err(e)) => return self.reject_offer(tx, &req, &e),
            // A delayed offer (RFC 3261 §13.2.1): we offer in the 200, in our own family.
            None => (None, self.config.sip_address.ip(), false),
        };

        let handle = crate::command::CallHandle(self.next_handle);
        self.next_handle += 1;
        let caller = CallerNumber::new(&caller_user(&req), &self.pepper);
        let line = req
            .request_uri()
            .and_then(Uri::as_sip)
            .and_then(|u| u.user.as_deref())
            .unwrap_or_default()
            .to_owned();
        let local_tag = self.ids.token();
        let call = Call {
            state: State::AwaitingMedia,
            caller,
            line,
            started_unix_ms: now.unix_ms,
            a: CallerLeg {
                invite: req,
                tx: Some(tx),
                source,
                local_tag,
                offer,
                dialog: None,
                media: None,
                reinvite: None,
                update_pending: false,
                answer_in_ack: false,
                bye: None,
                ack: None,
            },
            b: None,
            echo: false,
            decision: None,
            evidence: None,
            recording: Recording::Off,
            withdrawn: false,
            digits: String::new(),
            prompts: std::collections::VecDeque::new(),
            timers: TimerTable::default(),
            outcome: None,
        };
        self.by_caller.insert((call_id, from_tag), handle);
        self.by_tx.insert(tx, handle);
        self.calls.insert(handle, call);
        self.push(Command::AllocateMedia {
            call: handle,
            leg: Leg::Caller,
            family: if addr.is_ipv4() {
                IpFamily::V4
            } else {
                IpFamily::V6
            },
            srtp,
        });
    }

    fn reject_offer(&mut self, tx: ServerTx, req: &Message, e: &SdpError) {
        // RFC 3261 §21.4.26 488 with a RFC 3261 §20.43 Warning that says why (no SDP text).
        let tag = self.ids.token();
        let mut r = dialog::response(req, StatusCode(488), Some(&tag), None);
        let text = e.to_string().replace('"', "'");
        r.headers.push(
            HeaderName::Other("Warning".into()),
            HeaderValue::Text(format!("304 callseal \"{text}\"").into()),
        );
        self.send(SipCommand::Respond { tx, response: r });
    }

    pub(super) fn caller_media_allocated(
        &mut self,
        now: Now,
        h: CallHandle,
        local: SocketAddr,
        srtp_key: Option<SrtpMasterKey>,
    ) {
        let session_id = self.ids.number();
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        if call.state != State::AwaitingMedia || call.a.media.is_some() {
            return;
        }
        let offer = call.a.offer.take();
        let mut media = LegMedia {
            local,
            srtp_key,
            origin: SdpOrigin {
                session_id,
                version: session_id,
                address: local.ip(),
            },
            last_sdp: None,
            audio_index: 0,
            audio: None,
            peer_direction: Direction::SendRecv,
        };
        let Some(offer) = offer else {
            return self.offer_to_caller(now, h, media);
        };
        let answer = self.answer_on_leg(&mut media, &offer);
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(tx) = call.a.tx else {
            return;
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                let invite = call.a.invite.clone();
                call.outcome = Some(CallOutcome::OfferRejected);
                self.reject_offer(tx, &invite, &e);
                return self.finish(now, h);
            }
        };
        let Some(d) = Dialog::uas(
            &call.a.invite,
            &call.a.local_tag,
            contact.clone(),
            call.a.source,
        ) else {
            return;
        };
        let ok = dialog::response(
            &call.a.invite,
            StatusCode::OK,
            Some(&call.a.local_tag),
            Some(&contact),
        );
        let ok = with_allow(with_sdp(ok, answer.body));
        call.a.dialog = Some(d);
        call.a.media = Some(media);
        call.a.tx = None;
        call.state = State::PlayingPrompt { plays: 1 };
        self.send(SipCommand::Respond { tx, response: ok });
        self.configure(h, Leg::Caller, answer.audio, answer.srtp);
        self.play(h, Leg::Caller, Prompt::Consent, true);
    }

    /// The caller's INVITE had no SDP: our 200 carries the gateway's offer.
    fn offer_to_caller(&mut self, _now: Now, h: CallHandle, mut media: LegMedia) {
        let contact = self.contact();
        let first = self
            .config
            .sdp
            .codecs
            .first()
            .copied()
            .unwrap_or(Codec::Pcma);
        let offer = build_offer(
            media.local,
            &self.config.sdp,
            media.origin,
            first,
            Direction::SendRecv,
        );
        let body = offer.to_bytes();
        media.last_sdp = Some(offer);
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(tx) = call.a.tx.take() else {
            return;
        };
        let Some(d) = Dialog::uas(
            &call.a.invite,
            &call.a.local_tag,
            contact.clone(),
            call.a.source,
        ) else {
            return;
        };
        let ok = dialog::response(
            &call.a.invite,
            StatusCode::OK,
            Some(&call.a.local_tag),
            Some(&contact),
        );
        let ok = with_allow(with_sdp(ok, body));
        call.a.dialog = Some(d);
        call.a.media = Some(media);
        call.a.answer_in_ack = true;
        call.state = State::AwaitingAck;
        self.send(SipCommand::Respond { tx, response: ok });
    }

    pub(super) fn caller_in_dialog(
        &mut self,
        now: Now,
        h: CallHandle,
        tx: Option<ServerTx>,
        req: Message,
    ) {
        let Some(method) = req.method().cloned() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let _ = call;
        if method == Method::Ack {
            // The transaction layer stops its 2xx retransmissions itself (RFC 3261 §13.3.1.4).
            return self.ack_with_answer(now, h, Leg::Caller, &req);
        }
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let in_order = call
            .a
            .dialog
            .as_mut()
            .is_some_and(|d| d.accept_remote_cseq(&req));
        if !in_order {
            // RFC 3261 §12.2.2: a lower CSeq than the last one is answered 500.
            return self.respond_in_dialog(h, Leg::Caller, tx, &req, StatusCode::SERVER_ERROR);
        }
        match method {
            Method::Bye => {
                self.respond_in_dialog(h, Leg::Caller, tx, &req, StatusCode::OK);
                self.caller_hung_up(now, h);
            }
            Method::Invite => self.reinvite_from(now, h, Leg::Caller, tx, &req),
            Method::Info => {
                self.respond_in_dialog(h, Leg::Caller, tx, &req, StatusCode::OK);
                // Some phones send keys as SIP INFO (application/dtmf-relay) instead of RFC 4733.
                if let Some(d) = info_digit(&req) {
                    self.digit(now, h, Leg::Caller, d);
                }
            }
            Method::Options => self.respond_in_dialog(h, Leg::Caller, tx, &req, StatusCode::OK),
            _ => self.respond_in_dialog(h, Leg::Caller, tx, &req, StatusCode(501)),
        }
    }

    /// Answers an in-dialog request with our tag (already in To) and our Contact.
    pub(super) fn respond_in_dialog(
        &mut self,
        _h: CallHandle,
        _leg: Leg,
        tx: Option<ServerTx>,
        req: &Message,
        status: StatusCode,
    ) {
        if let Some(tx) = tx {
            let r = dialog::response(req, status, None, None);
            self.send(SipCommand::Respond { tx, response: r });
        }
    }

    /// The caller left (BYE): what that means depends on how far the call got.
    pub(super) fn caller_hung_up(&mut self, now: Now, h: CallHandle) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        call.timers.clear_all();
        match call.state {
            State::AwaitingMedia
            | State::AwaitingAck
            | State::PlayingPrompt { .. }
            | State::AwaitingDigit { .. }
            | State::Confirming => {
                // Nothing was stored and the PBX was never called (issue: hang-up during the
                // prompt ends everything).
                call.outcome = Some(CallOutcome::AbandonedDuringPrompt);
                self.finish(now, h);
            }
            State::CallingPbx => {
                call.outcome = Some(CallOutcome::AbandonedBeforeAnswer);
                self.cancel_pbx(now, h);
                self.end_when_idle(now, h);
            }
            State::Bridged => {
                if call.outcome.is_none() {
                    call.outcome = Some(CallOutcome::Completed);
                }
                self.stop_recording(h, StopReason::CallEnded);
                self.bye_pbx(h, None);
                self.end_when_idle(now, h);
            }
            State::Surveying { .. } => self.finish(now, h),
            State::Ending => {}
        }
    }

    pub(super) fn caller_cancelled(&mut self, now: Now, h: CallHandle, tx: ServerTx) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        // After our 200 the CANCEL has no effect (RFC 3261 §9.2); the caller will send BYE.
        if call.a.tx != Some(tx) {
            return;
        }
        let r = dialog::response(
            &call.a.invite,
            StatusCode::REQUEST_TERMINATED,
            Some(&call.a.local_tag),
            None,
        );
        call.a.tx = None;
        call.outcome = Some(CallOutcome::AbandonedDuringPrompt);
        self.send(SipCommand::Respond { tx, response: r });
        self.finish(now, h);
    }

    pub(super) fn caller_response(&mut self, now: Now, h: CallHandle, resp: Message) {
        let Some(status) = resp.status() else {
            return;
        };
        let Some(cseq) = resp.headers.cseq().cloned() else {
            return;
        };
        let branch = resp
            .headers
            .top_via()
            .and_then(|v| v.branch())
            .map(str::to_owned);
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        match cseq.method {
            Method::Bye if status.is_final() && call.a.bye == branch => {
                call.a.bye = None;
                if call.state == State::Ending {
                    self.end_when_idle(now, h);
                }
            }
            Method::Invite => self.reinvite_response(now, h, Leg::Caller, &resp, cseq.seq),
            _ => {}
        }
    }

    pub(super) fn ack_timeout(&mut self, now: Now, h: CallHandle) {
        // RFC 3261 §13.3.1.4: no ACK within 64·T1 — the session is ended with a BYE.
        self.terminate(now, h, CallOutcome::MediaFailure, "No ACK");
    }

    /// Sends BYE to the caller if its dialog exists and no BYE is out yet.
    pub(super) fn bye_caller(&mut self, h: CallHandle, reason: Option<Reason>) {
        let branch = self.ids.branch();
        let via = self.via(&branch);
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        if call.a.bye.is_some() {
            return;
        }
        let Some(d) = call.a.dialog.as_mut() else {
            return;
        };
        let mut bye = d.request(Method::Bye, via);
        if let Some(r) = reason {
            bye.headers.push(HeaderName::Reason, HeaderValue::Reason(r));
        }
        let destination = d.destination;
        call.a.bye = Some(branch);
        self.send(SipCommand::Request {
            request: bye,
            destination,
        });
    }

    /// Ends the call from the gateway's side: BYE/CANCEL whatever is up, stop recording.
    pub(super) fn terminate(&mut self, now: Now, h: CallHandle, outcome: CallOutcome, text: &str) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        if call.state == State::Ending {
            return;
        }
        if call.outcome.is_none() {
            call.outcome = Some(outcome);
        }
        call.timers.clear_all();
        // A shutdown ends a good recording normally; anything else is a failure of the call.
        let reason = if call.outcome == Some(CallOutcome::Shutdown) {
            StopReason::CallEnded
        } else {
            StopReason::Failure
        };
        if let Some(tx) = call.a.tx.take() {
            // Not answered yet: a final error response ends the A-leg (RFC 3261 §13.3.1).
            let r = dialog::response(
                &call.a.invite,
                StatusCode(503),
                Some(&call.a.local_tag),
                None,
            );
            self.send(SipCommand::Respond { tx, response: r });
        }
        self.stop_recording(h, reason);
        let pbx_state = self
            .calls
            .get(&h)
            .and_then(|c| c.b.as_ref())
            .map(|b| b.state);
        match pbx_state {
            Some(PbxState::Confirmed) => self.bye_pbx(h, Some(Reason::sip(500, text))),
            Some(PbxState::Calling | PbxState::Early | PbxState::AwaitingMedia) => {
                self.cancel_pbx(now, h)
            }
            _ => {}
        }
        self.bye_caller(h, Some(Reason::sip(500, text)));
        self.end_when_idle(now, h);
    }

    /// Stops the recording (if running) for `reason`.
    pub(super) fn stop_recording(&mut self, h: CallHandle, reason: StopReason) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        if matches!(
            call.recording,
            Recording::On { .. } | Recording::Starting { .. }
        ) {
            call.recording = Recording::Done;
            self.push(Command::StopRecording { call: h, reason });
        }
    }
}

/// The identity the caller presents: P-Asserted-Identity (RFC 3325) if present, else From.
fn caller_user(req: &Message) -> String {
    let from_pai = req.headers.p_asserted_identities().next();
    let na: Option<&NameAddr> = from_pai.or_else(|| req.headers.from());
    match na.map(|n| &n.uri) {
        Some(Uri::Sip(u)) => u.user.as_deref().unwrap_or("anonymous").to_owned(),
        Some(Uri::Other(s)) => s.clone(),
        None => "anonymous".into(),
    }
}

/// The key of an INFO with `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (`5`).
fn info_digit(req: &Message) -> Option<char> {
    let ct = req.headers.content_type()?;
    let body = std::str::from_utf8(&req.body).ok()?;
    let value = if ct.is("application", "dtmf-relay") {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ct.is("application", "dtmf") {
        body.trim()
    } else {
        return None;
    };
    let mut chars = value.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && crate::command::is_dtmf_digit(c)).then_some(c)
}

pub(super) fn with_allow(mut m: Message) -> Message {
    m.headers.push(
        HeaderName::Allow,
        HeaderValue::Tokens(
            ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        ),
    );
    m
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::Caller => Leg::Pbx,
            Leg::Pbx => Leg::Caller,
        }
    }
}
