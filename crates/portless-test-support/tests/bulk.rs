//! A gigabyte each way through edge and tunnel, with memory staying bounded. Alone in its
//! test binary so the process's memory is this test's memory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::time::Instant;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use portless_connector::ProtocolChoice;
use portless_test_support::{
    ClientBody, RssSampler, TestEdge, TestOrigin, init_test_logging, pattern_byte,
};

const GIB: u64 = 1024 * 1024 * 1024;
/// Edge, connector, origin and client share this process; their windows and buffers are a
/// few MiB each. A leak or a buffered body would show as hundreds of MiB.
const MAX_GROWTH: u64 = 96 * 1024 * 1024;

fn upload_body(total: u64) -> ClientBody {
    // One chunk reused: generating a gigabyte of fresh pattern bytes would dominate the test.
    let chunk: Bytes = (0..65536u64).map(pattern_byte).collect::<Vec<_>>().into();
    let chunks = futures_util::stream::iter(
        (0..total / 65536).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
    );
    StreamBody::new(chunks).boxed()
}

async fn transfer(protocol: ProtocolChoice) {
    let edge = TestEdge::start().await;
    let origin = TestOrigin::start("bulk").await;
    let tunnel = edge.add_tunnel("bulk", &["bulk.test"]).await;
    let rules = format!(
        "ingress:\n  - hostname: bulk.test\n    service: {}\n  - service: http_status:404\n",
        origin.url()
    );
    let _connector = edge
        .connect(edge.connector_options(&tunnel, protocol), &rules)
        .await;
    let client = edge.client(false);
    let baseline = {
        // Warm up pools and allocator before taking the baseline.
        let (status, _, _) = client.get("bulk.test", "/bytes/10000000").await;
        assert_eq!(status, StatusCode::OK);
        portless_test_support::RssSampler::start().stop()
    };
    let sampler = RssSampler::start();
    let started = Instant::now();

    // Download: count and check every byte as it streams.
    let request = Request::get(client.url("bulk.test", &format!("/bytes/{GIB}")))
        .body(ClientBody::default())
        .unwrap();
    let response = client.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        GIB.to_string().as_str()
    );
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            assert!(
                data.iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern_byte(received + i as u64)),
                "corrupt byte near {received}"
            );
            received += data.len() as u64;
        }
    }
    assert_eq!(received, GIB);
    let download = started.elapsed();

    // Upload: a streamed body of unknown length (chunked), counted by the origin.
    let request = Request::post(client.url("bulk.test", "/count"))
        .body(upload_body(GIB))
        .unwrap();
    let response = client.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let chunk_sum: u64 = (0..65536u64).map(|i| u64::from(pattern_byte(i))).sum();
    assert_eq!(
        String::from_utf8_lossy(&text),
        format!("bytes={GIB} sum={}", chunk_sum * (GIB / 65536))
    );
    let upload = started.elapsed() - download;

    let peak = sampler.stop();
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{protocol:?}: 1 GiB down in {download:?}, up in {upload:?}; RSS baseline {} MiB, peak {} MiB",
        baseline >> 20,
        peak >> 20
    );
    assert!(
        growth < MAX_GROWTH,
        "{protocol:?}: memory grew by {} MiB while streaming",
        growth >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_streams_each_way_in_bounded_memory_over_quic_and_tcp() {
    init_test_logging();
    transfer(ProtocolChoice::Quic).await;
    transfer(ProtocolChoice::Tcp).await;
}
