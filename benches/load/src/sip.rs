//! Just enough SIP (RFC 3261) and SDP (RFC 4566) for a load generator: build the
//! INVITE/ACK/BYE of a caller and the answers of a PBX stand-in, and read the few
//! fields the harness needs from what the system under test sends. Not a SIP stack:
//! it trusts its loopback peers and skips everything the benchmark does not use.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A parsed SIP message borrowing from the datagram.
#[derive(Debug)]
pub struct Msg<'a> {
    start: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    pub body: &'a str,
}

impl<'a> Msg<'a> {
    pub fn parse(datagram: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(datagram).ok()?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next()?.trim();
        let mut headers = Vec::new();
        for line in lines {
            // RFC 3261 §7.3.1 line folding is obsolete and unused by the peers here.
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim(), value.trim()));
        }
        Some(Self {
            start,
            headers,
            body,
        })
    }

    /// Status code of a response, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// Method of a request, `None` for a response.
    pub fn method(&self) -> Option<&'a str> {
        if self.start.starts_with("SIP/2.0") {
            return None;
        }
        self.start.split(' ').next()
    }

    /// Every value of a header, in order, compact forms included (RFC 3261 §7.3.3);
    /// comma-separated values of Via and Record-Route are split.
    pub fn all(&self, name: &str) -> Vec<&'a str> {
        let compact = match name {
            "Via" => "v",
            "From" => "f",
            "To" => "t",
            "Call-ID" => "i",
            "Contact" => "m",
            "Content-Length" => "l",
            "Content-Type" => "c",
            _ => "",
        };
        let mut out = Vec::new();
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case(name)
                || (!compact.is_empty() && n.eq_ignore_ascii_case(compact))
            {
                if matches!(name, "Via" | "Record-Route") {
                    out.extend(split_list(v));
                } else {
                    out.push(*v);
                }
            }
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.all(name).into_iter().next()
    }

    pub fn call_id(&self) -> Option<&'a str> {
        self.get("Call-ID")
    }

    /// The method named in CSeq (which request a response answers).
    pub fn cseq_method(&self) -> Option<&'a str> {
        self.get("CSeq")?.split_whitespace().nth(1)
    }
}

/// Splits a header list at commas outside `<...>` and quotes.
fn split_list(v: &str) -> Vec<&str> {
    let (mut out, mut depth, mut quoted, mut from) = (Vec::new(), 0i32, false, 0);
    for (i, ch) in v.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(v[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[from..].trim());
    out
}

/// The `tag` parameter of a From/To value.
pub fn tag(value: &str) -> Option<&str> {
    let after = value.rsplit_once('>').map_or(value, |(_, p)| p);
    after.split(';').find_map(|p| p.trim().strip_prefix("tag="))
}

/// The URI inside a name-addr (`<sip:...>`) or a bare addr-spec.
pub fn uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// The media address of the first audio stream: connection address (media level
/// over session level, RFC 4566 §5.7) and port. `None` if absent or rejected (port 0).
pub fn sdp_audio(body: &str) -> Option<SocketAddrV4> {
    let (mut session_c, mut media_c, mut port, mut in_audio) = (None, None, None, false);
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            if port.is_some() {
                break;
            }
            in_audio = m.starts_with("audio ");
            if in_audio {
                port = m
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u16>().ok());
            }
        } else if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            let ip = c
                .split('/')
                .next()
                .and_then(|a| a.trim().parse::<Ipv4Addr>().ok());
            if port.is_none() && !in_audio {
                session_c = ip;
            } else if in_audio {
                media_c = ip;
            }
        }
    }
    let port = port.filter(|p| *p != 0)?;
    Some(SocketAddrV4::new(media_c.or(session_c)?, port))
}

/// An SDP offer or answer for PCMU + telephone-event at `media`.
pub fn sdp(media: SocketAddrV4, session_id: u64) -> String {
    format!(
        "v=0\r\no=- {session_id} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = media.ip(),
        port = media.port()
    )
}

/// Fields of an outgoing request.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub via: SocketAddrV4,
    pub branch: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    pub routes: &'a [String],
    pub contact: Option<SocketAddrV4>,
    pub sdp: Option<&'a str>,
}

impl Request<'_> {
    pub fn render(&self) -> String {
        let mut m = String::with_capacity(800);
        let _ = write!(
            m,
            "{} {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{};rport\r\nMax-Forwards: 70\r\n",
            self.method, self.uri, self.via, self.branch
        );
        for r in self.routes {
            let _ = write!(m, "Route: {r}\r\n");
        }
        let _ = write!(
            m,
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n",
            self.from, self.to, self.call_id, self.cseq, self.method
        );
        if let Some(c) = self.contact {
            let _ = write!(m, "Contact: <sip:bench@{c}>\r\n");
        }
        finish(&mut m, self.sdp);
        m
    }
}

