//! sipp 3.6 (Debian `sip-tester`) as a caller and as a PBX, with scenarios written per test.
//!
//! Scenarios follow the shapes that work with sipp on loopback (see the project's peer notes):
//! the caller INVITEs with PCMU + telephone-event, ACKs the 200 following its Record-Route,
//! replays a pcap built by [`crate::pcap::RtpStream`] (raw sockets: needs root) and hangs up;
//! the PBX answers, replays its own pcap after the ACK and waits for the BYE.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{Peer, PeerError, require_tool};

/// The SDP both roles offer/answer: PCMU and telephone-event 101.
const SDP: &str = "v=0\r\no=- 1 1 IN IP[local_ip_type] [local_ip]\r\ns=-\r\nc=IN IP[media_ip_type] [media_ip]\r\nt=0 0\r\n\
m=audio [media_port] RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

/// What the caller does once the call is up.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User part of the From URI (the "caller number"; tests use it as a canary).
    pub from_user: String,
    /// User part of the Request-URI (the hospital line).
    pub line: String,
    /// pcap replayed after the ACK (None: no media).
    pub pcap: Option<PathBuf>,
    /// How long to stay in the call after the ACK before sending BYE.
    pub hold_ms: u64,
    /// Expect the gateway to end the call (BYE from the far side) instead of hanging up.
    pub expect_bye: bool,
}

impl Caller {
    /// A caller that stays `hold_ms` and hangs up.
    pub fn new(from_user: &str, line: &str, hold_ms: u64) -> Self {
        Self {
            from_user: from_user.to_owned(),
            line: line.to_owned(),
            pcap: None,
            hold_ms,
            expect_bye: false,
        }
    }

    /// The scenario XML.
    pub fn scenario(&self) -> String {
        let play = self
            .pcap
            .as_ref()
            .map(|p| {
                format!(
                    "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n",
                    p.display()
                )
            })
            .unwrap_or_default();
        let from = format!(
            "<sip:{}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]",
            self.from_user
        );
        let ending = if self.expect_bye {
            format!(
                "  <recv request=\"BYE\" timeout=\"{}\"/>\n  <send><![CDATA[\nSIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n]]></send>\n",
                self.hold_ms + 30_000
            )
        } else {
            format!(
                "  <pause milliseconds=\"{hold}\"/>\n  <send retrans=\"500\"><![CDATA[\nBYE [next_url] SIP/2.0\nVia: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n[routes]\nFrom: {from}\n[last_To:]\nCall-ID: [call_id]\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>\n  <recv response=\"200\" timeout=\"10000\"/>\n",
                hold = self.hold_ms
            )
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<scenario name=\"callseal-caller\">\n  <send retrans=\"500\"><![CDATA[\n\
INVITE sip:{line}@[remote_ip]:[remote_port] SIP/2.0\nVia: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\nFrom: {from}\n\
To: <sip:{line}@[remote_ip]:[remote_port]>\nCall-ID: [call_id]\nCSeq: 1 INVITE\nContact: <sip:{user}@[local_ip]:[local_port]>\nMax-Forwards: 70\n\
Content-Type: application/sdp\nContent-Length: [len]\n\n{sdp}]]></send>\n\
  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"180\" optional=\"true\"/>\n  <recv response=\"183\" optional=\"true\"/>\n\
  <recv response=\"200\" rrs=\"true\" timeout=\"10000\"/>\n  <send><![CDATA[\nACK [next_url] SIP/2.0\nVia: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n[routes]\n\
From: {from}\n[last_To:]\nCall-ID: [call_id]\nCSeq: 1 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>\n{play}{ending}</scenario>\n",
            line = self.line,
            user = self.from_user,
            sdp = SDP.replace("\r\n", "\n"),
        )
    }
}

/// What the PBX does.
#[derive(Debug, Clone)]
pub struct Pbx {
    /// pcap replayed after the ACK (None: no media).
    pub pcap: Option<PathBuf>,
}

impl Pbx {
    /// The scenario XML: 180, 200 with SDP, play after ACK, answer the BYE.
    pub fn scenario(&self) -> String {
        let play = self
            .pcap
            .as_ref()
            .map(|p| {
                format!(
                    "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n",
                    p.display()
                )
            })
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<scenario name=\"callseal-pbx\">\n  <recv request=\"INVITE\" crlf=\"true\"/>\n\
  <send><![CDATA[\nSIP/2.0 180 Ringing\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n[last_Record-Route:]\n[last_Call-ID:]\n[last_CSeq:]\n\
Contact: <sip:[local_ip]:[local_port];transport=[transport]>\nContent-Length: 0\n\n]]></send>\n\
  <send retrans=\"500\"><![CDATA[\nSIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]SIPpTag01[call_number]\n[last_Record-Route:]\n[last_Call-ID:]\n[last_CSeq:]\n\
Contact: <sip:[local_ip]:[local_port];transport=[transport]>\nContent-Type: application/sdp\nContent-Length: [len]\n\n{sdp}]]></send>\n\
  <recv request=\"ACK\" crlf=\"true\"/>\n{play}  <recv request=\"BYE\"/>\n  <send><![CDATA[\nSIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n]]></send>\n</scenario>\n",
            sdp = SDP.replace("\r\n", "\n"),
        )
    }
}

