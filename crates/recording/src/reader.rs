//! The streaming reader: verifies the header, then each segment in order, and returns the frames
//! of every verified segment followed by exactly one precise error (or a clean end).

use crate::buf::WipedBuf;
use crate::crypto::RecordingKeys;
use crate::format::{
    COMMITMENT_LEN, FINAL_FLAG, FIXED_HEAD_LEN, FORMAT_VERSION, Header, MAC_LEN, MAGIC,
    MAX_SEGMENT_PLAINTEXT, PREFIX_LEN, TAG_LEN, decode_fields, header_len, segment_aad,
    segment_nonce,
};
use crate::frames::{Frame, FrameCodec};
use crate::keys::{DataKey, EpochId, RecordingId};
use std::collections::VecDeque;
use std::io::{self, Read};
use subtle::ConstantTimeEq;

/// Why reading stopped. Every variant after [`Reader::new`] comes after the frames of all the
/// segments that verified; those frames are authentic. Messages contain no key or audio.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file ends before its final segment: the writer stopped (crash, power loss, full disk)
    /// or the file was cut.
    #[error(
        "the recording ends without its final segment after {verified_segments} verified segments ({verified_frames} frames): the writer stopped early or the file was cut; the audio read so far is authentic"
    )]
    Truncated {
        /// Segments verified before the end.
        verified_segments: u64,
        /// Frames returned before the end.
        verified_frames: u64,
    },
    /// Segment `index` (0-based) did not authenticate: altered, damaged, reordered, duplicated or
    /// from another recording.
    #[error(
        "segment {index} of the recording failed authentication ({verified_before} frames verified before it): the file was altered or damaged from there on; the audio before it is authentic"
    )]
    SegmentAuth {
        /// Index of the failing segment.
        index: u64,
        /// Frames returned before it.
        verified_before: u64,
    },
    /// A segment authenticated but its frames do not decode: a faulty writer.
    #[error(
        "segment {index} of the recording is authentic but malformed ({reason}); it was written by a faulty writer, report this"
    )]
    MalformedSegment {
        /// Index of the segment.
        index: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The header's MAC does not verify: the header was altered (e.g. its recording or epoch
    /// id) or damaged.
    #[error(
        "the recording header failed authentication: it was altered or damaged (for example its recording id or epoch); nothing in this file can be trusted"
    )]
    HeaderAuth,
    /// The key does not match the header's key commitment.
    #[error(
        "this key does not open the recording (key commitment mismatch): the key belongs to another recording, or the header is damaged; check that the released key is for this recording id"
    )]
    WrongKey,
    /// Bytes follow the final segment.
    #[error(
        "unexpected bytes after the final segment ({verified_segments} segments, {verified_frames} frames verified): something was appended to the file; the audio read is authentic"
    )]
    TrailingData {
        /// Segments verified, the final one included.
        verified_segments: u64,
        /// Frames returned.
        verified_frames: u64,
    },
    /// A format version this build does not read.
    #[error(
        "recording format version {found} is not supported (this build reads version {FORMAT_VERSION}); use a newer callseal"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
    },
    /// The file does not start with the recording magic.
    #[error("this is not a callseal sealed recording (wrong magic bytes); check the file name")]
    NotARecording,
    /// The header's structure is inconsistent (length, table), or an authenticated field is
    /// out of range.
    #[error(
        "the recording header is malformed ({reason}); the file is damaged or was written by a faulty writer"
    )]
    MalformedHeader {
        /// What is wrong.
        reason: &'static str,
    },
    /// The header is authentic but names another recording than expected.
    #[error(
        "the file is recording {found}, not the expected {expected}; check the file and the key you were given"
    )]
    RecordingMismatch {
        /// The id asked for.
        expected: RecordingId,
        /// The id in the header.
        found: RecordingId,
    },
    /// The header is authentic but names another retention epoch than the wrapped key.
    #[error(
        "the file belongs to retention epoch {found}, but its key was released for epoch {expected}; the escrow record and the file disagree, report this"
    )]
    EpochMismatch {
        /// The epoch of the key.
        expected: EpochId,
        /// The epoch in the header.
        found: EpochId,
    },
    /// The source failed.
    #[error("reading the recording failed: {reason}")]
    Io {
        /// The source's error text.
        reason: String,
    },
}

