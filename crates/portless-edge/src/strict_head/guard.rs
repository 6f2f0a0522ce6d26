//! [`Http1Guard`]: the sans-IO core that releases only checked bytes to hyper.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::framing::{Body, response_framing};
use super::head::{RequestKind, check_head};
use super::{HeadViolation, MAX_HEAD};

/// The HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the client side of the connection is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ReadState {
    /// Expecting (or inside) a request head.
    Head,
    /// Inside the body of the request just passed on.
    Body(Body),
    /// After an upgrade (or CONNECT) request: bytes are held until hyper answers it.
    AwaitUpgrade,
    /// The connection is no longer HTTP/1 (upgraded, or HTTP/2): everything passes.
    Tunnel,
    /// A violation was found; nothing more passes.
    Refused {
        violation: HeadViolation,
        /// Found in a body hyper is already reading (so its request is outstanding).
        in_body: bool,
    },
}

/// What hyper's side of the connection is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WriteState {
    /// Expecting (or inside) a response head.
    Head(Vec<u8>),
    /// Inside a response body.
    Body(Body),
    /// A body delimited by the end of the connection: no further response.
    UntilClose,
    /// Upgraded: no further response.
    Tunnel,
    /// The responses could not be followed (should not happen with hyper).
    Lost,
}

/// What the wrapper should do when hyper wants to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadAction {
    /// Read more from the client.
    Read,
    /// Wait: nothing may pass until hyper writes something.
    Hold,
    /// Write this refusal and close.
    Refuse(HeadViolation),
    /// Close without an answer (a body broke mid-request, or the responses are not
    /// followable): hyper gets an error.
    Close(HeadViolation),
    /// Pass everything through.
    Tunnel,
}

/// The sans-IO core: see the module doc.
#[derive(Debug)]
pub(super) struct Http1Guard {
    pub(super) read: ReadState,
    write: WriteState,
    /// Received from the client and not yet released.
    pending: BytesMut,
    /// Released for hyper.
    ready: BytesMut,
    /// How far into `pending` the current head has been scanned for its end.
    scanned: usize,
    /// Whether any request was passed on (the HTTP/2 preface is looked for before).
    started: bool,
    /// Requests passed on, waiting for their final response head.
    awaiting_response: VecDeque<RequestKind>,
    /// The start of a response's chunk framing line whose end hyper has not written yet.
    write_carry: Vec<u8>,
    /// Requests passed on, and responses written completely.
    pub(super) passed: u64,
    pub(super) completed: u64,
}

impl Default for Http1Guard {
    fn default() -> Self {
        Self {
            read: ReadState::Head,
            write: WriteState::Head(Vec::new()),
            pending: BytesMut::new(),
            ready: BytesMut::new(),
            scanned: 0,
            started: false,
            awaiting_response: VecDeque::new(),
            write_carry: Vec::new(),
            passed: 0,
            completed: 0,
        }
    }
}

impl Http1Guard {
    /// Takes bytes from the client.
    pub(crate) fn receive(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        self.process();
    }

    /// Bytes released for hyper (drain them with [`take_ready`](Self::take_ready)).
    pub(crate) fn ready(&self) -> &[u8] {
        &self.ready
    }

    /// Removes `n` released bytes (they were given to hyper).
    pub(crate) fn take_ready(&mut self, n: usize) {
        let _ = self.ready.split_to(n.min(self.ready.len()));
    }

    /// Whether a request head is awaited while hyper is idle: the connection is new, or a
    /// head has begun, and every request passed on has been answered. The wrapper bounds
    /// this time, as hyper's own header timer cannot: hyper's version detection waits for
    /// its first bytes, and the guard passes none before a whole head.
    pub(crate) fn awaiting_head(&self) -> bool {
        self.read == ReadState::Head
            && (!self.pending.is_empty() || !self.started)
            && self.passed <= self.completed
            && matches!(&self.write, WriteState::Head(partial) if partial.is_empty())
    }

