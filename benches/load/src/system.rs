//! The systems under test: start them pinned to their core (`taskset`), wait until
//! they answer, read their process tree, stop them. Every child is registered so an
//! interrupt can end it, and `Drop` ends it on every other path.

use std::fs::{self, File};
use std::net::{SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::BenchError;

/// The Kamailio configuration of the reference, with @NAME@ placeholders.
const KAMAILIO_CFG: &str = include_str!("../../kamailio/kamailio.cfg");
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Pids of running children, for the interrupt handler.
static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Sends SIGKILL to every child still registered (used on a second interrupt).
pub fn kill_all_children() {
    if let Ok(list) = CHILDREN.lock() {
        for &pid in list.iter() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Which system a run measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Generator to itself, no system: the floor of the delay measurement.
    Direct,
    /// Kamailio (stateful proxy) + rtpengine (userspace forwarding).
    Reference,
    /// `callseal`; `record` = the caller presses 1 (recorded) rather than 2 (declined, relayed only).
    Callseal { record: bool },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Reference => "reference",
            Kind::Callseal { record: true } => "callseal",
            Kind::Callseal { record: false } => "callseal-norec",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Kind::Direct),
            "reference" | "rtpengine" => Some(Kind::Reference),
            "callseal" => Some(Kind::Callseal { record: true }),
            "callseal-norec" => Some(Kind::Callseal { record: false }),
            _ => None,
        }
    }
}

/// Where and how to start the systems.
#[derive(Debug, Clone)]
pub struct Setup {
    pub sut_core: usize,
    /// Niceness the systems run at (the harness is started at the same one by
    /// scripts/bench-load), so other work on the machine disturbs the measurement less.
    pub nice: i32,
    pub sip: SocketAddrV4,
    pub ng_port: u16,
    pub rtp_ports: (u16, u16),
    pub callseal_bin: PathBuf,
    /// Arguments for `callseal serve`; {data}, {config}, {sip}, {pbx} are filled in.
    pub callseal_args: String,
    /// Arguments run once before, to create the data folder (empty: none).
    pub callseal_init: String,
    /// Length of the prompts the harness writes for the gateway (0: the built-in ones).
    pub prompt_ms: u32,
    /// Extra TOML lines of the gateway's `[media]` section.
    pub callseal_media: Vec<String>,
    pub work: PathBuf,
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

/// A started system; stopped on drop.
pub struct Running {
    procs: Vec<Proc>,
    /// Folder the gateway seals recordings into (callseal only).
    recordings: Option<PathBuf>,
}

impl Running {
    /// Starts `kind`, with calls routed to the PBX stand-in at `pbx`.
    pub fn start(
        kind: &Kind,
        setup: &Setup,
        pbx: SocketAddrV4,
        run: usize,
        calls: usize,
    ) -> Result<Self, BenchError> {
        let mut me = Running {
            procs: Vec::new(),
            recordings: None,
        };
        let dir = setup.work.join(format!("run{run:03}-{}", kind.name()));
        fs::create_dir_all(&dir).map_err(|e| BenchError::io("create the run folder", e))?;
        match kind {
            Kind::Direct => {}
            Kind::Reference => {
                let ng = SocketAddrV4::new(*setup.sip.ip(), setup.ng_port);
                let args = [
                    "--config-file=none".to_string(),
                    "--table=-1".into(),
                    "--interface=127.0.0.1".into(),
                    format!("--listen-ng={ng}"),
                    format!("--port-min={}", setup.rtp_ports.0),
                    format!("--port-max={}", setup.rtp_ports.1),
                    "--num-threads=1".into(),
                    "--delete-delay=0".into(),
                    "--foreground".into(),
                    "--log-stderr".into(),
                    "--log-level=4".into(),
                ];
                me.spawn(setup, "rtpengine", Path::new("rtpengine"), &args, &dir)?;
                me.wait_until("rtpengine", &dir.join("rtpengine.log"), || ng_ping(ng))?;
                let cfg = KAMAILIO_CFG
                    .replace("@SIP_LISTEN@", &setup.sip.to_string())
                    .replace("@NG_ADDR@", &ng.to_string())
                    .replace("@PBX_ADDR@", &pbx.to_string());
                let cfg_path = dir.join("kamailio.cfg");
                fs::write(&cfg_path, cfg)
                    .map_err(|e| BenchError::io("write the kamailio configuration", e))?;
                let rt = dir.join("run");
                fs::create_dir_all(&rt)
                    .map_err(|e| BenchError::io("create the kamailio runtime folder", e))?;
                let args = vec![
                    "-DD".to_string(),
                    "-E".into(),
                    "-m".into(),
                    "256".into(),
                    "-f".into(),
                    cfg_path.display().to_string(),
                    "-w".into(),
                    dir.display().to_string(),
                    "-Y".into(),
                    rt.display().to_string(),
                ];
                me.spawn(setup, "kamailio", Path::new("kamailio"), &args, &dir)?;
            }
            Kind::Callseal { .. } => {
                let data = dir.join("data");
                let recordings = data.join("recordings");
                let config = dir.join("callseal.toml");
                let pbx_uri = format!("sip:pbx@{pbx}");
                let prompts = (setup.prompt_ms > 0)
                    .then(|| write_prompts(&dir.join("prompts"), setup.prompt_ms))
                    .transpose()?;
                let text = callseal_config(
                    &data,
                    &recordings,
                    prompts.as_deref(),
                    setup,
                    &pbx_uri,
                    calls,
                );
                fs::write(&config, text)
                    .map_err(|e| BenchError::io("write the callseal configuration", e))?;
                let fill = |template: &str| -> Vec<String> {
                    template
                        .split_whitespace()
                        .map(|a| {
                            a.replace("{sip}", &setup.sip.to_string())
                                .replace("{pbx}", &pbx_uri)
                                .replace("{data}", &data.display().to_string())
                                .replace("{config}", &config.display().to_string())
                        })
                        .collect()
                };
                if !setup.callseal_init.trim().is_empty() {
                    init_callseal(&setup.callseal_bin, &fill(&setup.callseal_init), &dir)?;
                }
                me.spawn(
                    setup,
                    "callseal",
                    &setup.callseal_bin,
                    &fill(&setup.callseal_args),
                    &dir,
                )?;
                me.recordings = Some(recordings);
            }
        }
        Ok(me)
    }

