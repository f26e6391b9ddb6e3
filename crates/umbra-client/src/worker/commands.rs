//! The channel from the application's handles to the session thread.
//!
//! The session thread sleeps in poll(2) until a socket is readable or its earliest deadline; a
//! command sent through a plain mpsc channel would wait out that sleep. Every command is
//! therefore followed by one byte on a datagram socket pair whose other end the thread polls.
//!
//! Invariant: a command is in the channel before its byte is written, and the thread drains the
//! whole channel after it drains the bytes, so no command is left behind a consumed byte. The
//! byte carries nothing: when the pair's buffer is full (thousands of unhandled commands) a lost
//! byte loses no command, because the bytes already queued wake the thread, which drains all.

use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc::{self, Receiver, SendError, Sender, TryRecvError};

use super::Command;

pub(crate) struct CommandSender {
    tx: Sender<Command>,
    wake: UnixDatagram,
}

pub(crate) struct CommandReceiver {
    rx: Receiver<Command>,
    wake: UnixDatagram,
}

pub(crate) fn channel() -> io::Result<(CommandSender, CommandReceiver)> {
    let (tx, rx) = mpsc::channel();
    let (wake_tx, wake_rx) = UnixDatagram::pair()?;
    // The application's thread must never block on a session thread that is busy.
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    Ok((CommandSender { tx, wake: wake_tx }, CommandReceiver { rx, wake: wake_rx }))
}

impl CommandSender {
    /// Fails only when the session thread has ended.
    pub(crate) fn send(&self, cmd: Command) -> Result<(), SendError<Command>> {
        self.tx.send(cmd)?;
        // A full buffer already holds bytes that will wake the thread (module doc).
        let _ = self.wake.send(&[1]);
        Ok(())
    }
}

impl CommandReceiver {
    /// What poll(2) watches for commands.
    pub(crate) fn fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Consumes the wake-up bytes; call before draining the channel (module doc).
    pub(crate) fn clear_wake(&self) {
        let mut buf = [0u8; 64];
        loop {
            match self.wake.recv(&mut buf) {
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // WouldBlock: drained. Any other error cannot happen on a connected pair whose
                // other end lives in the same `Session`; if it does, polling the channel on
                // every deadline still delivers the commands.
                Err(_) => return,
            }
        }
    }

    pub(crate) fn try_recv(&self) -> Result<Command, TryRecvError> {
        self.rx.try_recv()
    }
}