    /// What to do when hyper wants to read and nothing is ready.
    pub(crate) fn read_action(&self) -> ReadAction {
        match &self.read {
            ReadState::Tunnel => ReadAction::Tunnel,
            ReadState::AwaitUpgrade => ReadAction::Hold,
            ReadState::Refused { violation, in_body } => self.refusal_action(*violation, *in_body),
            ReadState::Head | ReadState::Body(_) => ReadAction::Read,
        }
    }

    /// When the refusal can be written: once hyper has answered every request passed on
    /// before it and is not inside a response. A violation inside a body (its request is
    /// in hyper's hands) is answered only if hyper has not started answering it; otherwise
    /// the connection is closed without an answer.
    fn refusal_action(&self, violation: HeadViolation, in_body: bool) -> ReadAction {
        let outstanding = self.passed.saturating_sub(self.completed);
        let at_boundary = matches!(&self.write, WriteState::Head(partial) if partial.is_empty());
        let may_wait = matches!(
            self.write,
            WriteState::Head(_) | WriteState::Body(_) | WriteState::UntilClose
        );
        let answerable = if in_body {
            outstanding <= 1
        } else {
            outstanding == 0
        };
        if answerable && at_boundary {
            ReadAction::Refuse(violation)
        } else if !in_body && may_wait {
            // hyper is still answering earlier requests; it writes, and the write wakes us.
            ReadAction::Hold
        } else {
            ReadAction::Close(violation)
        }
    }

    /// Follows the bytes hyper wrote to the client.
    pub(crate) fn sent(&mut self, data: &[u8]) {
        if self.write_carry.is_empty() {
            self.follow_response(data);
        } else {
            let mut carried = std::mem::take(&mut self.write_carry);
            carried.extend_from_slice(data);
            self.follow_response(&carried);
        }
    }

