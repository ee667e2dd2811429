//! The control connection's reader: frames command lines as they arrive, holding no
//! buffer while the client is idle, and turns them (and the session's wake-ups) into events.

use super::*;

/// Reads control lines; cancel-safe (state changes only after a read completes).
///
/// An idle session holds no read buffer: a plain connection waits for readiness, then
/// reads into the stack; only bytes past the line returned (pipelined commands) are kept.
pub(super) struct ControlReader {
    pub(super) stream: Stream,
    pub(super) framer: LineFramer,
    /// Bytes read but not yet framed; empty (and unallocated) between bursts.
    pub(super) pending: Vec<u8>,
}

pub(super) enum Event {
    Line(Vec<u8>),
    TooLong,
    Closed,
    Idle,
    Done(Result<Result<Outcome, TransferError>, JoinError>),
    /// The server is shutting down (or the shutdown went a step further).
    Stop,
    /// The administrator ended this session.
    Kick,
}

fn frame_event(frame: Option<Frame>) -> Option<Event> {
    match frame? {
        Frame::Line(l) => Some(Event::Line(l)),
        Frame::TooLong => Some(Event::TooLong),
    }
}

impl ControlReader {
    /// Whether bytes arrived after the last line returned.
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub(super) async fn next(&mut self) -> Event {
        loop {
            if self.has_pending() {
                let (n, frame) = self.framer.push(&self.pending);
                self.pending.drain(..n);
                if self.pending.is_empty() {
                    self.pending = Vec::new();
                }
                if let Some(ev) = frame_event(frame) {
                    return ev;
                }
            }
            let ControlReader {
                stream,
                framer,
                pending,
            } = self;
            // Frames what was read; keeps what follows the first line.
            let mut take = |bytes: &[u8]| {
                let (used, frame) = framer.push(bytes);
                pending.extend_from_slice(&bytes[used..]);
                frame_event(frame)
            };
            let event = match stream {
                Stream::Plain(tcp) => loop {
                    if tcp.readable().await.is_err() {
                        return Event::Closed;
                    }
                    // Not held across an await, so not part of the session's task.
                    let mut buf = [0u8; limits::CONTROL_READ_BUFFER];
                    // try_read forgets readiness only on WouldBlock. A plain read would also
                    // forget it after a short read, and Linux stops a read at the TCP urgent
                    // mark (ABOR sent as urgent data) with the urgent byte still waiting.
                    match tcp.try_read(&mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Ok(0) | Err(_) => return Event::Closed,
                        Ok(n) => break take(&buf[..n]),
                    }
                },
                // A TLS read waits inside the stream: its buffer lives on the heap, for
                // the read only (TLS sessions hold rustls' buffers anyway).
                stream => {
                    let mut buf = vec![0u8; limits::CONTROL_READ_BUFFER];
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return Event::Closed,
                        Ok(n) => take(&buf[..n]),
                    }
                }
            };
            if let Some(ev) = event {
                return ev;
            }
        }
    }
}
