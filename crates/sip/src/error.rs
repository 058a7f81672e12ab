//! Errors of the SIP crate and the one place that maps them to a SIP status code.

use crate::message::StatusCode;

/// Everything that can go wrong while framing, parsing or processing SIP.
///
/// Every variant says what was wrong; [`status_for`] tells which response (if any) the
/// element should send when the offending message was a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before the header section was complete (stream transports: wait).
    #[error("message incomplete: the header section has no terminating empty line yet")]
    Incomplete,
    /// The start line is not a valid Request-Line or Status-Line (RFC 3261 §7.1, §7.2).
    #[error("invalid start line: {reason}; a request line is `METHOD SP Request-URI SP SIP/2.0`")]
    InvalidStartLine {
        /// What was wrong.
        reason: &'static str,
    },
    /// The SIP version is not SIP/2.0.
    #[error("unsupported SIP version {version:?}; only SIP/2.0 is supported")]
    UnsupportedVersion {
        /// The version text found.
        version: String,
    },
    /// A header line could not be parsed at all.
    #[error("invalid header line {line}: {reason}")]
    InvalidHeaderLine {
        /// 1-based line number inside the header section.
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A known header had a value that does not follow its grammar.
    #[error("invalid {header} header value: {reason}")]
    InvalidHeaderValue {
        /// The canonical header name.
        header: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// A URI does not follow RFC 3261 §19.1 / §25.1 (incl. RFC 5118 IPv6 references).
    #[error("invalid URI: {reason}")]
    InvalidUri {
        /// What was wrong.
        reason: &'static str,
    },
    /// A single-valued header appeared more than once (RFC 3261 §7.3.1).
    #[error("header {header} appears more than once; it may appear only once")]
    DuplicateHeader {
        /// The canonical header name.
        header: &'static str,
    },
    /// Content-Length is not `1*DIGIT` (RFC 3261 §20.14): negative, empty or not a number.
    #[error("invalid Content-Length {value:?}: it must be a non-negative decimal integer")]
    InvalidContentLength {
        /// The offending value as received.
        value: String,
    },
    /// Several Content-Length headers: never pick one (RFC 4475 §3.3.9, request smuggling).
    #[error("several Content-Length headers; the framing is ambiguous and the message is rejected")]
    ConflictingContentLength,
    /// The declared body is longer than what the datagram carries (RFC 3261 §18.3).
    #[error("Content-Length {declared} exceeds the {available} body bytes present")]
    ContentLengthExceedsBody {
        /// Declared Content-Length.
        declared: usize,
        /// Bytes present after the header section.
        available: usize,
    },
    /// A stream transport message lacks Content-Length (RFC 3261 §18.3): the body cannot be framed.
    #[error("Content-Length missing on a stream transport; the connection must be closed")]
    MissingContentLength,
    /// The message exceeds the configured size limit.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    MessageTooLarge {
        /// Size announced or seen.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// Too many header lines.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// Configured limit.
        limit: usize,
    },
    /// A single (unfolded) header line is longer than allowed.
    #[error("a header line of {length} bytes exceeds the {limit}-byte limit")]
    LineTooLong {
        /// Length of the line.
        length: usize,
        /// Configured limit.
        limit: usize,
    },
    /// The header section is not valid UTF-8 (RFC 3261 §7.3: UTF-8 text).
    #[error("header section is not valid UTF-8")]
    NotUtf8,
    /// A header required for this operation is absent (RFC 3261 §8.1.1).
    #[error("mandatory header {header} is missing")]
    MissingHeader {
        /// The canonical header name.
        header: &'static str,
    },
    /// The From header has no tag (RFC 3261 §8.1.1.3 requires one).
    #[error("the From header carries no tag")]
    MissingFromTag,
    /// A transaction id that the endpoint does not know (already terminated?).
    #[error("no transaction {0}; it may have terminated already")]
    UnknownTransaction(u64),
    /// An operation that the transaction's current state does not allow.
    #[error("transaction {id} cannot {action} in its current state")]
    InvalidTransactionState {
        /// Transaction id.
        id: u64,
        /// What the caller tried to do.
        action: &'static str,
    },
    /// The message given to an API is of the wrong kind (e.g. a response where a request was expected).
    #[error("wrong message kind: {0}")]
    WrongMessageKind(&'static str),
}

/// Maps an error met while reading a *request* to the response status to send.
///
/// `None` means no response can be sent (e.g. the bytes did not even hold a start line);
/// the element drops the input (and, on a stream transport, closes the connection).
/// Responses that fail to parse are always discarded (RFC 3261 §18.3, RFC 4475 §3.1.2.2).
pub fn status_for(error: &Error) -> Option<StatusCode> {
    use Error::*;
    match error {
        Incomplete | NotUtf8 | UnknownTransaction(_) | InvalidTransactionState { .. } => None,
        WrongMessageKind(_) => None,
        // RFC 3261 §21.5.14: 513 Message Too Large.
        MessageTooLarge { .. } => Some(StatusCode::MESSAGE_TOO_LARGE),
        UnsupportedVersion { .. } => Some(StatusCode(505)),
        InvalidStartLine { .. }
        | InvalidHeaderLine { .. }
        | InvalidHeaderValue { .. }
        | InvalidUri { .. }
        | DuplicateHeader { .. }
        | InvalidContentLength { .. }
        | ConflictingContentLength
        | ContentLengthExceedsBody { .. }
        | MissingContentLength
        | TooManyHeaders { .. }
        | LineTooLong { .. }
        | MissingHeader { .. }
        | MissingFromTag => Some(StatusCode::BAD_REQUEST),
    }
}

/// Whether the error leaves a stream (TCP/TLS) connection unframeable, so it must be closed.
pub fn is_fatal_for_stream(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidContentLength { .. }
            | Error::ConflictingContentLength
            | Error::MissingContentLength
            | Error::MessageTooLarge { .. }
            | Error::TooManyHeaders { .. }
            | Error::LineTooLong { .. }
            | Error::NotUtf8
            | Error::InvalidStartLine { .. }
    )
}