    fn follow_response(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.write {
                WriteState::Head(partial) => {
                    let old = partial.len();
                    partial.extend_from_slice(data);
                    let from = old.saturating_sub(3);
                    let Some(end) = partial[from..]
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|i| from + i + 4)
                    else {
                        if partial.len() > 4 * MAX_HEAD {
                            self.write = WriteState::Lost;
                        }
                        return;
                    };
                    partial.truncate(end);
                    data = &data[end - old..];
                    let head = std::mem::take(partial);
                    self.on_response_head(&head);
                }
                WriteState::Body(body) => match body.advance(data) {
                    Ok((n, done)) => {
                        data = &data[n..];
                        if done {
                            self.finish_response();
                        } else if n == 0 {
                            // A chunk framing line split across writes.
                            self.write_carry = data.to_vec();
                            return;
                        }
                    }
                    Err(_) => self.write = WriteState::Lost,
                },
                WriteState::UntilClose | WriteState::Tunnel | WriteState::Lost => return,
            }
        }
    }

    /// A response head hyper wrote: pairs it with its request and frames its body.
    fn on_response_head(&mut self, head: &[u8]) {
        let Some(status) = head
            .get(9..12)
            .and_then(|code| std::str::from_utf8(code).ok())
            .and_then(|code| code.parse::<u16>().ok())
        else {
            self.write = WriteState::Lost;
            return;
        };
        let front = self.awaiting_response.front().copied().unwrap_or_default();
        if (100..200).contains(&status) {
            if status == 101 && front.upgrade {
                self.awaiting_response.pop_front();
                self.enter_tunnel();
            }
            return;
        }
        self.awaiting_response.pop_front();
        if front.connect && (200..300).contains(&status) {
            self.enter_tunnel();
            return;
        }
        if front.upgrade && self.read == ReadState::AwaitUpgrade {
            // Not upgraded: still HTTP, check the held bytes.
            self.read = ReadState::Head;
            self.process();
        }
        let body = if front.head || status == 204 || status == 304 {
            None
        } else {
            match response_framing(head) {
                Some(body) => body,
                None => {
                    self.write = WriteState::UntilClose;
                    return;
                }
            }
        };
        match body {
            Some(body) => self.write = WriteState::Body(body),
            None => self.finish_response(),
        }
    }

    fn finish_response(&mut self) {
        self.completed += 1;
        self.write = WriteState::Head(Vec::new());
    }

    fn enter_tunnel(&mut self) {
        self.read = ReadState::Tunnel;
        self.write = WriteState::Tunnel;
        let held = self.pending.split();
        self.ready.unsplit(held);
    }

    /// Releases what can be released of `pending`.
    fn process(&mut self) {
        loop {
            match &mut self.read {
                ReadState::Head => match self.next_head() {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(violation) => return self.refuse(violation, false),
                },
                ReadState::Body(body) => {
                    if self.pending.is_empty() {
                        return;
                    }
                    match body.advance(&self.pending) {
                        Ok((n, done)) => {
                            self.release(n);
                            if done {
                                self.read = self.after_body();
                            } else if n == 0 {
                                // Inside a framing line: wait for the rest of it.
                                return;
                            }
                        }
                        Err(violation) => return self.refuse(violation, true),
                    }
                }
                ReadState::Tunnel => {
                    let all = self.pending.len();
                    return self.release(all);
                }
                ReadState::AwaitUpgrade | ReadState::Refused { .. } => return,
            }
        }
    }

    fn release(&mut self, n: usize) {
        let chunk = self.pending.split_to(n);
        self.ready.unsplit(chunk);
    }

    fn refuse(&mut self, violation: HeadViolation, in_body: bool) {
        self.read = ReadState::Refused { violation, in_body };
        self.pending.clear();
    }

    /// After a request's body: hold if it asked for an upgrade, else the next head.
    fn after_body(&self) -> ReadState {
        match self.awaiting_response.back() {
            Some(kind) if kind.upgrade || kind.connect => ReadState::AwaitUpgrade,
            _ => ReadState::Head,
        }
    }

    /// Looks for a complete head at the start of `pending`; `Ok(true)` when one was passed
    /// on (or the connection turned out to be HTTP/2), `Ok(false)` when more bytes are
    /// needed.
    fn next_head(&mut self) -> Result<bool, HeadViolation> {
        if !self.started && self.scanned == 0 {
            let n = self.pending.len().min(H2_PREFACE.len());
            if self.pending[..n] == H2_PREFACE[..n] {
                if n == H2_PREFACE.len() {
                    self.enter_tunnel();
                    return Ok(true);
                }
                return Ok(false);
            }
        }
        if self.scanned == 0 {
            // Empty lines before a request line are ignored (RFC 9112 §2.2), e.g. a CRLF a
            // client sent after a body.
            while self.pending.starts_with(b"\r\n") {
                let _ = self.pending.split_to(2);
            }
            match &self.pending[..] {
                [b'\n', ..] => return Err(HeadViolation::BareLf),
                // Perhaps the start of an empty line.
                [b'\r'] => return Ok(false),
                _ => {}
            }
        }
        let Some(end) = self.head_end()? else {
            return Ok(false);
        };
        let info = check_head(&self.pending[..end])?;
        self.scanned = 0;
        self.started = true;
        self.release(end);
        self.passed += 1;
        self.awaiting_response.push_back(info.kind);
        self.read = match info.body {
            Some(body) => ReadState::Body(body),
            None => self.after_body(),
        };
        Ok(true)
    }

    /// The end of the head in `pending` (just past its CRLF CRLF), refusing bare LFs as
    /// soon as they arrive.
    fn head_end(&mut self) -> Result<Option<usize>, HeadViolation> {
        let bytes = &self.pending[..];
        for i in self.scanned..bytes.len() {
            if bytes[i] != b'\n' {
                continue;
            }
            if i == 0 || bytes[i - 1] != b'\r' {
                return Err(HeadViolation::BareLf);
            }
            if i >= 3 && &bytes[i - 3..=i] == b"\r\n\r\n" {
                return Ok(Some(i + 1));
            }
        }
        self.scanned = bytes.len();
        if self.scanned > MAX_HEAD {
            return Err(HeadViolation::TooLarge);
        }
        Ok(None)
    }
}
