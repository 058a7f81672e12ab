//! A minimal UAS over UDP built on callseal-sip: the sans-IO [`Endpoint`] does the transactions
//! and retransmissions, this file is only the tokio shell and a few lines of TU.
//!
//! It answers every INVITE with 200 and a tiny SDP, takes the ACK, answers BYE with 200, and
//! exits after `CALLS` completed calls (exit code 0) or after `TIMEOUT_SECS` (exit code 1):
//!
//! ```text
//! cargo run -p callseal-sip --example uas -- 127.0.0.1:5070 5 30
//! sipp 127.0.0.1:5070 -sn uac -i 127.0.0.1 -m 5 -nostdin
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use callseal_sip::{
    Contact, Dialog, Dialogs, Endpoint, EndpointConfig, Event, HeaderName, HeaderValue, Host,
    MediaType, Message, Method, NameAddr, Routed, ServerTxId, SipUri, StatusCode, Transport, Uri,
};
use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep_until};

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Calls that ended with our 200 to their BYE.
    pub completed: usize,
    /// ACKs for our 2xx that reached the TU.
    pub acks: usize,
    /// Whether the time limit ended the run before `calls` calls completed.
    pub timed_out: bool,
}

/// After the last call, keep answering retransmitted BYEs this long (RFC 3261 §17.2.2).
const LINGER: Duration = Duration::from_millis(300);

/// Serves on `socket` until `calls` calls completed or `limit` passed.
pub async fn serve(socket: UdpSocket, calls: usize, limit: Duration) -> std::io::Result<Report> {
    let local = socket.local_addr()?;
    let seed = u64::from(std::process::id()) << 32 ^ u64::from(local.port());
    let mut tu = Tu {
        ep: Endpoint::new(EndpointConfig::default(), seed),
        dialogs: Dialogs::new(),
        local,
        report: Report::default(),
    };
    let deadline = Instant::now() + limit;
    let mut linger_until: Option<Instant> = None;
    let mut buf = vec![0u8; 65_536];
    loop {
        // Drain what the core produced: events first (they may add responses), then bytes.
        let now = Instant::now().into_std();
        while let Some(ev) = tu.ep.poll_event() {
            tu.on_event(now, ev);
        }
        while let Some(t) = tu.ep.poll_transmit() {
            if let Err(e) = socket.send_to(&t.bytes, t.destination).await {
                eprintln!("send to {} failed: {e}", t.destination);
                tu.ep
                    .handle_transport_error(now, t.transport, t.destination);
            }
        }
        if tu.report.completed >= calls && linger_until.is_none() {
            linger_until = Some(Instant::now() + LINGER);
        }
        let mut wake = deadline;
        if let Some(t) = tu.ep.poll_timeout() {
            wake = wake.min(Instant::from_std(t));
        }
        if let Some(l) = linger_until {
            wake = wake.min(l);
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r?;
                let bytes = buf.get(..n).unwrap_or_default();
                tu.ep.handle_datagram(Instant::now().into_std(), Transport::Udp, from, bytes);
            }
            _ = sleep_until(wake) => {
                let now = Instant::now();
                if linger_until.is_some_and(|l| now >= l) {
                    return Ok(tu.report);
                }
                if now >= deadline {
                    tu.report.timed_out = true;
                    return Ok(tu.report);
                }
                tu.ep.handle_timeout(now.into_std());
            }
        }
    }
}

/// The transaction user: one 200 per INVITE, one 200 per BYE.
struct Tu {
    ep: Endpoint,
    dialogs: Dialogs,
    local: SocketAddr,
    report: Report,
}

impl Tu {
    fn on_event(&mut self, now: std::time::Instant, ev: Event) {
        match ev {
            Event::Request { tx, request, .. } => match request.method() {
                Some(Method::Invite) => self.on_invite(now, tx, &request),
                Some(Method::Bye) => self.on_bye(now, tx, &request),
                _ => {
                    let tag = self.ep.new_tag();
                    let resp = Message::response_to(&request, StatusCode(405), Some(&tag));
                    self.respond(now, tx, resp);
                }
            },
            Event::Ack { .. } => self.report.acks += 1,
            Event::AckTimeout { tx } => eprintln!("no ACK for the 2xx of {tx}"),
            Event::Malformed { source, error, .. } => eprintln!("malformed from {source}: {error}"),
            other => eprintln!("ignored: {other:?}"),
        }
    }