/// A response to `req`: Via, From, To, Call-ID, CSeq echoed (RFC 3261 §8.2.6.2),
/// the To tag added if the request had none, Record-Route copied for 2xx to INVITE
/// (§12.1.1).
pub fn response(
    req: &Msg<'_>,
    code: u16,
    reason: &str,
    to_tag: &str,
    contact: Option<SocketAddrV4>,
    sdp: Option<&str>,
) -> String {
    let mut m = String::with_capacity(900);
    let _ = write!(m, "SIP/2.0 {code} {reason}\r\n");
    for v in req.all("Via") {
        let _ = write!(m, "Via: {v}\r\n");
    }
    if (200..300).contains(&code) && req.method() == Some("INVITE") {
        for r in req.all("Record-Route") {
            let _ = write!(m, "Record-Route: {r}\r\n");
        }
    }
    let to = req.get("To").unwrap_or("");
    let _ = write!(m, "From: {}\r\n", req.get("From").unwrap_or(""));
    if tag(to).is_none() && code > 100 {
        let _ = write!(m, "To: {to};tag={to_tag}\r\n");
    } else {
        let _ = write!(m, "To: {to}\r\n");
    }
    let _ = write!(
        m,
        "Call-ID: {}\r\nCSeq: {}\r\n",
        req.call_id().unwrap_or(""),
        req.get("CSeq").unwrap_or("")
    );
    if let Some(c) = contact {
        let _ = write!(m, "Contact: <sip:pbx@{c}>\r\n");
    }
    finish(&mut m, sdp);
    m
}

fn finish(m: &mut String, sdp: Option<&str>) {
    match sdp {
        Some(b) => {
            let _ = write!(
                m,
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        }
        None => m.push_str("Content-Length: 0\r\n\r\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa, SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKb\r\n\
        Record-Route: <sip:127.0.0.1;lr;ftag=x>, <sip:127.0.0.2;lr>\r\nFrom: <sip:a@h>;tag=f1\r\n\
        To: \"P, Q\" <sip:b@h;user=phone>;tag=t9\r\ni: abc@h\r\nCSeq: 1 INVITE\r\nm: <sip:pbx@127.0.0.1:5070>\r\n\
        Content-Type: application/sdp\r\nContent-Length: 99\r\n\r\nv=0\r\nc=IN IP4 127.0.0.9\r\nm=audio 30002 RTP/AVP 0\r\n";

    #[test]
    fn response_fields_are_read_with_compact_forms_and_lists() {
        let m = Msg::parse(OK.as_bytes()).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.method(), None);
        assert_eq!(m.all("Via").len(), 2);
        assert_eq!(
            m.all("Record-Route"),
            vec!["<sip:127.0.0.1;lr;ftag=x>", "<sip:127.0.0.2;lr>"]
        );
        assert_eq!(m.call_id(), Some("abc@h"));
        assert_eq!(m.cseq_method(), Some("INVITE"));
        assert_eq!(tag(m.get("To").unwrap()), Some("t9"));
        assert_eq!(uri(m.get("Contact").unwrap()), "sip:pbx@127.0.0.1:5070");
        assert_eq!(sdp_audio(m.body), Some("127.0.0.9:30002".parse().unwrap()));
    }

    #[test]
    fn media_level_connection_wins_and_port_zero_is_rejected() {
        let both = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 127.0.0.5\r\n";
        assert_eq!(sdp_audio(both), Some("127.0.0.5:4000".parse().unwrap()));
        assert_eq!(
            sdp_audio("c=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n"),
            None
        );
        assert_eq!(
            sdp_audio("m=audio 4000 RTP/AVP 0\r\n"),
            None,
            "no connection address"
        );
    }

    #[test]
    fn response_echoes_the_request_and_adds_a_to_tag() {
        let inv = "INVITE sip:pbx@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
            Record-Route: <sip:127.0.0.1;lr>\r\nFrom: <sip:a@h>;tag=f1\r\nTo: <sip:pbx@h>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\n\r\n";
        let req = Msg::parse(inv.as_bytes()).unwrap();
        let media = "127.0.0.1:40000".parse().unwrap();
        let body = sdp(media, 1);
        let out = response(
            &req,
            200,
            "OK",
            "tt",
            Some("127.0.0.1:5070".parse().unwrap()),
            Some(&body),
        );
        let r = Msg::parse(out.as_bytes()).unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(tag(r.get("To").unwrap()), Some("tt"));
        assert_eq!(r.get("CSeq"), Some("7 INVITE"));
        assert_eq!(r.all("Record-Route"), vec!["<sip:127.0.0.1;lr>"]);
        assert_eq!(
            r.get("Content-Length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(sdp_audio(r.body), Some(media));
    }

    #[test]
    fn request_renders_routes_and_body_length() {
        let routes = vec!["<sip:127.0.0.1;lr>".to_string()];
        let req = Request {
            method: "BYE",
            uri: "sip:pbx@127.0.0.1:5070",
            via: "127.0.0.1:5061".parse().unwrap(),
            branch: "b1",
            from: "<sip:a@h>;tag=f",
            to: "<sip:b@h>;tag=t",
            call_id: "c",
            cseq: 2,
            routes: &routes,
            contact: None,
            sdp: None,
        };
        let text = req.render();
        let m = Msg::parse(text.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("BYE"));
        assert_eq!(m.get("Route"), Some("<sip:127.0.0.1;lr>"));
        assert_eq!(m.get("Content-Length"), Some("0"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
