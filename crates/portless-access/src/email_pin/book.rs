//! The PIN book: issuing, rate-limiting and redeeming email one-time PINs, in memory.
//!
//! The portal asks for a PIN on behalf of a browser (identified by an opaque binding, its
//! pre-login session id) and later redeems what the person typed. The rules, from
//! access-control.md and attacks.md (class I):
//! * a PIN is issued only if the caller's predicate says the address could be allowed by
//!   some rule; the outcome is reported to the caller for its audit log, but the page must
//!   say the same thing either way (no user enumeration);
//! * six digits from the system CSPRNG, stored only as salted SHA-256 digests, compared in
//!   constant time;
//! * single-use, valid for 10 minutes, at most 3 wrong tries per PIN;
//! * bound to the browser that asked: the right PIN from another browser fails and burns
//!   the PIN, so a code phished out of a mailbox is useless elsewhere;
//! * requests are limited per address and per client IP (sliding windows), so nobody can
//!   flood a mailbox or spray codes.
//!
//! Time is a parameter of every call, so each rule is unit-tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::address::{AddressError, EmailAddress};

/// Digits in a PIN.
pub const PIN_DIGITS: usize = 6;
/// The largest multiple of 10^6 that fits in a `u32`: draws at or above it are rejected so
/// every PIN is equally likely.
const UNBIASED_LIMIT: u32 = 4_294_000_000;
/// How often expired entries are swept at most.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A sliding-window limit: at most `max` events within `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed within the window.
    pub max: u32,
    /// The window's length.
    pub window: Duration,
}

/// The rules a [`PinBook`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinPolicy {
    /// How long a PIN stays valid (default 10 minutes).
    pub lifetime: Duration,
    /// Wrong tries that burn a PIN (default 3).
    pub max_attempts: u32,
    /// PIN requests per address (default 3 per 10 minutes).
    pub per_address: RateLimit,
    /// PIN requests per client IP (default 10 per 10 minutes).
    pub per_ip: RateLimit,
}

impl Default for PinPolicy {
    fn default() -> PinPolicy {
        let ten_minutes = Duration::from_secs(600);
        PinPolicy {
            lifetime: ten_minutes,
            max_attempts: 3,
            per_address: RateLimit {
                max: 3,
                window: ten_minutes,
            },
            per_ip: RateLimit {
                max: 10,
                window: ten_minutes,
            },
        }
    }
}

/// The browser a PIN belongs to: an opaque value the portal ties to the browser that asked
/// (its pre-login session id). Never logged.
#[derive(Clone)]
pub struct BrowserBinding(SecretString);

impl BrowserBinding {
    /// Wraps the browser's session id (or any per-browser secret).
    pub fn new(value: impl Into<String>) -> BrowserBinding {
        BrowserBinding(SecretString::from(value.into()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl fmt::Debug for BrowserBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BrowserBinding(<redacted>)")
    }
}

/// A PIN just issued, to be mailed to [`IssuedPin::address`]. The code is not in `Debug`.
pub struct IssuedPin {
    address: EmailAddress,
    code: SecretString,
    expires_at: SystemTime,
}

impl IssuedPin {
    /// The canonical address to send the PIN to.
    pub fn address(&self) -> &EmailAddress {
        &self.address
    }

    /// The six digits, for the mail body only.
    pub fn code(&self) -> &str {
        self.code.expose_secret()
    }

    /// When the PIN stops being accepted.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for IssuedPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedPin")
            .field("address", &self.address)
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why no PIN was issued. For the audit log only: the page says the same thing whatever
/// the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withheld {
    /// No rule could allow the address.
    NotAllowed,
    /// Too many requests for this address recently.
    AddressRateLimited,
    /// Too many requests from this client IP recently.
    IpRateLimited,
}

/// The outcome of [`PinBook::request`]: whether a PIN is to be sent, and why not.
#[derive(Debug)]
pub struct Requested {
    /// The canonical address asked for.
    pub address: EmailAddress,
    /// The PIN to mail, when one was issued.
    pub pin: Option<IssuedPin>,
    /// Why no PIN was issued, when none was.
    pub withheld: Option<Withheld>,
}

impl Requested {
    /// Whether a PIN was issued (and so must be mailed).
    pub fn sent(&self) -> bool {
        self.pin.is_some()
    }
}

/// An address proven by a redeemed PIN: its owner read mail sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAddress {
    /// The canonical address.
    pub address: EmailAddress,
}

/// Why [`PinBook::request`] refused the input itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// The typed address is malformed.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The system random generator failed.
    #[error(
        "the system random generator failed: no PIN can be issued; check the host's entropy source"
    )]
    Random,
}

