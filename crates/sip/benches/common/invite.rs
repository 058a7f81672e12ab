//! The message the parser is measured on: a typical ~1 KB INVITE (three Vias, Record-Route,
//! display names, Contact, Allow/Supported, an SDP offer). Shared by the bench and the
//! instruction-count loop (`examples/parse_loop.rs`).

/// The INVITE as it arrives in a datagram.
pub fn invite() -> Vec<u8> {
    let sdp = "v=0\r\n\
o=- 3912875530 3912875530 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
    let head = format!(
        "INVITE sip:counselling@gw.example.org:5060;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---5f3a9c1e;rport=5060;received=203.0.113.10\r\n\
Via: SIP/2.0/UDP 192.0.2.33:5080;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.33\r\n\
Via: SIP/2.0/TCP [2001:db8::9]:5060;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 68\r\n\
Record-Route: <sip:203.0.113.10;lr;ftag=a73kszlfl>\r\n\
Record-Route: <sip:192.0.2.33:5080;lr>\r\n\
From: \"Caller Name\" <sip:+15550100@pbx.example.com;user=phone>;tag=a73kszlfl\r\n\
To: <sip:counselling@gw.example.org>\r\n\
Call-ID: 3848276298220188511@pbx.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: \"Caller Name\" <sip:+15550100@192.0.2.33:5080;transport=udp>;expires=3600\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: ExamplePBX 16.4.1\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n",
        sdp.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(sdp.as_bytes());
    out
}
