//! Translation of the call core's media commands into the media core's types. Pure data
//! mapping: what to negotiate was decided by the call core, how to relay by the media core.

use std::time::Duration;

use callseal_call::MediaParams;
use callseal_call::sdp::{Codec as CallCodec, Direction};
use callseal_media::{
    Codec, InbandDtmf, Leg, LegConfig, MediaDirection, PayloadMap, SrtpConfig, SrtpKeyMaterial,
    SrtpSuite,
};

/// The media leg of a call leg.
pub fn media_leg(leg: callseal_call::Leg) -> Leg {
    match leg {
        callseal_call::Leg::Caller => Leg::Caller,
        callseal_call::Leg::Pbx => Leg::Pbx,
    }
}

/// The call leg of a media leg.
pub fn call_leg(leg: Leg) -> callseal_call::Leg {
    match leg {
        Leg::Caller => callseal_call::Leg::Caller,
        Leg::Pbx => callseal_call::Leg::Pbx,
    }
}

/// `LegConfig` for a `ConfigureMedia` command; errors name the bad parameter, never a key.
pub fn leg_config(params: MediaParams) -> Result<(Leg, LegConfig), String> {
    let a = &params.audio;
    let codec = match a.codec {
        CallCodec::Pcmu => Codec::Pcmu,
        CallCodec::Pcma => Codec::Pcma,
    };
    let map = |audio: u8, event: Option<u8>| PayloadMap {
        audio,
        codec,
        telephone_event: event,
        comfort_noise: None,
    };
    let direction = match a.direction {
        Direction::SendRecv => MediaDirection::SendRecv,
        Direction::SendOnly => MediaDirection::SendOnly,
        Direction::RecvOnly => MediaDirection::RecvOnly,
        Direction::Inactive => MediaDirection::Inactive,
    };
    let srtp = match params.srtp {
        None => None,
        Some(keys) => {
            let suite = SrtpSuite::from_name(&keys.suite)
                .ok_or_else(|| format!("SRTP suite {} is not supported", keys.suite))?;
            let material = |bytes: &[u8]| {
                SrtpKeyMaterial::from_bytes(suite, bytes)
                    .map_err(|e| format!("SRTP key for {}: {e}", keys.suite))
            };
            Some(SrtpConfig {
                inbound: material(keys.remote.expose_bytes())?,
                outbound: material(keys.local.expose_bytes())?,
            })
        }
    };
    let mut config = LegConfig::new(a.remote, map(a.rx_pt, a.rx_event_pt));
    config.send = map(a.tx_pt, a.tx_event_pt);
    config.ptime = Duration::from_millis(u64::from(a.ptime_ms));
    config.direction = direction;
    config.srtp = srtp;
    config.inband_dtmf = InbandDtmf::WhenNoTelephoneEvent;
    Ok((media_leg(params.leg), config))
}

/// The PBX leg of the built-in echo endpoint: PCMU, telephone-event 101, 20 ms, both ways.
pub fn echo_leg(echo: std::net::SocketAddr) -> LegConfig {
    LegConfig::new(
        Some(echo),
        PayloadMap::g711(Codec::Pcmu).with_telephone_event(101),
    )
}