/// Why a PIN was not accepted. The page shows one message for all of them ("wrong or
/// expired code"); the variants are for the audit log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinError {
    /// The typed address is malformed.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The input is not six digits.
    #[error("the code is {PIN_DIGITS} digits from the email: type just the digits")]
    Malformed,
    /// No PIN is pending for the address (never issued, expired, used or burned).
    #[error("no code is pending for this address (expired, used or never sent): ask for a new one")]
    NonePending,
    /// The PIN does not match; `burned` when that was its last try.
    #[error("wrong code: check the digits in the latest email")]
    Wrong {
        /// The wrong try used up the pending PIN(s).
        burned: bool,
    },
    /// The right PIN, from another browser than the one that asked; it is now burned.
    #[error("this code was requested from another browser: ask for a new code in this browser")]
    OtherBrowser,
}

/// Issues and redeems email PINs. Shared by the portal (`&self`, one lock inside).
pub struct PinBook {
    policy: PinPolicy,
    state: Mutex<State>,
}

impl fmt::Debug for PinBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinBook")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    pending: HashMap<EmailAddress, Vec<Pending>>,
    by_address: HashMap<EmailAddress, VecDeque<SystemTime>>,
    by_ip: HashMap<IpAddr, VecDeque<SystemTime>>,
    last_sweep: Option<SystemTime>,
}

/// One issued PIN, as stored: digests only.
struct Pending {
    salt: [u8; 16],
    pin_digest: [u8; 32],
    binding_digest: [u8; 32],
    expires_at: SystemTime,
    wrong_tries: u32,
}

impl PinBook {
    /// A book with `policy`.
    pub fn new(policy: PinPolicy) -> PinBook {
        PinBook {
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// The rules in force.
    pub fn policy(&self) -> PinPolicy {
        self.policy
    }

    /// Handles a PIN request for `address` from the browser `binding` at `client_ip`.
    ///
    /// A PIN is issued only when both rate limits allow it and `could_be_allowed` says
    /// some rule could let the address in. Every well-formed request counts against the
    /// limits, whatever the outcome, so the limits reveal nothing about the rules.
    pub fn request(
        &self,
        address: &str,
        binding: &BrowserBinding,
        client_ip: IpAddr,
        now: SystemTime,
        could_be_allowed: impl FnOnce(&EmailAddress) -> bool,
    ) -> Result<Requested, RequestError> {
        let address = EmailAddress::parse(address)?;
        let mut state = self.lock();
        state.sweep_if_due(now, &self.policy);
        let withheld = if !admit(
            state.by_ip.entry(client_ip).or_default(),
            self.policy.per_ip,
            now,
        ) {
            Some(Withheld::IpRateLimited)
        } else if !admit(
            state.by_address.entry(address.clone()).or_default(),
            self.policy.per_address,
            now,
        ) {
            Some(Withheld::AddressRateLimited)
        } else if !could_be_allowed(&address) {
            Some(Withheld::NotAllowed)
        } else {
            None
        };
        if withheld.is_some() {
            return Ok(Requested {
                address,
                pin: None,
                withheld,
            });
        }
        let code = random_pin()?;
        let salt = random_salt()?;
        let expires_at = now + self.policy.lifetime;
        let pending = Pending {
            salt,
            pin_digest: pin_digest(&salt, &address, &code),
            binding_digest: binding_digest(&salt, binding),
            expires_at,
            wrong_tries: 0,
        };
        state
            .pending
            .entry(address.clone())
            .or_default()
            .push(pending);
        let pin = IssuedPin {
            address: address.clone(),
            code: SecretString::from(code),
            expires_at,
        };
        Ok(Requested {
            address,
            pin: Some(pin),
            withheld: None,
        })
    }

    /// Redeems `pin` for `address` from the browser `binding`.
    ///
    /// On success the PIN and every other pending PIN for the address are gone. A wrong PIN
    /// counts a try against every pending PIN of the address (from any browser), burning
    /// those that reach the limit; the right PIN from another browser burns that PIN.
    pub fn verify(
        &self,
        address: &str,
        pin: &str,
        binding: &BrowserBinding,
        now: SystemTime,
    ) -> Result<VerifiedAddress, PinError> {
        let address = EmailAddress::parse(address)?;
        let pin = pin.trim();
        if pin.len() != PIN_DIGITS || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PinError::Malformed);
        }
        let mut state = self.lock();
        let Some(pending) = state.pending.get_mut(&address) else {
            return Err(PinError::NonePending);
        };
        pending.retain(|p| p.expires_at > now);
        let outcome = redeem(pending, &address, pin, binding, self.policy.max_attempts);
        if pending.is_empty() || outcome.is_ok() {
            state.pending.remove(&address);
        }
        outcome.map(|()| VerifiedAddress { address })
    }

