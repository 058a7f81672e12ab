//! How much the call core costs per call, against a reference measured in the same run:
//! parsing the caller's INVITE (work every call needs anyway).
//!
//! Scenario: N concurrent calls are set up to the bridged state (INVITE, port, 200, ACK,
//! digit, confirmation, PBX INVITE, 200, recording started), then all are torn down by BYE.
//! Printed: µs per call for the core and for the reference, and their ratio; and the cost of
//! one timer poll with N calls alive (the shell polls after every input).
//!
//! Run: `cargo bench -p callseal-call --bench calls`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callseal_call::*;
use callseal_sip::{Message, NameAddr, StatusCode, Uri};

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.50\r\ns=-\r\nc=IN IP4 127.0.0.50\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

fn invite_bytes(i: usize) -> Vec<u8> {
    format!(
        "INVITE sip:+15555550100@127.0.0.5:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.50:5060;branch=z9hG4bK-{i}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+1555{i:07}@example.com>;tag=c{i}\r\n\
         To: <sip:+15555550100@gw.example.com>\r\n\
         Call-ID: bench-{i}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:c@127.0.0.50:5060>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

fn drain(core: &mut CallManager, out: &mut Vec<Command>) {
    out.clear();
    while let Some(c) = core.poll_command() {
        out.push(c);
    }
}

fn run(n: usize) -> (Duration, Duration, Duration) {
    let caller: SocketAddr = "127.0.0.50:5060".parse().expect("addr");
    let pbx: SocketAddr = "127.0.0.10:5060".parse().expect("addr");
    let mut cfg = CallConfig::new(
        "127.0.0.5:5060".parse().expect("addr"),
        Target::Pbx {
            uri: Uri::parse("sip:consult@pbx.example.com").expect("uri"),
            next_hop: pbx,
        },
    );
    // Every call of the run is alive at once.
    cfg.max_calls = n;
    let mut core = CallManager::new(cfg, Pepper::from_bytes([1; 32]), [2; 32]).expect("config");
    let t0 = Instant::now();
    let mut now = Now::new(t0, 1_800_000_000_000);
    let invites: Vec<Vec<u8>> = (0..n).map(invite_bytes).collect();

    let start = Instant::now();
    for bytes in &invites {
        black_box(Message::parse(bytes).expect("parses"));
    }
    let reference = start.elapsed();

    let mut out = Vec::new();
    let mut oks = Vec::with_capacity(n);
    let mut pbx_invites = Vec::with_capacity(n);
    let start = Instant::now();
    for (i, bytes) in invites.iter().enumerate() {
        let req = Message::parse(bytes).expect("parses");
        core.handle_sip(
            now,
            SipEvent::Request {
                tx: Some(ServerTx(i as u64)),
                request: req,
                source: caller,
            },
        );
        drain(&mut core, &mut out);
        let Some(Command::AllocateMedia { call, .. }) = out.first() else {
            panic!("no allocate")
        };
        let call = *call;
        let port = 20_000 + (i % 40_000) as u16;
        core.handle_event(
            now,
            Event::MediaAllocated {
                call,
                leg: Leg::Caller,
                local: SocketAddr::new("127.0.0.5".parse().expect("ip"), port),
                srtp_key: None,
            },
        );
        drain(&mut core, &mut out);
        let ok = out
            .iter()
            .find_map(|c| match c {
                Command::Sip(SipCommand::Respond { response, .. }) => Some(response.clone()),
                _ => None,
            })
            .expect("200");
        core.handle_event(
            now,
            Event::DtmfDigit {
                call,
                leg: Leg::Caller,
                digit: '1',
            },
        );
        core.handle_event(
            now,
            Event::PromptFinished {
                call,
                leg: Leg::Caller,
                outcome: PromptOutcome::BargedIn,
            },
        );
        core.handle_event(
            now,
            Event::PromptFinished {
                call,
                leg: Leg::Caller,
                outcome: PromptOutcome::Completed,
            },
        );
        core.handle_event(
            now,
            Event::MediaAllocated {
                call,
                leg: Leg::Pbx,
                local: SocketAddr::new("127.0.0.5".parse().expect("ip"), port + 1),
                srtp_key: None,
            },
        );
        drain(&mut core, &mut out);
        let inv = out
            .iter()
            .find_map(|c| match c {
                Command::Sip(SipCommand::Request { request, .. }) => Some(request.clone()),
                _ => None,
            })
            .expect("PBX INVITE");
        let mut r = Message::response_to(&inv, StatusCode::OK, Some("p"));
        r.headers.push(
            callseal_sip::HeaderName::Contact,
            callseal_sip::HeaderValue::Contact(callseal_sip::Contact::Addr(NameAddr::new(
                Uri::parse("sip:pbx@127.0.0.10").expect("uri"),
            ))),
        );
        r.set_body(
            Some(callseal_sip::MediaType::sdp()),
            SDP.replace("127.0.0.50", "127.0.0.20").into_bytes(),
        );
        core.handle_sip(now, SipEvent::Response { response: r });
        core.handle_event(
            now,
            Event::RecordingStarted {
                call,
                recording: RecordingRef([i as u8; 16]),
            },
        );
        drain(&mut core, &mut out);
        oks.push(ok);
        pbx_invites.push(inv);
        now = now.after(Duration::from_micros(10));
    }
    let setup = start.elapsed();
    assert_eq!(core.active_calls(), n);

    let start = Instant::now();
    for _ in 0..100 {
        black_box(core.poll_timeout());
    }
    let poll = start.elapsed() / 100;

    // Teardown: the caller hangs up, the PBX answers the BYE.
    for (ok, inv) in oks.iter().zip(&pbx_invites) {
        let h = &ok.headers;
        let text = format!(
            "BYE sip:callseal@127.0.0.5:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.50:5060;branch=z9hG4bK-bye\r\n\
             From: <sip:x@example.com>;tag={}\r\nTo: <sip:y@gw>;tag={}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            h.from().and_then(NameAddr::tag).expect("tag"),
            h.to().and_then(NameAddr::tag).expect("tag"),
            h.call_id().expect("id")
        );
        core.handle_sip(
            now,
            SipEvent::Request {
                tx: Some(ServerTx(1)),
                request: Message::parse(text.as_bytes()).expect("bye"),
                source: caller,
            },
        );
        drain(&mut core, &mut out);
        let bye = out
            .iter()
            .find_map(|c| match c {
                Command::Sip(SipCommand::Request { request, .. }) => Some(request.clone()),
                _ => None,
            })
            .expect("BYE to PBX");
        core.handle_sip(
            now,
            SipEvent::Response {
                response: Message::response_to(&bye, StatusCode::OK, None),
            },
        );
        drain(&mut core, &mut out);
        black_box(inv);
    }
    assert_eq!(core.active_calls(), 0);
    (reference, setup, poll)
}

fn main() {
    for n in [1_000usize, 5_000] {
        let (reference, setup, poll) = run(n);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "calls={n}: core setup {:.1} µs/call, reference INVITE parse {:.1} µs/call, ratio {:.1}x; poll_timeout with {n} calls {:.1} µs",
            per(setup),
            per(reference),
            setup.as_secs_f64() / reference.as_secs_f64(),
            poll.as_secs_f64() * 1e6
        );
    }
}