/// Ports of one sipp instance.
#[derive(Debug, Clone, Copy)]
pub struct SippPorts {
    /// SIP port (`-p`).
    pub sip: u16,
    /// Media port (`-mp`; sipp also binds `mp + 2`).
    pub media: u16,
}

impl SippPorts {
    /// Free ports on 127.0.0.1.
    pub fn free() -> Self {
        let sip = crate::net::free_port(0);
        let mut media = crate::net::free_port(1);
        while media.abs_diff(sip) < 4 {
            media = crate::net::free_port(1);
        }
        Self { sip, media }
    }

    /// The SIP address.
    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip))
    }
}

/// Starts sipp with `scenario` written to `dir/<name>.xml`. `target` is the remote address for
/// a caller (None for a PBX that waits). Bounded by sipp's own `-timeout` as well.
pub fn spawn(
    name: &str,
    dir: &Path,
    scenario: &str,
    ports: SippPorts,
    target: Option<SocketAddr>,
    timeout: Duration,
) -> Result<Peer, PeerError> {
    let sipp = require_tool("sipp", "sip-tester")?;
    let file = dir.join(format!("{name}.xml"));
    std::fs::write(&file, scenario).map_err(|source| PeerError::Io {
        what: format!("write {}", file.display()),
        source,
    })?;
    let mut cmd = Command::new(sipp);
    if let Some(t) = target {
        cmd.arg(t.to_string());
    }
    cmd.arg("-sf").arg(&file);
    cmd.args([
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-m",
        "1",
        "-nostdin",
        "-trace_err",
    ]);
    cmd.args([
        "-p",
        &ports.sip.to_string(),
        "-mp",
        &ports.media.to_string(),
    ]);
    cmd.args([
        "-timeout",
        &format!("{}s", timeout.as_secs().max(1)),
        "-timeout_error",
    ]);
    Peer::spawn(name, cmd, dir)
}

/// Waits for a sipp run and requires exit code 0 (all calls succeeded).
pub fn expect_success(peer: Peer, limit: Duration) -> Result<String, PeerError> {
    let name = format!("sipp (pid {:?})", peer.id());
    let done = peer.wait(limit)?;
    match done.code() {
        Some(0) => Ok(done.log),
        code => Err(PeerError::Protocol(format!(
            "{name} exited with {code:?}; its log:\n{}",
            done.log
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_well_formed_and_carry_the_settings() {
        let mut c = Caller::new("+15550100", "counselling", 1500);
        c.pcap = Some(PathBuf::from("/x/caller.pcap"));
        let xml = c.scenario();
        assert!(xml.starts_with("<?xml"));
        assert!(xml.contains("INVITE sip:counselling@[remote_ip]"));
        assert!(xml.contains("<sip:+15550100@[local_ip]"));
        assert!(xml.contains("play_pcap_audio=\"/x/caller.pcap\""));
        assert!(xml.contains("<pause milliseconds=\"1500\"/>"));
        assert_eq!(xml.matches("<![CDATA[").count(), xml.matches("]]>").count());
        let pbx = Pbx { pcap: None }.scenario();
        assert!(pbx.contains("<recv request=\"INVITE\""));
        assert!(!pbx.contains("play_pcap_audio"));
    }

    /// Real sipp against real sipp on loopback: the scenarios complete a call.
    #[test]
    fn sipp_caller_and_pbx_complete_a_call() {
        let dir = tempfile::tempdir().unwrap();
        let pbx_ports = SippPorts::free();
        let pbx = spawn(
            "pbx",
            dir.path(),
            &Pbx { pcap: None }.scenario(),
            pbx_ports,
            None,
            Duration::from_secs(20),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let caller = Caller::new("alice", "line", 200);
        let ports = SippPorts::free();
        let uac = spawn(
            "uac",
            dir.path(),
            &caller.scenario(),
            ports,
            Some(pbx_ports.sip_addr()),
            Duration::from_secs(20),
        )
        .unwrap();
        expect_success(uac, Duration::from_secs(25)).unwrap();
        expect_success(pbx, Duration::from_secs(25)).unwrap();
    }
}
