//! Round-trip properties of the parser and printer (RFC 3261 §7, §20, §25): for generated
//! requests and responses, print ∘ parse ∘ print = print, parse ∘ print = id on the model, the
//! typed accessors return exactly the generated values, Content-Length always equals the body
//! length, and stream framing (§18.3) cut at any point yields the same messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use callseal_sip::{
    CSeq, Contact, Header, HeaderName, HeaderValue, Headers, Host, Limits, MediaType, Message,
    Method, NameAddr, Params, Rport, Scheme, SipUri, StartLine, StatusCode, StreamFramer,
    StreamItem, Uri, Via,
};
use proptest::prelude::*;
use proptest::sample::subsequence;

// ---------------------------------------------------------------------------------------------
// Strategies for the parts of a message.

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Cancel),
        Just(Method::Options),
        Just(Method::Register),
        Just(Method::Info),
        Just(Method::Update),
        Just(Method::Prack),
        Just(Method::Subscribe),
        Just(Method::Notify),
        Just(Method::Refer),
        Just(Method::Message),
        Just(Method::Publish),
        // Extension methods are tokens (RFC 3261 §25.1 extension-method).
        "[A-Z][A-Z0-9._!%*+`'~-]{0,9}".prop_filter_map("a known method", |s| {
            match Method::parse(&s) {
                Some(Method::Other(o)) => Some(Method::Other(o)),
                _ => None,
            }
        }),
    ]
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<[u16; 8]>().prop_map(Ipv6Addr::from),
        // Compressed forms (`2001:db8::1`, `::1`) are the common case on the wire (RFC 5118).
        (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, a, b)),
        Just(Ipv6Addr::LOCALHOST),
        ipv4().prop_map(|a| a.to_ipv6_mapped()),
    ]
}

fn domain() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z][a-z0-9]{0,6}){0,3}"
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        domain().prop_map(|d| Host::Domain(d.into())),
        ipv4().prop_map(Host::V4),
        ipv6().prop_map(Host::V6),
    ]
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9._!%*+`'~-]{0,11}"
}

/// Builds a parameter list from distinct names, so `Params::get` finds each generated value.
fn params_from(list: Vec<(&'static str, Option<String>)>) -> Params {
    let mut params = Params::new();
    for (name, value) in &list {
        params.push(name, value.as_deref());
    }
    params
}

fn uri_params() -> impl Strategy<Value = Params> {
    (
        prop_oneof![Just("udp"), Just("tcp"), Just("tls"), Just("ws")],
        ipv4(),
        token(),
        0u8..=255,
    )
        .prop_flat_map(|(transport, maddr, ext, ttl)| {
            subsequence(
                vec![
                    ("transport", Some(transport.to_owned())),
                    ("user", Some("phone".to_owned())),
                    ("ttl", Some(ttl.to_string())),
                    ("maddr", Some(maddr.to_string())),
                    ("lr", None),
                    ("x-ext", Some(ext)),
                    ("ob", None),
                ],
                0..=4,
            )
        })
        .prop_map(params_from)
}

fn sip_uri(with_headers: bool) -> BoxedStrategy<SipUri> {
    (
        prop_oneof![3 => Just(Scheme::Sip), 1 => Just(Scheme::Sips)],
        proptest::option::of("([a-zA-Z0-9+._~!*'()-]|%[0-9A-F]{2}){1,12}"),
        proptest::option::weighted(0.1, "[a-z0-9]{1,6}"),
        host(),
        proptest::option::of(any::<u16>()),
        uri_params(),
        if with_headers {
            proptest::option::weighted(
                0.3,
                "[a-z]{1,5}=[a-z0-9%]{1,5}(&[a-z]{1,5}=[a-z0-9]{1,5}){0,2}",
            )
            .boxed()
        } else {
            Just(None).boxed()
        },
    )
        .prop_map(|(scheme, user, password, host, port, params, headers)| {
            // A password only exists after a user (RFC 3261 §19.1.1 userinfo).
            let password = user.as_ref().and(password);
            SipUri {
                scheme,
                user: user.map(Into::into),
                password,
                host,
                port,
                params,
                headers,
            }
        })
        .boxed()
}

fn uri(with_headers: bool) -> BoxedStrategy<Uri> {
    prop_oneof![
        6 => sip_uri(with_headers).prop_map(Uri::Sip),
        1 => "tel:\\+[0-9]{5,12}(;phone-context=[a-z]{2,6}\\.example)?".prop_map(Uri::Other),
        1 => Just(Uri::Other("urn:service:sos".to_owned())),
    ]
    .boxed()
}

/// Display names, decoded: tokens with spaces (printed quoted anyway) and free text with the
/// characters a quoted-string must escape (RFC 3261 §25.1 quoted-pair), UTF-8 included.
fn display() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        "[A-Za-z0-9.!%*_+`'~-]{1,8}( [A-Za-z0-9.!%*_+`'~-]{1,8}){0,2}",
        "[ -~éü☎\t]{0,16}",
        Just("Bob \\\"".to_owned()),
        Just(String::new()),
    ])
}