    /// Drops expired PINs and request counters that no longer limit anything; returns how
    /// many entries were removed. Called by [`PinBook::request`] at most once a minute;
    /// a portal may also call it from a timer.
    pub fn sweep(&self, now: SystemTime) -> usize {
        self.lock().sweep(now, &self.policy)
    }

    /// PINs currently pending (for metrics and tests).
    pub fn pending(&self) -> usize {
        self.lock().pending.values().map(Vec::len).sum()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is one
        // statement), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for PinBook {
    fn default() -> PinBook {
        PinBook::new(PinPolicy::default())
    }
}

impl State {
    fn sweep_if_due(&mut self, now: SystemTime, policy: &PinPolicy) {
        let due = self
            .last_sweep
            .is_none_or(|last| elapsed(last, now) >= SWEEP_EVERY);
        if due {
            self.sweep(now, policy);
        }
    }

    fn sweep(&mut self, now: SystemTime, policy: &PinPolicy) -> usize {
        self.last_sweep = Some(now);
        let mut removed = 0;
        for list in self.pending.values_mut() {
            let before = list.len();
            list.retain(|p| p.expires_at > now);
            removed += before - list.len();
        }
        self.pending.retain(|_, list| !list.is_empty());
        removed += sweep_windows(&mut self.by_address, policy.per_address.window, now);
        removed += sweep_windows(&mut self.by_ip, policy.per_ip.window, now);
        removed
    }
}

/// Checks `pin` against the unexpired `pending` PINs of `address`, updating them.
fn redeem(
    pending: &mut Vec<Pending>,
    address: &EmailAddress,
    pin: &str,
    binding: &BrowserBinding,
    max_attempts: u32,
) -> Result<(), PinError> {
    if pending.is_empty() {
        return Err(PinError::NonePending);
    }
    let matched = pending
        .iter()
        .position(|p| bool::from(pin_digest(&p.salt, address, pin).ct_eq(&p.pin_digest)));
    if let Some(index) = matched {
        let entry = pending.remove(index);
        let same_browser = binding_digest(&entry.salt, binding).ct_eq(&entry.binding_digest);
        return if bool::from(same_browser) {
            Ok(())
        } else {
            Err(PinError::OtherBrowser)
        };
    }
    let before = pending.len();
    for p in pending.iter_mut() {
        p.wrong_tries = p.wrong_tries.saturating_add(1);
    }
    pending.retain(|p| p.wrong_tries < max_attempts);
    Err(PinError::Wrong {
        burned: pending.len() < before,
    })
}

/// Whether one more event fits in `limit` at `now`; records it when it does.
fn admit(events: &mut VecDeque<SystemTime>, limit: RateLimit, now: SystemTime) -> bool {
    while events
        .front()
        .is_some_and(|&t| elapsed(t, now) >= limit.window)
    {
        events.pop_front();
    }
    let fits = u32::try_from(events.len()).is_ok_and(|n| n < limit.max);
    if fits {
        events.push_back(now);
    }
    fits
}

fn sweep_windows<K: Eq + std::hash::Hash>(
    map: &mut HashMap<K, VecDeque<SystemTime>>,
    window: Duration,
    now: SystemTime,
) -> usize {
    let before = map.len();
    map.retain(|_, events| events.back().is_some_and(|&t| elapsed(t, now) < window));
    before - map.len()
}

fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or(Duration::ZERO)
}

/// Six uniformly distributed digits from the system CSPRNG.
fn random_pin() -> Result<String, RequestError> {
    loop {
        let mut bytes = [0u8; 4];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RequestError::Random)?;
        let draw = u32::from_le_bytes(bytes);
        if draw < UNBIASED_LIMIT {
            return Ok(format!("{:06}", draw % 1_000_000));
        }
    }
}

fn random_salt() -> Result<[u8; 16], RequestError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| RequestError::Random)?;
    Ok(salt)
}

/// SHA-256 over a domain tag, the salt and length-prefixed fields.
fn tagged_digest(tag: &[u8], salt: &[u8; 16], fields: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(tag);
    ctx.update(salt);
    for field in fields {
        let len = u64::try_from(field.len()).unwrap_or(u64::MAX);
        ctx.update(&len.to_be_bytes());
        ctx.update(field);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn pin_digest(salt: &[u8; 16], address: &EmailAddress, pin: &str) -> [u8; 32] {
    tagged_digest(
        b"portless email pin v1\0",
        salt,
        &[address.as_str().as_bytes(), pin.as_bytes()],
    )
}

fn binding_digest(salt: &[u8; 16], binding: &BrowserBinding) -> [u8; 32] {
    tagged_digest(b"portless email pin binding v1\0", salt, &[binding.bytes()])
}
