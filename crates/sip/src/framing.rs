//! Framing (RFC 3261 §18.3): datagrams carry one message and Content-Length may be absent;
//! streams need Content-Length to find where a message ends.

use crate::error::Error;
use crate::message::Message;
use crate::message::parse::{Limits, parse_head, parse_head_of};

/// Parses one message from a UDP datagram.
///
/// - Missing Content-Length: the body is the rest of the datagram (case 012).
/// - Content-Length larger than what is left: [`Error::ContentLengthExceedsBody`] (case 003).
/// - Octets after the declared body are discarded, never parsed as a second message (case 002).
/// - Negative, non-numeric or repeated Content-Length: an error (case 004).
pub fn parse_datagram(bytes: &[u8], limits: &Limits) -> Result<Message, Error> {
    if bytes.len() > limits.max_message_size {
        return Err(Error::MessageTooLarge {
            size: bytes.len(),
            limit: limits.max_message_size,
        });
    }
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let skip = leading_crlf_len(bytes);
    let bytes = &bytes[skip..];
    let head = parse_head_of(bytes, limits)?;
    let head_end = head.end;
    let available = bytes.len() - (head_end + 4);
    let body_len = match head.content_length {
        None => available,
        Some(declared) if declared > available => {
            return Err(Error::ContentLengthExceedsBody {
                declared,
                available,
            });
        }
        Some(declared) => declared,
    };
    let body_start = head_end + 4;
    Ok(Message {
        start: head.start,
        headers: head.headers,
        body: bytes[body_start..body_start + body_len].to_vec(),
    })
}

/// One item produced by a [`StreamFramer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A complete message.
    Message(Message),
    /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1); a server answers with one CRLF.
    KeepAlive,
}

/// Frames SIP messages out of a byte stream (TCP/TLS): buffers across reads, finds the end of
/// the headers even when `CRLFCRLF` is split, takes exactly Content-Length body bytes and keeps
/// the rest for the next message (case 011).
///
/// Any error is fatal for the connection: after it, the framer returns the same error forever
/// and the transport must close the connection (after sending the 400 if it still can).
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limits: Limits,
    failed: Option<Error>,
    /// Bytes already searched for the header terminator (avoids rescanning on every read).
    scanned: usize,
}

impl StreamFramer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: Vec::new(),
            limits,
            failed: None,
            scanned: 0,
        }
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next item, `Ok(None)` if more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.next_inner();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
        }
        result
    }

    fn next_inner(&mut self) -> Result<Option<StreamItem>, Error> {
        // RFC 3261 §7.5 / RFC 5626 §4.4.1: CRLFs between messages are keep-alives.
        let crlf = leading_crlf_len(&self.buf);
        if crlf >= 4 {
            self.consume(4);
            return Ok(Some(StreamItem::KeepAlive));
        }
        if crlf == self.buf.len() {
            // Only CRLFs (or a lone CR) so far: could become a ping; wait.
            return Ok(None);
        }
        if crlf > 0 {
            self.consume(crlf);
        }
        let from = self.scanned.saturating_sub(3);
        let head_end = match find_head_end(&self.buf[from..]) {
            Some(i) => from + i,
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() > self.limits.max_message_size {
                    return Err(Error::MessageTooLarge {
                        size: self.buf.len(),
                        limit: self.limits.max_message_size,
                    });
                }
                return Ok(None);
            }
        };
        let head = parse_head(&self.buf[..head_end], &self.limits)?;
        let body_len = head.content_length.ok_or(Error::MissingContentLength)?;
        let total = head_end + 4 + body_len;
        if total > self.limits.max_message_size {
            return Err(Error::MessageTooLarge {
                size: total,
                limit: self.limits.max_message_size,
            });
        }
        if self.buf.len() < total {
            // Keep the scan position: the head is complete, we wait for the body.
            self.scanned = head_end;
            return Ok(None);
        }
        let body = self.buf[head_end + 4..total].to_vec();
        self.consume(total);
        Ok(Some(StreamItem::Message(Message {
            start: head.start,
            headers: head.headers,
            body,
        })))
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.scanned = 0;
    }
}

fn leading_crlf_len(bytes: &[u8]) -> usize {
    let mut i = 0;
    while bytes.get(i) == Some(&b'\r') && bytes.get(i + 1) == Some(&b'\n') {
        i += 2;
    }
    if bytes.get(i) == Some(&b'\r') && bytes.len() == i + 1 {
        i += 1; // a lone CR at the end may be the start of the next CRLF
    }
    i
}

/// Index of the `\r\n\r\n` that ends the header section.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    // The searcher is built once: building it costs as much as searching a typical head.
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| memchr::memmem::Finder::new(b"\r\n\r\n"))
        .find(bytes)
}
