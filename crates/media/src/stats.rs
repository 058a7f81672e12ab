//! Per-leg counters for metrics and call records.

/// Statistics of one leg. Counters only grow; `jitter_*` and `lost` describe the current
/// inbound source plus every source that preceded it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegStats {
    /// Valid RTP packets received from the latched peer.
    pub packets_received: u64,
    /// Bytes of those packets (whole datagrams, before SRTP removal).
    pub bytes_received: u64,
    /// RTP packets sent on this leg (prompts, tones, events and relayed audio).
    pub packets_sent: u64,
    /// Bytes sent on this leg.
    pub bytes_sent: u64,
    /// Packets lost upstream, summed over inbound sources (RFC 3550 A.3).
    pub lost: u64,
    /// Packets that arrived behind the highest sequence number (late, reordered, duplicated).
    pub late: u64,
    /// Interarrival jitter of the current inbound source, in timestamp units (RFC 3550 A.8).
    pub jitter_units: u32,
    /// Datagrams that were not valid RTP/RTCP (bad lengths, version, padding, event payloads).
    pub malformed: u64,
    /// Datagrams from an address other than the latched one (strict source).
    pub dropped_latching: u64,
    /// RTP packets whose payload type is not negotiated in that direction.
    pub dropped_payload_type: u64,
    /// SRTP/SRTCP packets that failed authentication or replay checks.
    pub dropped_srtp: u64,
    /// Packets of a superseded SSRC that arrived after a newer source took over.
    pub dropped_stale_ssrc: u64,
    /// Packets received while the gateway's direction on the leg excludes receiving (hold).
    pub dropped_direction: u64,
    /// Prompt frames skipped because the shell woke the session too late to send them in time.
    pub frames_skipped: u64,
    /// Valid RTCP compound packets received (terminated, not forwarded).
    pub rtcp_received: u64,
    /// Number of times the inbound SSRC changed.
    pub ssrc_changes: u64,
}

impl LegStats {
    /// Jitter in milliseconds at 8 kHz.
    pub fn jitter_ms(&self) -> f64 {
        f64::from(self.jitter_units) / 8.0
    }
}
