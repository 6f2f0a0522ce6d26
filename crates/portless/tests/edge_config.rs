//! `portless edge --config FILE` (and `PORTLESS_EDGE_CONFIG`): a wrong file stops the edge
//! before it binds anything, with every problem at its line and column.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic with its message

use std::process::Command;

const PORTLESS: &str = env!("CARGO_BIN_EXE_portless");

#[test]
fn a_wrong_edge_config_is_refused_with_positions_and_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.yml");
    std::fs::write(
        &file,
        "passthrough: [secure.test]\nports:\n  - listen: 127.0.0.1:0\n    protocol: tcp\n    hostname: a.test\n    alow: [10.0.0.0/8]\n",
    )
    .unwrap();
    for via_env in [false, true] {
        let mut command = Command::new(PORTLESS);
        command
            .arg("edge")
            .arg("--state-dir")
            .arg(dir.path().join("state"));
        if via_env {
            command.env("PORTLESS_EDGE_CONFIG", &file);
        } else {
            command.arg("--config").arg(&file);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        let expected = format!(
            "{}:6:5: error: unknown key `alow` in ports entry #1",
            file.display()
        );
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(stderr.contains("fix: did you mean `allow`?"), "{stderr}");
    }
    // Values are checked once the keys are right.
    std::fs::write(
        &file,
        "ports:\n  - listen: 127.0.0.1:0\n    protocol: udp\n    hostname: a.test\n    proxy_protocol: v2\n",
    )
    .unwrap();
    let output = Command::new(PORTLESS)
        .arg("edge")
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(":2:13: error: `listen` of ports entry #1: port 0 is not a fixed port"),
        "{stderr}"
    );
    assert!(stderr.contains(":5:21: error: `proxy_protocol` of ports entry #1: the PROXY protocol header is sent on TCP ports only"), "{stderr}");
}