    /// Waits until the gateway has sealed `wanted` recordings (or `max` passes) and
    /// returns how many it found; recordings are finalised after the BYE.
    pub fn await_recordings(&self, wanted: usize, max: Duration) -> usize {
        let Some(dir) = &self.recordings else {
            return 0;
        };
        let count = || {
            fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.path().extension().is_some_and(|x| x == "csrec"))
                        .count()
                })
                .unwrap_or(0)
        };
        let end = Instant::now() + max;
        let mut found = count();
        // With nothing to wait for, still give a stray recording a moment to show up.
        let settle = Instant::now() + Duration::from_millis(500);
        while (found < wanted && Instant::now() < end) || (wanted == 0 && Instant::now() < settle) {
            std::thread::sleep(Duration::from_millis(100));
            found = count();
        }
        found
    }

    /// Pids of every process of the system now (children forked by it included).
    pub fn pids(&self) -> Vec<u32> {
        crate::procfs::tree(&self.procs.iter().map(|p| p.child.id()).collect::<Vec<_>>())
    }

    /// The log of the process that answers SIP (named in error messages).
    pub fn sip_log(&self) -> PathBuf {
        self.procs.last().map(|p| p.log.clone()).unwrap_or_default()
    }

    /// Fails if any process has exited.
    pub fn check_alive(&mut self) -> Result<(), BenchError> {
        for p in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(BenchError::Exited {
                    system: p.name.clone(),
                    status: status.to_string(),
                    log: p.log.clone(),
                    tail: tail(&p.log),
                });
            }
        }
        Ok(())
    }

    /// Waits until `ready` holds, failing early if the process exits.
    pub fn wait_until(
        &mut self,
        what: &str,
        log: &Path,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), BenchError> {
        let end = Instant::now() + READY_TIMEOUT;
        while Instant::now() < end {
            self.check_alive()?;
            if ready() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(BenchError::NotReady {
            system: what.to_string(),
            secs: READY_TIMEOUT.as_secs(),
            detail: "no answer on its control or SIP port".into(),
            log: log.to_path_buf(),
            tail: tail(log),
        })
    }

    fn spawn(
        &mut self,
        setup: &Setup,
        name: &str,
        program: &Path,
        args: &[String],
        dir: &Path,
    ) -> Result<(), BenchError> {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).map_err(|e| BenchError::io("create a log file", e))?;
        let err = out
            .try_clone()
            .map_err(|e| BenchError::io("duplicate a log file handle", e))?;
        // nice and taskset exec the program: the child's pid is the system's pid. Where
        // raising the priority is not permitted, nice says so in the log and runs it anyway.
        // `nice -n` is relative to the harness's own niceness; --nice is absolute.
        let increment = setup.nice - crate::procfs::own_nice();
        let mut cmd = Command::new("nice");
        cmd.arg("-n").arg(increment.to_string());
        cmd.arg("taskset")
            .arg("-c")
            .arg(setup.sut_core.to_string())
            .arg(program)
            .args(args);
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let command = format!(
            "nice -n {increment} taskset -c {} {} {}",
            setup.sut_core,
            program.display(),
            args.join(" ")
        );
        let child = cmd.spawn().map_err(|source| BenchError::Spawn {
            system: name.to_string(),
            command,
            source,
        })?;
        if let Ok(mut list) = CHILDREN.lock() {
            list.push(child.id() as i32);
        }
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
        });
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Stop in reverse start order (the SIP front first), SIGTERM then SIGKILL.
        for p in self.procs.iter_mut().rev() {
            let pid = Pid::from_raw(p.child.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(None) = p.child.try_wait() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
            if let Ok(mut list) = CHILDREN.lock() {
                list.retain(|&x| x != pid.as_raw());
            }
        }
    }
}

