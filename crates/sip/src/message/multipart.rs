//! Multipart bodies (RFC 2046 §5.1, RFC 5621): the body stays bytes; this finds one part.

/// Finds the first part of `body` (delimited by `boundary`) whose Content-Type is
/// `ty/subtype`, returning its content bytes. Parts without Content-Type are `text/plain`
/// (RFC 2046 §5.1.1) and never match `application/sdp`.
pub fn find_part<'a>(body: &'a [u8], boundary: &str, ty: &str, subtype: &str) -> Option<&'a [u8]> {
    let boundary = boundary.trim_matches('"');
    if boundary.is_empty() {
        return None;
    }
    let mut delim = Vec::with_capacity(boundary.len() + 4);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary.as_bytes());
    let finder = memchr::memmem::Finder::new(&delim);
    let mut positions = finder.find_iter(body).filter(|&p| {
        // A delimiter starts the body or follows CRLF.
        p == 0 || body.get(p.wrapping_sub(2)..p) == Some(b"\r\n")
    });
    let mut start = positions.next()?;
    loop {
        let after = start + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            return None; // close-delimiter: no more parts
        }
        let next = positions.next()?;
        // Part = from the line after the delimiter to the CRLF before the next delimiter.
        let line_end = memchr::memmem::find(body.get(after..next)?, b"\r\n")? + after + 2;
        let part_end = next.checked_sub(2)?.max(line_end);
        let part = body.get(line_end..part_end)?;
        if let Some(content) = part_content_if(part, ty, subtype) {
            return Some(content);
        }
        start = next;
    }
}

fn part_content_if<'a>(part: &'a [u8], ty: &str, subtype: &str) -> Option<&'a [u8]> {
    let (head, content) = if part.starts_with(b"\r\n") {
        (&part[..0], &part[2..])
    } else {
        let end = memchr::memmem::find(part, b"\r\n\r\n")?;
        (&part[..end], &part[end + 4..])
    };
    let head = std::str::from_utf8(head).ok()?;
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("Content-Type") || name.eq_ignore_ascii_case("c") {
            let media = super::MediaType::parse(value).ok()?;
            return media.is(ty, subtype).then_some(content);
        }
    }
    None
}
