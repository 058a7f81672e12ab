//! Test harness: drives the real `CallManager` on simulated time with real SIP messages
//! (parsed by callseal-sip) and summarises the commands it emits.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use callseal_call::sdp::RemoteSdp;
use callseal_call::*;
use callseal_sip::{Message, NameAddr, Uri};

pub const GW: &str = "198.51.100.5:5060";
pub const CALLER: &str = "192.0.2.50:5060";
pub const PBX: &str = "203.0.113.10:5060";
pub const T0_UNIX_MS: u64 = 20_791 * 86_400_000 + 10 * 3_600_000; // 2026-12-04 10:00 UTC

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

pub fn case(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cases")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

pub fn case_text(name: &str) -> String {
    String::from_utf8(case(name)).expect("fixture is text")
}

pub fn pbx_config() -> CallConfig {
    let uri = Uri::parse("sip:consult@pbx.example.com").expect("uri");
    let mut c = CallConfig::new(
        addr(GW),
        Target::Pbx {
            uri,
            next_hop: addr(PBX),
        },
    );
    c.consent.prompt_sha256 = [0xab; 32];
    c
}

pub struct H {
    pub core: CallManager,
    pub now: Now,
    next_tx: u64,
}

impl H {
    pub fn new(cfg: CallConfig) -> Self {
        let core = CallManager::new(cfg, Pepper::from_bytes([7; 32]), [9; 32]).expect("config");
        Self {
            core,
            now: Now::new(Instant::now(), T0_UNIX_MS),
            next_tx: 1,
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.after(d);
    }

    pub fn drain(&mut self) -> Vec<Command> {
        std::iter::from_fn(|| self.core.poll_command()).collect()
    }

    pub fn tx(&mut self) -> ServerTx {
        self.next_tx += 1;
        ServerTx(self.next_tx)
    }

    /// Feeds a request with a fresh server transaction.
    pub fn request(&mut self, msg: Message, from: &str) -> (ServerTx, Vec<Command>) {
        let tx = self.tx();
        let is_ack = msg.method() == Some(&callseal_sip::Method::Ack);
        self.core.handle_sip(
            self.now,
            SipEvent::Request {
                tx: (!is_ack).then_some(tx),
                request: msg,
                source: addr(from),
            },
        );
        (tx, self.drain())
    }

    pub fn response(&mut self, msg: Message) -> Vec<Command> {
        self.core
            .handle_sip(self.now, SipEvent::Response { response: msg });
        self.drain()
    }

    pub fn event(&mut self, ev: Event) -> Vec<Command> {
        self.core.handle_event(self.now, ev);
        self.drain()
    }

    /// Advances to the next deadline and runs it.
    pub fn fire(&mut self) -> Vec<Command> {
        let at = self.core.poll_timeout().expect("a timer is set");
        let d = at.saturating_duration_since(self.now.instant);
        self.advance(d);
        self.core.handle_timeout(self.now);
        self.drain()
    }

    /// Runs timers until `d` has passed.
    pub fn run_for(&mut self, d: Duration) -> Vec<Command> {
        let end = self.now.instant + d;
        let mut out = Vec::new();
        while let Some(at) = self.core.poll_timeout().filter(|at| *at <= end) {
            let step = at.saturating_duration_since(self.now.instant);
            self.advance(step);
            self.core.handle_timeout(self.now);
            out.extend(self.drain());
        }
        let rest = end.saturating_duration_since(self.now.instant);
        self.advance(rest);
        out
    }
}

/// A caller's INVITE with an SDP body (Content-Length computed).
pub fn caller_invite(call_id: &str, from_user: &str, sdp: &str) -> Message {
    let text = format!(
        "INVITE sip:+15555550100@198.51.100.5:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice Caller\" <sip:{from_user}@example.com>;tag=caller-{call_id}\r\n\
         To: <sip:+15555550100@gw.example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@192.0.2.50:5060>\r\n\
         P-Asserted-Identity: <sip:{from_user}@example.com>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    Message::parse(text.as_bytes()).expect("test INVITE parses")
}

pub const CALLER_SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

/// An in-dialog request from the caller, built from the dialog our 200 created.
pub fn caller_request(ok: &Message, method: &str, cseq: u32, sdp: Option<&str>) -> Message {
    let h = &ok.headers;
    let from = h.from().expect("from");
    let to = h.to().expect("to");
    let body = sdp.unwrap_or("");
    let ct = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    let text = format!(
        "{method} sip:callseal@198.51.100.5:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-{method}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <{}>;tag={}\r\n\
         To: <{}>;tag={}\r\n\
         Call-ID: {}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@192.0.2.50:5060>\r\n\
         {ct}Content-Length: {}\r\n\r\n{body}",
        from.uri,
        from.tag().expect("from tag"),
        to.uri,
        to.tag().expect("to tag"),
        h.call_id().expect("call-id"),
        body.len()
    );
    Message::parse(text.as_bytes()).expect("in-dialog request parses")
}

/// A response from the PBX to our request (Via/From/To/Call-ID/CSeq copied), with a To-tag,
/// Contact and optional SDP.
pub fn pbx_response(req: &Message, status: u16, tag: &str, sdp: Option<&str>) -> Message {
    let mut r = Message::response_to(req, callseal_sip::StatusCode(status), Some(tag));
    r.headers.push(
        callseal_sip::HeaderName::Contact,
        callseal_sip::HeaderValue::Contact(callseal_sip::Contact::Addr(NameAddr::new(
            Uri::parse("sip:pbx@203.0.113.10:5060").expect("uri"),
        ))),
    );
    if let Some(s) = sdp {
        r.set_body(Some(callseal_sip::MediaType::sdp()), s.as_bytes().to_vec());
    }
    // Round-trip through the wire format, as the transaction layer would deliver it.
    Message::parse(&r.to_bytes()).expect("response parses")
}

pub const PBX_SDP: &str = "v=0\r\no=PBX 5000 5000 IN IP4 203.0.113.10\r\ns=-\r\nc=IN IP4 203.0.113.20\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n";

/// One line per command, for list assertions.
pub fn summary(cmds: &[Command]) -> Vec<String> {
    cmds.iter().map(summarise).collect()
}

pub fn summarise(c: &Command) -> String {
    match c {
        Command::AllocateMedia {
            leg, family, srtp, ..
        } => {
            format!(
                "AllocateMedia {leg:?} {family:?}{}",
                if *srtp { " srtp" } else { "" }
            )
        }
        Command::ConfigureMedia { params, .. } => format!("ConfigureMedia {:?}", params.leg),
        Command::PlayPrompt {
            prompt, barge_in, ..
        } => {
            format!(
                "PlayPrompt {}{}",
                prompt.stem(),
                if *barge_in { " barge-in" } else { "" }
            )
        }
        Command::StopPrompt { .. } => "StopPrompt".into(),
        Command::BridgeMedia { .. } => "BridgeMedia".into(),
        Command::UnbridgeMedia { .. } => "UnbridgeMedia".into(),
        Command::ConnectEcho { .. } => "ConnectEcho".into(),
        Command::StartRecording { .. } => "StartRecording".into(),
        Command::DepositKey { .. } => "DepositKey".into(),
        Command::StopRecording { reason, .. } => format!("StopRecording {reason:?}"),
        Command::EraseRecording { .. } => "EraseRecording".into(),
        Command::RecordSurvey { answer } => format!("RecordSurvey {}", answer.answer),
        Command::WriteCallRecord { record, .. } => format!("CallRecord {:?}", record.outcome),
        Command::ReleaseMedia { .. } => "ReleaseMedia".into(),
        Command::Sip(SipCommand::Respond { response, .. }) => format!(
            "Respond {} {}",
            response.status().map_or(0, |s| s.0),
            response.headers.cseq().map_or("?", |c| c.method.as_str())
        ),
        Command::Sip(SipCommand::Request { request, .. }) => {
            format!("Send {}", request.method().map_or("?", |m| m.as_str()))
        }
        Command::Sip(SipCommand::Ack { .. }) => "Ack".into(),
        Command::Sip(SipCommand::Cancel { .. }) => "Send CANCEL".into(),
        _ => format!("{c:?}"),
    }
}

pub fn find_sip_request<'a>(
    cmds: &'a [Command],
    method: &str,
) -> Option<(&'a Message, SocketAddr)> {
    cmds.iter().find_map(|c| match c {
        Command::Sip(SipCommand::Request {
            request,
            destination,
        }) if request.method().map(|m| m.as_str()) == Some(method) => Some((request, *destination)),
        _ => None,
    })
}

pub fn find_ack(cmds: &[Command]) -> Option<&Message> {
    cmds.iter().find_map(|c| match c {
        Command::Sip(SipCommand::Ack { request, .. }) => Some(request),
        _ => None,
    })
}

pub fn find_response(cmds: &[Command], status: u16) -> Option<&Message> {
    cmds.iter().find_map(|c| match c {
        Command::Sip(SipCommand::Respond { response, .. })
            if response.status().map(|s| s.0) == Some(status) =>
        {
            Some(response)
        }
        _ => None,
    })
}

pub fn media_params(cmds: &[Command], leg: Leg) -> Option<&MediaParams> {
    cmds.iter().rev().find_map(|c| match c {
        Command::ConfigureMedia { params, .. } if params.leg == leg => Some(params),
        _ => None,
    })
}

pub fn call_record(cmds: &[Command]) -> Option<&CallRecord> {
    cmds.iter().find_map(|c| match c {
        Command::WriteCallRecord { record, .. } => Some(record),
        _ => None,
    })
}

pub fn sdp_text(m: &Message) -> String {
    String::from_utf8(m.sdp_body().expect("has SDP").to_vec()).expect("SDP text")
}

pub fn parse_sdp(m: &Message) -> RemoteSdp {
    RemoteSdp::parse(m.sdp_body().expect("has SDP")).expect("our SDP parses")
}

/// Replaces the `o=` line so generated session ids compare with a golden file.
pub fn with_origin(sdp: &str, origin: &str) -> String {
    sdp.lines()
        .map(|l| {
            if l.starts_with("o=") {
                origin.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

/// Drives a call up to the consent prompt; returns the handle and the caller's 200 OK.
pub fn answered_call(h: &mut H, call_id: &str, sdp: &str) -> (CallHandle, Message) {
    let (_, cmds) = h.request(caller_invite(call_id, "+15555550101", sdp), CALLER);
    assert_eq!(summary(&cmds), ["AllocateMedia Caller V4"]);
    let call = match &cmds[0] {
        Command::AllocateMedia { call, .. } => *call,
        _ => unreachable!(),
    };
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Caller,
        local: addr("198.51.100.5:30010"),
        srtp_key: None,
    });
    assert_eq!(
        summary(&cmds),
        [
            "Respond 200 INVITE",
            "ConfigureMedia Caller",
            "PlayPrompt consent barge-in"
        ]
    );
    let ok = find_response(&cmds, 200).expect("200").clone();
    let ack = caller_request(&ok, "ACK", 1, None);
    let (_, cmds) = h.request(ack, CALLER);
    assert!(cmds.is_empty(), "{:?}", summary(&cmds));
    (call, ok)
}

/// From the consent prompt to a PBX INVITE with `digit`; returns the INVITE.
pub fn consent_and_invite(h: &mut H, call: CallHandle, digit: char) -> Message {
    let cmds = h.event(Event::DtmfDigit {
        call,
        leg: Leg::Caller,
        digit,
    });
    let confirm = if digit == '1' {
        "PlayPrompt confirm-yes"
    } else {
        "PlayPrompt confirm-no"
    };
    assert_eq!(summary(&cmds), ["StopPrompt", confirm]);
    let _ = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::BargedIn,
    });
    let cmds = h.event(Event::PromptFinished {
        call,
        leg: Leg::Caller,
        outcome: PromptOutcome::Completed,
    });
    assert_eq!(summary(&cmds), ["AllocateMedia Pbx V4"]);
    let cmds = h.event(Event::MediaAllocated {
        call,
        leg: Leg::Pbx,
        local: addr("198.51.100.5:30020"),
        srtp_key: None,
    });
    assert_eq!(summary(&cmds), ["Send INVITE"]);
    let (invite, dest) = find_sip_request(&cmds, "INVITE").expect("INVITE");
    assert_eq!(dest, addr(PBX));
    invite.clone()
}

/// A bridged call whose PBX leg answered with To-tag `pbx_tag`; returns (call, caller 200, our INVITE).
pub fn bridged(h: &mut H, id: &str, pbx_tag: &str) -> (CallHandle, Message, Message) {
    let (call, ok) = answered_call(h, id, CALLER_SDP);
    let invite = consent_and_invite(h, call, '1');
    let cmds = h.response(pbx_response(&invite, 200, pbx_tag, Some(PBX_SDP)));
    assert_eq!(
        summary(&cmds),
        ["Ack", "ConfigureMedia Pbx", "BridgeMedia", "StartRecording"]
    );
    (call, ok, invite)
}

pub fn ours(invite: &Message) -> (String, String, String) {
    let call_id = invite.headers.call_id().expect("call-id").to_owned();
    let tag = invite
        .headers
        .from()
        .and_then(NameAddr::tag)
        .expect("tag")
        .to_owned();
    let branch = invite
        .headers
        .top_via()
        .and_then(|v| v.branch())
        .expect("branch")
        .to_owned();
    (call_id, tag, branch)
}

/// Replaces `pairs` in a fixture and parses it.
pub fn patched(name: &str, pairs: &[(&str, &str)]) -> Message {
    let mut text = case_text(name);
    for (from, to) in pairs {
        text = text.replace(from, to);
    }
    Message::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fixture message with its SDP body replaced by another fixture's (Content-Length fixed).
pub fn with_body(msg: &str, sdp: &[u8], pairs: &[(&str, &str)]) -> Message {
    let mut text = case_text(msg);
    for (from, to) in pairs {
        text = text.replace(from, to);
    }
    let head = text.split("\r\n\r\n").next().expect("head").to_owned();
    let head: Vec<String> = head
        .lines()
        .map(|l| {
            if l.starts_with("Content-Length:") {
                format!("Content-Length: {}", sdp.len())
            } else {
                l.to_owned()
            }
        })
        .collect();
    let mut bytes = head.join("\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(sdp);
    Message::parse(&bytes).expect("rebuilt message parses")
}

pub fn audio(cmds: &[Command], leg: Leg) -> &callseal_call::sdp::NegotiatedAudio {
    &media_params(cmds, leg)
        .unwrap_or_else(|| panic!("ConfigureMedia {leg:?} in {:?}", summary(cmds)))
        .audio
}

pub fn caller_answer_to(reinvite: &Message, sdp: &str) -> Message {
    let mut r = Message::response_to(reinvite, callseal_sip::StatusCode::OK, None);
    r.set_body(
        Some(callseal_sip::MediaType::sdp()),
        sdp.as_bytes().to_vec(),
    );
    Message::parse(&r.to_bytes()).expect("parses")
}