/// rtpengine's ng `ping` (bencode over UDP): true on `pong`.
/// The gateway configuration of one run: SIP on the bench address (UDP only), every
/// call to the PBX stand-in, media ports from the bench range, room for every call.
fn callseal_config(
    data: &Path,
    recordings: &Path,
    prompts: Option<&Path>,
    setup: &Setup,
    pbx: &str,
    calls: usize,
) -> String {
    let prompts = prompts
        .map(|p| format!("[prompts]\nfolder = {:?}\n\n", p.display().to_string()))
        .unwrap_or_default();
    let media_extra: String = setup
        .callseal_media
        .iter()
        .map(|line| format!("{line}\n"))
        .collect();
    format!(
        "# Written by callseal-loadbench for one run.\n\
         data_dir = {data:?}\n\n\
         [sip]\nudp = [\"{sip}\"]\ntcp = []\npbx = \"{pbx}\"\n\n\
         [media]\nbind = \"127.0.0.1\"\nport_min = {min}\nport_max = {max}\n{media_extra}\n\
         [recording]\nfolder = {recordings:?}\n\n\
         {prompts}\
         [limits]\nmax_calls = {max_calls}\n",
        data = data.display().to_string(),
        sip = setup.sip,
        min = setup.rtp_ports.0,
        max = setup.rtp_ports.1,
        recordings = recordings.display().to_string(),
        max_calls = calls + calls / 4 + 16,
    )
}

/// The gateway's six prompts as `ms` of a quiet 425 Hz tone each (8 kHz mono 16-bit PCM WAV,
/// what the gateway requires), so that call setup is timed by the gateway, not by speech.
fn write_prompts(dir: &Path, ms: u32) -> Result<PathBuf, BenchError> {
    const NAMES: [&str; 6] = [
        "consent",
        "confirm-yes",
        "confirm-no",
        "withdrawn",
        "survey",
        "thanks",
    ];
    fs::create_dir_all(dir).map_err(|e| BenchError::io("create the prompts folder", e))?;
    let samples = ms * 8;
    let data_len = samples * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    // PCM, 1 channel, 8000 Hz, 16000 bytes/s, block align 2, 16 bits.
    for field in [
        16u32.to_le_bytes().as_slice(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
    ] {
        wav.extend_from_slice(field);
    }
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for n in 0..samples {
        let v = 2000.0 * (2.0 * std::f64::consts::PI * 425.0 * f64::from(n) / 8000.0).sin();
        wav.extend_from_slice(&(v as i16).to_le_bytes());
    }
    for name in NAMES {
        fs::write(dir.join(format!("{name}.wav")), &wav)
            .map_err(|e| BenchError::io("write a prompt", e))?;
    }
    Ok(dir.to_owned())
}

/// Runs `callseal <init args>` to completion (bounded), pinned like the system.
fn init_callseal(bin: &Path, args: &[String], dir: &Path) -> Result<(), BenchError> {
    let log = dir.join("callseal-init.log");
    let out = File::create(&log).map_err(|e| BenchError::io("create a log file", e))?;
    let err = out
        .try_clone()
        .map_err(|e| BenchError::io("duplicate a log file handle", e))?;
    let command = format!("{} {}", bin.display(), args.join(" "));
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| BenchError::Spawn {
            system: "callseal init".into(),
            command: command.clone(),
            source,
        })?;
    let end = Instant::now() + READY_TIMEOUT * 3;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => {
                return Err(BenchError::Exited {
                    system: "callseal init".into(),
                    status: st.to_string(),
                    log: log.clone(),
                    tail: tail(&log),
                });
            }
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BenchError::NotReady {
                    system: "callseal init".into(),
                    secs: (READY_TIMEOUT * 3).as_secs(),
                    detail: "it did not finish".into(),
                    tail: tail(&log),
                    log,
                });
            }
        }
    }
}

/// The last lines of a log, for error messages.
pub fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(5);
    lines[from..]
        .iter()
        .map(|l| format!("\n    | {l}"))
        .collect()
}

fn ng_ping(ng: SocketAddrV4) -> bool {
    let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.send_to(b"lbping d7:command4:pinge", ng).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    matches!(s.recv(&mut buf), Ok(n) if buf[..n].windows(4).any(|w| w == b"pong"))
}

/// Whether `program` can be run (on PATH or a path).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}