fn name_addr(uri: BoxedStrategy<Uri>, tag: bool) -> BoxedStrategy<NameAddr> {
    (
        display(),
        uri,
        if tag {
            token().prop_map(Some).boxed()
        } else {
            Just(None).boxed()
        },
        proptest::option::weighted(0.2, token()),
    )
        .prop_map(|(display, uri, tag, ext)| {
            let mut list = Vec::new();
            if let Some(t) = tag {
                list.push(("tag", Some(t)));
            }
            if let Some(e) = ext {
                list.push(("x-p", Some(e)));
            }
            NameAddr {
                display: display.map(Into::into),
                uri,
                params: params_from(list),
            }
        })
        .boxed()
}

fn via() -> BoxedStrategy<Via> {
    (
        prop_oneof![
            Just("UDP"),
            Just("TCP"),
            Just("TLS"),
            Just("SCTP"),
            Just("WS")
        ],
        host(),
        proptest::option::of(1u16..),
        "z9hG4bK[a-zA-Z0-9.!%*_+`'~-]{1,20}",
        proptest::option::of(prop_oneof![
            Just(Rport::Requested),
            any::<u16>().prop_map(Rport::Port)
        ]),
        proptest::option::of(prop_oneof![
            ipv4().prop_map(IpAddr::V4),
            ipv6().prop_map(IpAddr::V6)
        ]),
        proptest::option::weighted(0.2, 1u8..),
    )
        .prop_map(|(transport, host, port, branch, rport, received, ttl)| {
            let mut list = vec![("branch", Some(branch))];
            match rport {
                Some(Rport::Requested) => list.push(("rport", None)),
                Some(Rport::Port(p)) => list.push(("rport", Some(p.to_string()))),
                None => {}
            }
            if let Some(ip) = received {
                // RFC 5118 §4.5: `received` carries an IPv6 address without brackets.
                list.push(("received", Some(ip.to_string())));
            }
            if let Some(t) = ttl {
                list.push(("ttl", Some(t.to_string())));
            }
            Via {
                transport: transport.to_owned().into(),
                host,
                port,
                params: params_from(list),
            }
        })
        .boxed()
}

fn contact() -> BoxedStrategy<Contact> {
    prop_oneof![
        1 => Just(Contact::Star),
        8 => (
            display(),
            uri(true),
            proptest::option::of(0u32..100_000),
            proptest::option::of("0\\.[0-9]{1,3}|1\\.0"),
        )
            .prop_map(|(display, uri, expires, q)| {
                let mut list = Vec::new();
                if let Some(e) = expires {
                    list.push(("expires", Some(e.to_string())));
                }
                if let Some(q) = q {
                    list.push(("q", Some(q)));
                }
                Contact::Addr(NameAddr {
                    display: display.map(Into::into),
                    uri,
                    params: params_from(list),
                })
            }),
    ]
    .boxed()
}

