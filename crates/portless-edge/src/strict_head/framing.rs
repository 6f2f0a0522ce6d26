//! Message body framing (`Content-Length`, chunked), followed for requests and responses.

use super::head::{check_header_line, split_crlf};
use super::{HeadViolation, MAX_HEAD};

/// Longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;

/// Where a message body is, as its framing is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Body {
    /// This many bytes left (`Content-Length`).
    Fixed(u64),
    /// Chunked, in this part of the framing.
    Chunked(Chunk),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many data bytes left in the chunk.
    Data(u64),
    /// Expecting the CRLF after a chunk's data; how many of its bytes were seen.
    DataEnd(u8),
    /// In the trailer section, this many bytes into it.
    Trailer(usize),
}

impl Body {
    /// Consumes framing and data from `input`: how many bytes were the body's, and whether
    /// the body ended. A framing line is only consumed whole: when `input` ends inside one,
    /// fewer bytes are used and the caller offers them again with more.
    pub(super) fn advance(&mut self, input: &[u8]) -> Result<(usize, bool), HeadViolation> {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            match self {
                Body::Fixed(left) => {
                    let n = (*left).min(rest.len() as u64);
                    *left -= n;
                    // n <= rest.len(), a usize.
                    used += usize::try_from(n).unwrap_or(rest.len());
                    return Ok((used, *left == 0));
                }
                Body::Chunked(chunk) => match chunk.advance(rest) {
                    Ok((0, _)) => break,
                    Ok((n, done)) => {
                        used += n;
                        if done {
                            return Ok((used, true));
                        }
                    }
                    // The valid bytes before the fault first; the fault on the next call.
                    Err(_) if used > 0 => break,
                    Err(violation) => return Err(violation),
                },
            }
        }
        Ok((used, false))
    }
}

impl Chunk {
    /// One step of chunked framing: bytes used (0: a line is incomplete), and whether the
    /// body ended.
    fn advance(&mut self, input: &[u8]) -> Result<(usize, bool), HeadViolation> {
        match self {
            Chunk::Size => {
                let Some((n, line)) = take_line(input, MAX_CHUNK_LINE)? else {
                    return Ok((0, false));
                };
                let size = chunk_size(line)?;
                *self = if size == 0 {
                    Chunk::Trailer(0)
                } else {
                    Chunk::Data(size)
                };
                Ok((n, false))
            }
            Chunk::Data(left) => {
                let n = (*left).min(input.len() as u64);
                *left -= n;
                if *left == 0 {
                    *self = Chunk::DataEnd(0);
                }
                Ok((usize::try_from(n).unwrap_or(input.len()), false))
            }
            Chunk::DataEnd(seen) => {
                let expected = b"\r\n"[usize::from(*seen)];
                if input[0] != expected {
                    return Err(HeadViolation::InvalidChunk);
                }
                *seen += 1;
                if *seen == 2 {
                    *self = Chunk::Size;
                }
                Ok((1, false))
            }
            Chunk::Trailer(total) => {
                let Some((n, line)) = take_line(input, MAX_HEAD.saturating_sub(*total))? else {
                    return Ok((0, false));
                };
                *total += n;
                if line.is_empty() {
                    return Ok((n, true));
                }
                check_header_line(line)?;
                Ok((n, false))
            }
        }
    }
}

/// The line at the start of `input`, once its CRLF is there: the bytes it takes and the
/// line without its CRLF. A line longer than `max` is refused without waiting for its end.
pub(super) fn take_line(input: &[u8], max: usize) -> Result<Option<(usize, &[u8])>, HeadViolation> {
    let Some(lf) = input.iter().position(|&b| b == b'\n') else {
        if input.len() > max {
            return Err(HeadViolation::TooLarge);
        }
        return Ok(None);
    };
    let Some(line) = input[..lf].strip_suffix(b"\r") else {
        return Err(HeadViolation::BareLf);
    };
    if line.contains(&b'\r') {
        return Err(HeadViolation::BareCr);
    }
    if lf + 1 > max {
        return Err(HeadViolation::TooLarge);
    }
    Ok(Some((lf + 1, line)))
}

/// `chunk-size [; ext]`: hex digits (at most 16), then nothing or extensions.
pub(super) fn chunk_size(line: &[u8]) -> Result<u64, HeadViolation> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(HeadViolation::InvalidChunk);
    }
    let rest = &line[digits..];
    let extension_ok = rest.is_empty()
        || (rest.trim_ascii_start().starts_with(b";")
            && rest.iter().all(|&b| b == b'\t' || !b.is_ascii_control()));
    if !extension_ok {
        return Err(HeadViolation::InvalidChunk);
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| HeadViolation::InvalidChunk)?;
    u64::from_str_radix(text, 16).map_err(|_| HeadViolation::InvalidChunk)
}

/// A plain decimal number (no sign, no spaces, no list), that fits in a u64.
pub(super) fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A response body's framing from its head: `None` when delimited by the connection's end.
pub(super) fn response_framing(head: &[u8]) -> Option<Option<Body>> {
    let mut length = None;
    for line in split_crlf(head).skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if chunked {
                return Some(Some(Body::Chunked(Chunk::Size)));
            }
            return None;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            length = decimal(value);
        }
    }
    length.map(|n| (n > 0).then_some(Body::Fixed(n)))
}
