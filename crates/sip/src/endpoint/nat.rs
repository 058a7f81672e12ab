//! Where responses go: RFC 3261 §18.2.1 (`received`) and §18.2.2, with RFC 3581 (`rport`)
//! for clients behind NAT (case 014).

use std::net::{IpAddr, SocketAddr};

use crate::message::{Host, Rport, Via};
use crate::transaction::Transport;

/// Records in the top Via where a request really came from, before it is processed:
/// `received=<source IP>` when the sent-by host is not that IP (§18.2.1), and — when the
/// client asked with a bare `rport` — `rport=<source port>` plus `received`, even if the IP
/// matches (RFC 3581 §4). `received` is always the packet's source, never a local address.
pub fn apply_received_rport(via: &mut Via, source: SocketAddr) {
    let ip = source.ip().to_canonical();
    let ip_text = ip.to_string(); // RFC 5118 §4.5: no brackets in `received`.
    if via.params.contains("rport") {
        // RFC 3581 §4: fill in the port in place, then `received` right after it.
        via.params.set("rport", Some(&source.port().to_string()));
        via.params.set_after("rport", "received", Some(&ip_text));
        return;
    }
    let same_host = match &via.host {
        Host::Domain(_) => false,
        h => h.ip().map(|a| a.to_canonical()) == Some(ip),
    };
    if !same_host {
        via.params.set("received", Some(&ip_text));
    }
}

/// The destination of a response whose (already processed) top Via is `via`, for a request
/// that came from `source` over `transport`:
/// - reliable transports: back over the connection, i.e. to `source` (§18.2.2);
/// - `rport=N`: the `received` address (else the source IP) and port N (RFC 3581 §4);
/// - else the `received` address (else the sent-by IP, else the source IP) and the sent-by
///   port, default 5060 (§18.2.2).
pub fn response_destination(via: &Via, source: SocketAddr, transport: Transport) -> SocketAddr {
    if transport.is_reliable() {
        return source;
    }
    let received: Option<IpAddr> = via
        .received()
        .and_then(|r| r.trim_start_matches('[').trim_end_matches(']').parse().ok());
    if let Some(Rport::Port(port)) = via.rport() {
        return SocketAddr::new(received.unwrap_or(source.ip()), port);
    }
    let ip = received.or_else(|| via.host.ip()).unwrap_or(source.ip());
    let port = via.port.unwrap_or(transport.default_port());
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(s: &str) -> Via {
        Via::parse(s).expect("test Via parses")
    }

    #[test]
    fn received_is_added_only_when_the_host_differs() {
        let src: SocketAddr = "192.0.2.9:5060".parse().expect("addr");
        let mut same = via("SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKa");
        apply_received_rport(&mut same, src);
        assert_eq!(same.received(), None);
        let mut name = via("SIP/2.0/UDP host.example.com;branch=z9hG4bKa");
        apply_received_rport(&mut name, src);
        assert_eq!(name.received(), Some("192.0.2.9"));
        assert_eq!(response_destination(&name, src, Transport::Udp), src);
        let v6: SocketAddr = "[2001:db8::1]:7000".parse().expect("addr");
        let mut r = via("SIP/2.0/UDP [2001:db8::2]:5060;rport;branch=z9hG4bKa");
        apply_received_rport(&mut r, v6);
        assert_eq!(r.received(), Some("2001:db8::1"));
        assert_eq!(response_destination(&r, v6, Transport::Udp), v6);
        let tcp: SocketAddr = "192.0.2.7:40000".parse().expect("addr");
        assert_eq!(response_destination(&same, tcp, Transport::Tcp), tcp);
    }
}
