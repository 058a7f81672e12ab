//! baresip 1.0 as a headless softphone caller, driven over its `ctrl_tcp` interface (JSON in
//! netstrings): dial, wait for `CALL_ESTABLISHED`, send RFC 4733 digits, hang up, quit.
//! Its audio source is a WAV file (8 kHz mono S16LE, as its aufile module requires).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{Peer, PeerError, require_tool};

/// A running baresip and its control connection.
pub struct Baresip {
    peer: Peer,
    ctrl: TcpStream,
    buf: Vec<u8>,
    token: u32,
    /// Events seen so far (JSON objects).
    pub events: Vec<serde_json::Value>,
}

/// Ports of one baresip instance.
#[derive(Debug, Clone, Copy)]
pub struct BaresipPorts {
    /// SIP (UDP and TCP; baresip also takes the port above for TLS-less TCP).
    pub sip: u16,
    /// ctrl_tcp.
    pub ctrl: u16,
    /// First RTP port (a range of 20 is used).
    pub rtp_min: u16,
}

impl BaresipPorts {
    /// Free ports on 127.0.0.1.
    pub fn free() -> Self {
        let (rtp_min, _) = crate::net::free_range(20);
        Self {
            sip: crate::net::free_port(1),
            ctrl: crate::net::free_port(0),
            rtp_min,
        }
    }
}

impl Baresip {
    /// Writes a config into `dir` (never an empty one: baresip would write templates) with
    /// `wav` as the microphone and a null speaker, starts baresip for at most `limit`, and
    /// connects to its control port.
    pub fn start(
        dir: &Path,
        user: &str,
        wav: &Path,
        ports: BaresipPorts,
        limit: Duration,
    ) -> Result<Self, PeerError> {
        let bin = require_tool("baresip", "baresip")?;
        let conf = dir.join("baresip");
        std::fs::create_dir_all(&conf).map_err(|source| PeerError::Io {
            what: format!("create {}", conf.display()),
            source,
        })?;
        let write = |name: &str, text: String| {
            std::fs::write(conf.join(name), text).map_err(|source| PeerError::Io {
                what: format!("write baresip {name}"),
                source,
            })
        };
        write("accounts", format!("<sip:{user}@127.0.0.1>;regint=0\n"))?;
        write(
            "config",
            format!(
                "sip_listen 127.0.0.1:{sip}\nnet_interface 127.0.0.1\naudio_source aufile,{wav}\naudio_player aubridge,nil\n\
audio_alert aubridge,nil\nrtp_ports {lo}-{hi}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
module aubridge.so\nmodule_tmp account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl}\n",
                sip = ports.sip,
                wav = wav.display(),
                lo = ports.rtp_min,
                hi = ports.rtp_min + 19,
                ctrl = ports.ctrl,
            ),
        )?;
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(&conf)
            .args(["-t", &limit.as_secs().max(1).to_string()]);
        let peer = Peer::spawn("baresip", cmd, dir)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ports.ctrl)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => {
                    return Err(PeerError::Protocol(format!(
                        "baresip control port {} did not open: {e}; its log:\n{}",
                        ports.ctrl,
                        peer.log()
                    )));
                }
            }
        };
        ctrl.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|source| PeerError::Io {
                what: "set ctrl timeout".into(),
                source,
            })?;
        Ok(Self {
            peer,
            ctrl,
            buf: Vec::new(),
            token: 0,
            events: Vec::new(),
        })
    }

    /// Sends one command (`dial`, `sndcode`, `hangup`, `quit`, …) with its parameters.
    pub fn command(&mut self, command: &str, params: &str) -> Result<(), PeerError> {
        self.token += 1;
        let json = serde_json::json!({"command": command, "params": params, "token": self.token.to_string()}).to_string();
        let frame = format!("{}:{},", json.len(), json);
        self.ctrl
            .write_all(frame.as_bytes())
            .map_err(|source| PeerError::Io {
                what: format!("send baresip command {command}"),
                source,
            })
    }

    /// Waits until an event with `"type": kind` arrives (returns it) or `limit` passes.
    pub fn wait_event(
        &mut self,
        kind: &str,
        limit: Duration,
    ) -> Result<serde_json::Value, PeerError> {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(v) = self.next_frame() {
                let hit = v.get("type").and_then(|t| t.as_str()) == Some(kind);
                self.events.push(v.clone());
                if hit {
                    return Ok(v);
                }
            }
            if Instant::now() >= deadline {
                return Err(PeerError::Protocol(format!(
                    "baresip sent no {kind} within {limit:?}; events: {:?}; log:\n{}",
                    self.events,
                    self.peer.log()
                )));
            }
            let mut b = [0u8; 4096];
            match self.ctrl.read(&mut b) {
                Ok(0) => {
                    return Err(PeerError::Protocol(format!(
                        "baresip closed its control connection; log:\n{}",
                        self.peer.log()
                    )));
                }
                Ok(n) => self.buf.extend_from_slice(b.get(..n).unwrap_or_default()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(source) => {
                    return Err(PeerError::Io {
                        what: "read baresip control".into(),
                        source,
                    });
                }
            }
        }
    }

    /// One netstring from the buffer, parsed as JSON (malformed frames are skipped).
    fn next_frame(&mut self) -> Option<serde_json::Value> {
        loop {
            let colon = self.buf.iter().position(|&b| b == b':')?;
            let len: usize = std::str::from_utf8(self.buf.get(..colon)?)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            if self.buf.len() < colon + 1 + len + 1 {
                return None;
            }
            let body = self.buf.get(colon + 1..colon + 1 + len)?.to_vec();
            self.buf.drain(..colon + 1 + len + 1);
            if let Ok(v) = serde_json::from_slice(&body) {
                return Some(v);
            }
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.peer.log()
    }

    /// Sends `quit` and waits for the process to end.
    pub fn quit(mut self, limit: Duration) -> Result<String, PeerError> {
        let _ = self.command("quit", "");
        let done = self.peer.wait(limit)?;
        Ok(done.log)
    }
}
