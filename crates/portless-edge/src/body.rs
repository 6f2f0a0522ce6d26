//! The edge's response body: a page, nothing, or a body streamed from a tunnel stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use portless_transport::{RecvHalf, TransportError, TunnelBody};

use crate::registry::InFlight;

/// Response bodies the edge sends.
// The large variant is the common one (every proxied response); boxing it would add an
// allocation per response to spare the rare error page a few bytes.
#[allow(clippy::large_enum_variant)]
pub(crate) enum EdgeBody {
    /// A complete body held in memory (error pages).
    Full(Option<Bytes>),
    /// Streamed from the connector. Holds the connection claim and the concurrency gauge
    /// until the body ends, so "in flight" means "until the last byte".
    Tunnel {
        body: TunnelBody<RecvHalf>,
        _claim: Option<InFlight>,
        _gauge: GaugeGuard,
    },
}

impl EdgeBody {
    pub(crate) fn full(bytes: Bytes) -> Self {
        Self::Full(Some(bytes))
    }

    pub(crate) fn empty() -> Self {
        Self::Full(None)
    }
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = TransportError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, TransportError>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Tunnel { body, .. } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.is_none(),
            Self::Tunnel { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Tunnel { body, .. } => body.size_hint(),
        }
    }
}

/// Decrements the concurrent-requests gauge when dropped.
pub(crate) struct GaugeGuard(pub(crate) prometheus_client::metrics::gauge::Gauge);

impl GaugeGuard {
    pub(crate) fn new(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
