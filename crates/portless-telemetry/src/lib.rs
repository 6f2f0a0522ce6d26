//! Observability shared by the edge and the connector: structured logs and the
//! metrics/health endpoint operators scrape at a fixed address.
//!
//! Main types: [`HealthServer`] (serves `/metrics`, `/ready`, `/healthz` and the
//! `/healthcheck` alias on an already-bound listener), [`Readiness`], [`LogFormat`] and
//! [`init_logging`].
//!
//! Layout:
//! * `health` — the HTTP endpoint;
//! * `logging` — tracing subscriber set-up (text or JSON).

mod health;
mod logging;

pub use health::{HealthServer, Readiness, ReadinessProbe};
pub use logging::{LogFormat, init_logging};

/// The JSON crate `/ready` detail is built with.
pub use serde_json;