impl ReadError {
    fn io(e: &io::Error) -> Self {
        ReadError::Io {
            reason: e.to_string(),
        }
    }
}

enum State {
    /// More segments are expected.
    Segments,
    /// The final segment verified; its frames may still be queued.
    AfterFinal,
    Done,
    Failed(ReadError),
}

/// Reads a sealed recording from any `io::Read`, verifying as it goes. Memory use is bounded by
/// one segment (at most 1 MiB).
pub struct Reader<R: Read> {
    source: R,
    keys: RecordingKeys,
    header: Header,
    header_mac: [u8; MAC_LEN],
    buf: WipedBuf,
    frames: VecDeque<Frame>,
    next_index: u64,
    frames_returned: u64,
    bytes_read: u64,
    state: State,
}

impl<R: Read> Reader<R> {
    /// Reads and verifies the header with `key`.
    pub fn new(mut source: R, key: &DataKey) -> Result<Self, ReadError> {
        let (bytes, keys) = read_header(&mut source, key)?;
        let mac_at = bytes.len() - MAC_LEN;
        let mut header_mac = [0u8; MAC_LEN];
        header_mac.copy_from_slice(&bytes[mac_at..]);
        let header = decode_fields(&bytes[..mac_at - COMMITMENT_LEN])
            .map_err(|reason| ReadError::MalformedHeader { reason })?;
        Ok(Self {
            source,
            keys,
            header,
            header_mac,
            buf: WipedBuf::with_capacity(0),
            frames: VecDeque::new(),
            next_index: 0,
            frames_returned: 0,
            bytes_read: bytes.len() as u64,
            state: State::Segments,
        })
    }

    /// [`Reader::new`], then checks that the header names `recording` and `epoch` (those of the
    /// wrapped key that `key` came from).
    pub fn new_expecting(
        source: R,
        key: &DataKey,
        recording: RecordingId,
        epoch: EpochId,
    ) -> Result<Self, ReadError> {
        let reader = Self::new(source, key)?;
        if reader.header.recording != recording {
            return Err(ReadError::RecordingMismatch {
                expected: recording,
                found: reader.header.recording,
            });
        }
        if reader.header.epoch != epoch {
            return Err(ReadError::EpochMismatch {
                expected: epoch,
                found: reader.header.epoch,
            });
        }
        Ok(reader)
    }

    /// The authenticated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next frame of a verified segment; `Ok(None)` after the final segment at the end of
    /// the source. After an error, every later call returns the same error.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                self.frames_returned += 1;
                return Ok(Some(frame));
            }
            match &self.state {
                State::Segments => {
                    if let Err(e) = self.read_segment() {
                        self.state = State::Failed(e.clone());
                        return Err(e);
                    }
                }
                State::AfterFinal => {
                    let mut probe = [0u8; 1];
                    let outcome = match read_full(&mut self.source, &mut probe) {
                        Ok(0) => Ok(None),
                        Ok(_) => Err(ReadError::TrailingData {
                            verified_segments: self.next_index,
                            verified_frames: self.frames_returned,
                        }),
                        Err(e) => Err(ReadError::io(&e)),
                    };
                    self.state = match &outcome {
                        Ok(_) => State::Done,
                        Err(e) => State::Failed(e.clone()),
                    };
                    return outcome;
                }
                State::Done => return Ok(None),
                State::Failed(e) => return Err(e.clone()),
            }
        }
    }

    /// Segments verified so far.
    pub fn segments_verified(&self) -> u64 {
        self.next_index
    }

    /// Frames returned so far.
    pub fn frames_returned(&self) -> u64 {
        self.frames_returned
    }

    /// Bytes consumed from the source so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn truncated(&self) -> ReadError {
        ReadError::Truncated {
            verified_segments: self.next_index,
            verified_frames: self.frames_returned,
        }
    }

    fn auth_failed(&self) -> ReadError {
        ReadError::SegmentAuth {
            index: self.next_index,
            verified_before: self.frames_returned,
        }
    }

    fn read_segment(&mut self) -> Result<(), ReadError> {
        let mut prefix = [0u8; PREFIX_LEN];
        let n = read_full(&mut self.source, &mut prefix).map_err(|e| ReadError::io(&e))?;
        self.bytes_read += n as u64;
        if n < PREFIX_LEN {
            return Err(self.truncated());
        }
        let word = u32::from_be_bytes(prefix);
        let last = word & FINAL_FLAG != 0;
        let len = (word & !FINAL_FLAG) as usize;
        if len > MAX_SEGMENT_PLAINTEXT {
            // No writer produces this: the prefix is damaged.
            return Err(self.auth_failed());
        }
        self.buf.reset_zeroed(len + TAG_LEN);
        let n =
            read_full(&mut self.source, self.buf.as_mut_slice()).map_err(|e| ReadError::io(&e))?;
        self.bytes_read += n as u64;
        if n < len + TAG_LEN {
            return Err(self.truncated());
        }
        let aad = segment_aad(&self.header_mac, prefix);
        let nonce = segment_nonce(self.next_index, last);
        let (body, tag) = self.buf.as_mut_slice().split_at_mut(len);
        if !self.keys.open(&nonce, &aad, body, tag) {
            return Err(self.auth_failed());
        }
        let mut codec = FrameCodec::default();
        let mut input: &[u8] = body;
        let mut frames = VecDeque::new();
        while !input.is_empty() {
            match codec.decode(&mut input) {
                Ok(f) => frames.push_back(f),
                Err(reason) => {
                    self.buf.wipe();
                    return Err(ReadError::MalformedSegment {
                        index: self.next_index,
                        reason,
                    });
                }
            }
        }
        self.buf.wipe();
        self.frames = frames;
        self.next_index += 1;
        if last {
            self.state = State::AfterFinal;
        }
        Ok(())
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Frame, ReadError>;

    /// Frames, then at most one error, then `None`.
    fn next(&mut self) -> Option<Self::Item> {
        if matches!(self.state, State::Failed(_)) && self.frames.is_empty() {
            return None;
        }
        self.next_frame().transpose()
    }
}

