//! callseal-testkit: helpers for callseal's end-to-end tests, dev only.
//!
//! It drives real peers on loopback — sipp (Debian `sip-tester`) as caller and as PBX, baresip as
//! a headless softphone through its `ctrl_tcp` interface — and builds what they send: G.711
//! μ-law tones made with sox, RFC 4733 telephone-event packets, and classic pcap files that
//! sipp's `play_pcap_audio` replays. It also checks what comes out: Goertzel tone energy on
//! decoded WAV channels, and a scan of folders for byte strings that must never reach disk.
//! Every peer runs as a child process bounded in time and killed when its handle drops.
//!
//! Not for production code: nothing outside `dev-dependencies` may depend on it.

pub mod audio;
pub mod baresip;
pub mod canary;
pub mod net;
pub mod pcap;
pub mod process;
pub mod sipp;

pub use process::{Peer, PeerError, require_tool};