    fn contact(&self) -> NameAddr {
        NameAddr::new(Uri::Sip(SipUri::new(
            Some("uas"),
            Host::from(self.local.ip()),
            Some(self.local.port()),
        )))
    }

    /// RFC 3261 §13.3.1.4: a 2xx with Contact and the answer; the core retransmits it.
    fn on_invite(&mut self, now: std::time::Instant, tx: ServerTxId, invite: &Message) {
        let tag = self.ep.new_tag();
        let contact = self.contact();
        let mut ok = Message::response_to(invite, StatusCode::OK, Some(&tag));
        ok.headers.push(
            HeaderName::Contact,
            HeaderValue::Contact(Contact::Addr(contact.clone())),
        );
        let ip = self.local.ip();
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let sdp = format!(
            "v=0\r\no=- 1 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
             m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        ok.set_body(Some(MediaType::sdp()), sdp.into_bytes());
        match Dialog::uas(invite, &tag, Some(contact)) {
            Ok(d) => self.dialogs.insert(d),
            Err(e) => eprintln!("INVITE without a dialog: {e}"),
        }
        self.respond(now, tx, ok);
    }

    /// RFC 3261 §15.1.2: BYE ends the dialog and is answered with 200; an unknown dialog
    /// gets 481 (§12.2.2).
    fn on_bye(&mut self, now: std::time::Instant, tx: ServerTxId, bye: &Message) {
        let (resp, ended) = match self.dialogs.route(bye) {
            Routed::InDialog(d) => (
                Message::response_to(bye, StatusCode::OK, None),
                Some(d.id.clone()),
            ),
            Routed::Reject(r) => (r, None),
            Routed::OutOfDialog | Routed::StrayAck => (
                Message::response_to(bye, StatusCode::CALL_DOES_NOT_EXIST, None),
                None,
            ),
        };
        if let Some(id) = ended {
            self.dialogs.remove(&id);
            self.report.completed += 1;
        }
        self.respond(now, tx, resp);
    }

    fn respond(&mut self, now: std::time::Instant, tx: ServerTxId, resp: Message) {
        if let Err(e) = self.ep.respond(now, tx, resp) {
            eprintln!("cannot respond on {tx}: {e}");
        }
    }
}

fn usage(problem: &str) -> std::process::ExitCode {
    eprintln!(
        "{problem}\nusage: uas [LOOPBACK_ADDR:PORT] [CALLS] [TIMEOUT_SECS]  (default 127.0.0.1:5070 1 30)"
    );
    std::process::ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = match args
        .next()
        .unwrap_or_else(|| "127.0.0.1:5070".into())
        .parse()
    {
        Ok(a) => a,
        Err(e) => return usage(&format!("invalid address: {e}")),
    };
    if !addr.ip().is_loopback() {
        return usage(&format!(
            "{addr} is not a loopback address; this example only listens on loopback"
        ));
    }
    let Ok(calls) = args.next().unwrap_or_else(|| "1".into()).parse::<usize>() else {
        return usage("CALLS must be a number");
    };
    let Ok(secs) = args.next().unwrap_or_else(|| "30".into()).parse::<u64>() else {
        return usage("TIMEOUT_SECS must be a number");
    };
    let socket = match UdpSocket::bind(addr).await {
        Ok(s) => s,
        Err(e) => return usage(&format!("cannot bind {addr}: {e}; pick a free port")),
    };
    match socket.local_addr() {
        Ok(a) => println!("listening on {a}"),
        Err(e) => return usage(&format!("no local address: {e}")),
    }
    match serve(socket, calls, Duration::from_secs(secs)).await {
        Ok(report) => {
            println!(
                "completed calls: {} (acks: {})",
                report.completed, report.acks
            );
            if report.timed_out {
                eprintln!(
                    "timed out after {secs} s with {} of {calls} calls completed",
                    report.completed
                );
                std::process::ExitCode::from(1)
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("socket error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
