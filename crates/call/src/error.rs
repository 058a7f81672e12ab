//! Error types of the call crate. Messages never contain SDP text (it may carry SRTP keys)
//! nor caller numbers.

/// Why an SDP offer or answer could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is not UTF-8 text.
    #[error("SDP body is not UTF-8 text; the peer must send RFC 8866 SDP")]
    NotText,
    /// The parser rejected the body. The text itself is not repeated: it may carry keys.
    #[error(
        "SDP body could not be parsed ({what}); check the peer's SDP against RFC 8866 (the body is not logged because it may carry keys)"
    )]
    Unparseable {
        /// Which part failed, without any of its content.
        what: &'static str,
    },
    /// No m-line at all.
    #[error("SDP has no m-line; an offer needs at least one media stream (RFC 3264 §5)")]
    NoMedia,
    /// No audio stream with a codec the gateway relays (PCMU or PCMA).
    #[error(
        "no usable audio stream: none of the {offered} offered m-lines has PCMU or PCMA on a transport and address family the gateway supports; answer 488 (RFC 3264 §6)"
    )]
    NoCommonCodec {
        /// Number of m-lines in the offer.
        offered: usize,
    },
    /// An answer does not have one m-line per m-line of our offer.
    #[error(
        "SDP answer has {answered} m-lines but our offer had {offered}; RFC 3264 §6 requires the same count and order"
    )]
    MLineCountMismatch {
        /// m-lines in our offer.
        offered: usize,
        /// m-lines in the answer.
        answered: usize,
    },
    /// The answer picked a codec we did not offer, or none.
    #[error(
        "SDP answer selects no payload type that we offered on the audio stream; the PBX must answer with PCMU or PCMA (RFC 3264 §6.1)"
    )]
    AnswerWithoutOfferedCodec,
}

/// Errors of caller-identity handling.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// A stored pepper has the wrong length.
    #[error(
        "pepper has {actual} bytes but {expected} are required; restore the gateway's pepper file or create a new one (existing pseudonyms will change)"
    )]
    PepperLength {
        /// Required length.
        expected: usize,
        /// Length found.
        actual: usize,
    },
}

/// Errors in the configuration handed to the call core.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Consent and decline digit are the same, or not DTMF digits.
    #[error(
        "consent digit {consent:?} and decline digit {decline:?} must be two different DTMF digits (0-9, *, #, A-D)"
    )]
    ConsentDigits {
        /// Configured consent digit.
        consent: char,
        /// Configured decline digit.
        decline: char,
    },
    /// The withdrawal code is empty or not made of DTMF digits.
    #[error("withdrawal code {code:?} must be 1 to 8 DTMF digits (0-9, *, #, A-D), e.g. \"*9\"")]
    WithdrawCode {
        /// Configured code.
        code: String,
    },
    /// The survey digit range is empty or not single digits.
    #[error("survey answers must be a non-empty range of single digits 0-9; configure e.g. 1 to 5")]
    SurveyDigits,
    /// The escrow epoch window is zero days long.
    #[error("the epoch window must be at least one day; configure epoch_window_days = 1")]
    EpochWindow,
    /// No codec is allowed.
    #[error("no audio codec is enabled; allow PCMA and/or PCMU")]
    NoCodecs,
    /// The telephone-event PT of our offers is not dynamic.
    #[error(
        "telephone-event payload type {pt} is not dynamic; choose one in 96-127 (RFC 4733 §2.5.1.1)"
    )]
    TelephoneEventPt {
        /// Configured PT.
        pt: u8,
    },
}