fn route() -> BoxedStrategy<NameAddr> {
    (display(), sip_uri(false))
        .prop_map(|(display, mut uri)| {
            uri.params.remove("lr");
            uri.params.push("lr", None);
            NameAddr {
                display: display.map(Into::into),
                uri: Uri::Sip(uri),
                params: Params::new(),
            }
        })
        .boxed()
}

fn call_id() -> impl Strategy<Value = String> {
    // RFC 3261 §25.1 callid = word [ "@" word ]
    "[a-zA-Z0-9.!%*_+`'()<>:/?{}~-]{1,24}(@[a-z0-9.-]{1,12})?"
}

/// Unknown headers (kept as text) with distinct names, and their values without outer LWS.
fn extras() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec("[!-~]([ -~]{0,30}[!-~])?", 0..4).prop_map(|values| {
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("X-Extra-{i}"), v))
            .collect()
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        // Any octets, CRLF CRLF included: only Content-Length says where the body ends.
        2 => proptest::collection::vec(any::<u8>(), 1..300),
        1 => Just(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\r\n".to_vec()),
    ]
}

// ---------------------------------------------------------------------------------------------
// A generated message: the values, then the message built from them.

#[derive(Debug, Clone)]
struct Spec {
    start: StartLine,
    vias: Vec<Via>,
    max_forwards: Option<u32>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: CSeq,
    contacts: Vec<Contact>,
    routes: Vec<NameAddr>,
    extras: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Spec {
    fn message(&self) -> Message {
        let mut h = Headers::new();
        for v in &self.vias {
            h.push(HeaderName::Via, HeaderValue::Via(v.clone()));
        }
        if let Some(n) = self.max_forwards {
            h.push(HeaderName::MaxForwards, HeaderValue::Number(n));
        }
        let routes = if self.start_is_request() {
            HeaderName::Route
        } else {
            HeaderName::RecordRoute
        };
        for r in &self.routes {
            h.push(routes.clone(), HeaderValue::NameAddr(r.clone()));
        }
        h.push(HeaderName::From, HeaderValue::NameAddr(self.from.clone()));
        h.push(HeaderName::To, HeaderValue::NameAddr(self.to.clone()));
        h.push(
            HeaderName::CallId,
            HeaderValue::Text(self.call_id.as_str().into()),
        );
        h.push(HeaderName::CSeq, HeaderValue::CSeq(self.cseq.clone()));
        for c in &self.contacts {
            h.push(HeaderName::Contact, HeaderValue::Contact(c.clone()));
        }
        for (name, value) in &self.extras {
            h.push(
                HeaderName::Other(name.clone().into()),
                HeaderValue::Text(value.as_str().into()),
            );
        }
        if !self.body.is_empty() {
            h.push(
                HeaderName::ContentType,
                HeaderValue::MediaType(MediaType::sdp()),
            );
        }
        Message {
            start: self.start.clone(),
            headers: h,
            body: self.body.clone(),
        }
    }

    fn start_is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
}

fn contacts() -> BoxedStrategy<Vec<Contact>> {
    // `Contact: *` stands alone (RFC 3261 §10.2.2); otherwise one or more addresses.
    prop_oneof![
        1 => Just(Vec::new()),
        1 => Just(vec![Contact::Star]),
        4 => proptest::collection::vec(
            contact().prop_filter("an address", |c| matches!(c, Contact::Addr(_))),
            1..3
        ),
    ]
    .boxed()
}

fn request() -> BoxedStrategy<Spec> {
    (
        method(),
        uri(false),
        proptest::collection::vec(via(), 1..4),
        proptest::option::of(0u32..=255),
        name_addr(uri(false), true),
        name_addr(uri(false), false),
        proptest::option::of(token()),
        call_id(),
        0u32..(1 << 31),
        (contacts(), proptest::collection::vec(route(), 0..3)),
        extras(),
        body(),
    )
        .prop_map(
            |(method, ruri, vias, mf, from, mut to, to_tag, call_id, seq, (c, r), x, body)| {
                if let Some(t) = to_tag {
                    to.params.push("tag", Some(&t));
                }
                Spec {
                    start: StartLine::Request {
                        method: method.clone(),
                        uri: ruri,
                    },
                    vias,
                    max_forwards: mf,
                    from,
                    to,
                    call_id,
                    // RFC 3261 §8.1.1.5: the CSeq method matches the request method.
                    cseq: CSeq { seq, method },
                    contacts: c,
                    routes: r,
                    extras: x,
                    body,
                }
            },
        )
        .boxed()
}

fn response() -> BoxedStrategy<Spec> {
    (
        100u16..=699,
        "([!-~]([ -~]{0,20}[!-~])?)?",
        method(),
        proptest::collection::vec(via(), 1..4),
        name_addr(uri(false), true),
        name_addr(uri(false), true),
        call_id(),
        0u32..(1 << 31),
        (contacts(), proptest::collection::vec(route(), 0..3)),
        extras(),
        body(),
    )
        .prop_map(
            |(code, reason, method, vias, from, to, call_id, seq, (c, r), x, body)| Spec {
                start: StartLine::Response {
                    status: StatusCode(code),
                    reason,
                },
                vias,
                max_forwards: None,
                from,
                to,
                call_id,
                cseq: CSeq { seq, method },
                contacts: c,
                routes: r,
                extras: x,
                body,
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// Parses `bytes` and checks every round-trip property against `spec`.
fn check(spec: &Spec) -> Result<(), TestCaseError> {
    let model = spec.message();
    let printed = model.to_bytes();
    let parsed = Message::parse(&printed).map_err(|e| {
        TestCaseError::fail(format!(
            "printed message does not parse: {e}\n{}",
            String::from_utf8_lossy(&printed)
        ))
    })?;
    prop_assert_eq!(
        parsed.to_bytes(),
        printed.clone(),
        "print(parse(print(m))) != print(m)"
    );
    prop_assert_eq!(&parsed, &model, "parse(print(m)) != m");

    // The typed accessors return what was generated.
    let h = &parsed.headers;
    match &spec.start {
        StartLine::Request { method, uri } => {
            prop_assert_eq!(parsed.method(), Some(method));
            prop_assert_eq!(parsed.request_uri(), Some(uri));
            prop_assert_eq!(parsed.status(), None);
            prop_assert!(parsed.validate_request().is_ok());
            prop_assert_eq!(h.routes().cloned().collect::<Vec<_>>(), spec.routes.clone());
        }
        StartLine::Response { status, reason } => {
            prop_assert_eq!(parsed.status(), Some(*status));
            prop_assert_eq!(
                &parsed.start,
                &StartLine::Response {
                    status: *status,
                    reason: reason.clone()
                }
            );
            prop_assert!(parsed.validate_response().is_ok());
            prop_assert_eq!(
                h.record_routes().cloned().collect::<Vec<_>>(),
                spec.routes.clone()
            );
        }
    }
    prop_assert_eq!(h.vias().cloned().collect::<Vec<_>>(), spec.vias.clone());
    let top = h.top_via().ok_or(TestCaseError::fail("no top Via"))?;
    let gen_top = &spec.vias[0];
    prop_assert_eq!(top.branch(), gen_top.params.get("branch"));
    prop_assert!(top.has_rfc3261_branch());
    prop_assert_eq!(top.received(), gen_top.params.get("received"));
    let want_rport = gen_top.params.find("rport").map(|p| match &p.value {
        None => Rport::Requested,
        Some(v) => Rport::Port(v.parse().unwrap_or_default()),
    });
    prop_assert_eq!(top.rport(), want_rport);
    if let Some(r) = top.received() {
        prop_assert!(r.parse::<IpAddr>().is_ok(), "received is an address: {}", r);
    }
    prop_assert_eq!(&top.host, &gen_top.host);
    prop_assert_eq!(top.port, gen_top.port);

    let from = h.from().ok_or(TestCaseError::fail("no From"))?;
    prop_assert_eq!(&from.display, &spec.from.display);
    prop_assert_eq!(&from.uri, &spec.from.uri);
    prop_assert_eq!(from.tag(), spec.from.params.get("tag"));
    let to = h.to().ok_or(TestCaseError::fail("no To"))?;
    prop_assert_eq!(&to.display, &spec.to.display);
    prop_assert_eq!(&to.uri, &spec.to.uri);
    prop_assert_eq!(to.tag(), spec.to.params.get("tag"));
    prop_assert_eq!(h.call_id(), Some(spec.call_id.as_str()));
    prop_assert_eq!(h.cseq(), Some(&spec.cseq));
    prop_assert_eq!(h.max_forwards(), spec.max_forwards);
    prop_assert_eq!(
        h.contacts().cloned().collect::<Vec<_>>(),
        spec.contacts.clone()
    );
    let first_addr = spec.contacts.iter().find_map(|c| match c {
        Contact::Addr(a) => Some(a),
        Contact::Star => None,
    });
    prop_assert_eq!(h.contact(), first_addr);
    for (name, value) in &spec.extras {
        prop_assert_eq!(h.text(name), Some(value.as_str()));
    }

    // Content-Length is printed from the body, and the body comes back byte for byte.
    let head_end = printed
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(TestCaseError::fail("no end of head"))?;
    let head = String::from_utf8_lossy(&printed[..head_end]);
    let declared = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse::<usize>().ok());
    prop_assert_eq!(declared, Some(spec.body.len()));
    prop_assert_eq!(printed.len(), head_end + 4 + spec.body.len());
    prop_assert_eq!(&parsed.body, &spec.body);
    if spec.body.is_empty() {
        prop_assert!(h.content_type().is_none());
    } else {
        prop_assert!(h.content_type().is_some_and(|c| c.is("application", "sdp")));
    }
    Ok(())
}

/// Frames `msgs` printed back to back, pushed to a [`StreamFramer`] in the chunks `cuts` makes.
fn framed(msgs: &[Message], cuts: &[usize]) -> Result<Vec<Message>, TestCaseError> {
    let mut wire = Vec::new();
    for m in msgs {
        wire.extend_from_slice(&m.to_bytes());
    }
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    let mut framer = StreamFramer::new(Limits::default());
    let mut out = Vec::new();
    for pair in points.windows(2) {
        framer.push(&wire[pair[0]..pair[1]]);
        loop {
            match framer.next_item() {
                Ok(Some(StreamItem::Message(m))) => out.push(m),
                Ok(Some(StreamItem::KeepAlive)) => {
                    return Err(TestCaseError::fail("a message was framed as a keep-alive"));
                }
                Ok(None) => break,
                Err(e) => return Err(TestCaseError::fail(format!("framing failed: {e}"))),
            }
        }
    }
    prop_assert_eq!(framer.buffered(), 0);
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn requests_round_trip_and_accessors_return_the_generated_values(spec in request()) {
        check(&spec)?;
    }

    #[test]
    fn responses_round_trip_and_accessors_return_the_generated_values(spec in response()) {
        check(&spec)?;
    }

    #[test]
    fn stream_framing_at_any_split_yields_the_same_messages(
        a in request(),
        b in response(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let msgs = [a.message(), b.message(), a.message()];
        prop_assert_eq!(framed(&msgs, &cuts)?, msgs.to_vec());
    }

    #[test]
    fn a_parsed_header_value_prints_back_the_same(v in via(), n in name_addr(uri(false), true)) {
        // Header::parse is the entry point a relay uses to rewrite one header.
        let mut text = HeaderValue::Via(v.clone()).to_string();
        let via_back = Header::parse(HeaderName::Via, &text)
            .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(via_back.value, HeaderValue::Via(v));
        text = HeaderValue::NameAddr(n.clone()).to_string();
        let from_back = Header::parse(HeaderName::From, &text)
            .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(from_back.value, HeaderValue::NameAddr(n));
    }
}