impl<R: Read> std::fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("header", &self.header)
            .field("segments_verified", &self.next_index)
            .field("frames_returned", &self.frames_returned)
            .finish_non_exhaustive()
    }
}

/// Reads the header bytes and checks, in order: magic, version, length, key commitment, MAC.
fn read_header<R: Read>(
    source: &mut R,
    key: &DataKey,
) -> Result<(Vec<u8>, RecordingKeys), ReadError> {
    let truncated = ReadError::Truncated {
        verified_segments: 0,
        verified_frames: 0,
    };
    let mut head = [0u8; 12];
    let n = read_full(source, &mut head).map_err(|e| ReadError::io(&e))?;
    let magic_seen = n.min(MAGIC.len());
    if head[..magic_seen] != MAGIC[..magic_seen] {
        return Err(ReadError::NotARecording);
    }
    if n < head.len() {
        return Err(truncated);
    }
    let version = u16::from_be_bytes([head[8], head[9]]);
    if version != FORMAT_VERSION {
        return Err(ReadError::UnsupportedVersion { found: version });
    }
    let total = usize::from(u16::from_be_bytes([head[10], head[11]]));
    if !(header_len(0)..=header_len(128)).contains(&total) {
        return Err(ReadError::MalformedHeader {
            reason: "header length out of range",
        });
    }
    let mut bytes = vec![0u8; total];
    bytes[..head.len()].copy_from_slice(&head);
    let n = read_full(source, &mut bytes[head.len()..]).map_err(|e| ReadError::io(&e))?;
    if n < total - head.len() {
        return Err(truncated);
    }
    let count = usize::from(bytes[FIXED_HEAD_LEN - 1]);
    if header_len(count) != total {
        return Err(ReadError::MalformedHeader {
            reason: "header length does not match the payload-type table",
        });
    }
    let mut rid = [0u8; RecordingId::LEN];
    rid.copy_from_slice(&bytes[12..28]);
    let keys = RecordingKeys::derive(key, RecordingId::from_bytes(rid));
    let mac_at = total - MAC_LEN;
    if !keys.commitment_matches(&bytes[mac_at - COMMITMENT_LEN..mac_at]) {
        return Err(ReadError::WrongKey);
    }
    let expected = keys.header_mac(&bytes[..mac_at]);
    if !bool::from(expected.ct_eq(&bytes[mac_at..])) {
        return Err(ReadError::HeaderAuth);
    }
    Ok((bytes, keys))
}

/// Reads until `buf` is full or the source ends; returns the number of bytes read.
fn read_full<R: Read>(source: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
