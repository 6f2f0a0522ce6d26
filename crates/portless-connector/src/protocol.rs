//! The `auto` protocol: QUIC first; TCP when QUIC cannot get through; QUIC again once a
//! probe shows UDP works.

use std::sync::atomic::{AtomicBool, Ordering};

use portless_transport::Protocol;
use tokio::sync::watch;

use crate::ProtocolChoice;

/// Shared by all slots of a connector, so one slot's discovery that UDP is blocked spares
/// the others the same timeout.
pub(crate) struct ProtocolState {
    choice: ProtocolChoice,
    on_fallback: AtomicBool,
    /// Bumped when a probe finds QUIC usable again: TCP sessions then migrate.
    quic_back: watch::Sender<u64>,
}

impl ProtocolState {
    pub(crate) fn new(choice: ProtocolChoice) -> Self {
        Self {
            choice,
            on_fallback: AtomicBool::new(false),
            quic_back: watch::channel(0).0,
        }
    }

    /// The protocol the next dial uses.
    pub(crate) fn current(&self) -> Protocol {
        match self.choice {
            ProtocolChoice::Quic => Protocol::Quic,
            ProtocolChoice::Tcp => Protocol::Tcp,
            ProtocolChoice::Auto if self.on_fallback.load(Ordering::Acquire) => Protocol::Tcp,
            ProtocolChoice::Auto => Protocol::Quic,
        }
    }

    /// A QUIC dial failed. Under `auto` this switches to TCP; returns true when that
    /// happened now (the caller retries at once, over TCP).
    pub(crate) fn quic_failed(&self) -> bool {
        self.choice == ProtocolChoice::Auto && !self.on_fallback.swap(true, Ordering::AcqRel)
    }

    /// Whether `auto` is on the TCP fallback.
    pub(crate) fn on_fallback(&self) -> bool {
        self.on_fallback.load(Ordering::Acquire)
    }

    /// A probe reached the edge over QUIC: dial QUIC again and tell TCP sessions.
    pub(crate) fn quic_recovered(&self) {
        if self.on_fallback.swap(false, Ordering::AcqRel) {
            self.quic_back.send_modify(|n| *n += 1);
        }
    }

    /// Notified when QUIC is back.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.quic_back.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_once_and_recovers() {
        let state = ProtocolState::new(ProtocolChoice::Auto);
        let mut back = state.subscribe();
        assert_eq!(state.current(), Protocol::Quic);
        assert!(state.quic_failed());
        assert!(
            !state.quic_failed(),
            "the second failure is not a new fallback"
        );
        assert_eq!(state.current(), Protocol::Tcp);
        state.quic_recovered();
        assert_eq!(state.current(), Protocol::Quic);
        assert!(back.has_changed().unwrap());
        back.mark_unchanged();
    }

    #[test]
    fn fixed_choices_never_switch() {
        let quic = ProtocolState::new(ProtocolChoice::Quic);
        assert!(!quic.quic_failed());
        assert_eq!(quic.current(), Protocol::Quic);
        let tcp = ProtocolState::new(ProtocolChoice::Tcp);
        assert_eq!(tcp.current(), Protocol::Tcp);
    }
}
