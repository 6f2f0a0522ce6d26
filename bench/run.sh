#!/usr/bin/env bash
# bench/run.sh - whole-system benchmark: Portless (QUIC and TCP tunnels) against its peers, one session.
#
#   bench/run.sh                      # direct nginx rathole-tls bore portless-quic portless-tcp
#   bench/run.sh direct portless-quic # any subset / other anchors.sh systems
#
# Steps: 1. cargo build --release -p portless (honours CARGO_TARGET_DIR; skipped when PORTLESS_BIN is set)
#        2. anchors.sh --install when a tool is missing (apt: nginx haproxy iperf3 wrk curl openssl python3;
#           cargo install: rathole bore-cli oha, into $ANCHORS_DIR/cargo-root), then `cargo install --locked`
#           for any crate that failed, and libnginx-mod-stream (the nginx system's stream module)
#        3. one anchors.sh invocation for every system, so that all ratios come from the same session
#        4. prints the summary, the Portless target check (bench/targets.py) and where the results are.
# Knobs (env, passed through to anchors.sh): RUNS DUR DL_RUNS CONN_N C_HIGH WRK_THREADS IPERF_MODES CASES
#   OUTDIR ANCHORS_DIR ANCHORS_BIN RUST_LOG; and here: ANCHORS_SH (default <repo>/../shared/bench/anchors.sh),
#   PORTLESS_BIN (use this binary, do not build), PORTLESS_HA_CONNECTIONS, NO_INSTALL=1 (never install).
# Everything runs on 127.0.0.1; anchors.sh bounds every load loop and stops only the PIDs it started.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ANCHORS_SH=${ANCHORS_SH:-$REPO/../shared/bench/anchors.sh}
[ -f "$ANCHORS_SH" ] || { echo "run.sh: anchors.sh not found at $ANCHORS_SH (set ANCHORS_SH)" >&2; exit 1; }
ANCHORS_SH=$(cd "$(dirname "$ANCHORS_SH")" && pwd)/$(basename "$ANCHORS_SH")
export ANCHORS_DIR=${ANCHORS_DIR:-${TMPDIR:-/tmp}/portless-anchors}

# 1. the binary
if [ -z "${PORTLESS_BIN:-}" ]; then
    echo "[run.sh] cargo build --release -p portless" >&2
    (cd "$REPO" && cargo build --release -p portless)
    target=${CARGO_TARGET_DIR:-$REPO/target}
    case $target in /*) ;; *) target=$REPO/$target;; esac   # cargo resolves a relative one from its cwd ($REPO)
    PORTLESS_BIN=$target/release/portless
fi
[ -x "$PORTLESS_BIN" ] || { echo "run.sh: no executable $PORTLESS_BIN" >&2; exit 1; }
export PORTLESS_BIN
echo "[run.sh] portless: $PORTLESS_BIN ($("$PORTLESS_BIN" --version))" >&2

# 2. the tools
bin=${ANCHORS_BIN:-$ANCHORS_DIR/cargo-root/bin}
missing=()
for t in nginx haproxy iperf3 wrk curl openssl python3 ss; do command -v "$t" >/dev/null || missing+=("$t"); done
for t in rathole bore oha; do [ -x "$bin/$t" ] || command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${NO_INSTALL:-0}" = 1 ]; then echo "run.sh: missing tools: ${missing[*]} (NO_INSTALL=1)" >&2; exit 1; fi
    echo "[run.sh] missing: ${missing[*]}; running anchors.sh --install" >&2
    bash "$ANCHORS_SH" --install   # exits 0 even when a `cargo install` failed: check again below
    # Without --locked, `cargo install oha` resolves the newest dependencies, some of which may need a
    # newer rustc than the one installed (oha 1.16.0: easy-cast 0.5.5 requires rustc 1.96): retry the
    # missing ones with their published lock files.
    for t in rathole:rathole bore:bore-cli oha:oha; do
        [ -x "$bin/${t%%:*}" ] || command -v "${t%%:*}" >/dev/null && continue
        echo "[run.sh] ${t%%:*} still missing: cargo install --locked ${t#*:}" >&2
        cargo install --locked --root "$ANCHORS_DIR/cargo-root" "${t#*:}"
    done
    still=()
    for t in nginx haproxy iperf3 wrk curl openssl python3 ss; do command -v "$t" >/dev/null || still+=("$t"); done
    for t in rathole bore oha; do [ -x "$bin/$t" ] || command -v "$t" >/dev/null || still+=("$t"); done
    [ ${#still[@]} -eq 0 ] || { echo "run.sh: still missing after install: ${still[*]}" >&2; exit 1; }
fi
# The `nginx` system (reverse proxy + L4 stream proxy) loads ngx_stream_module, which Debian ships
# in a separate package that anchors.sh --install does not install.
if [ ! -f /usr/lib/nginx/modules/ngx_stream_module.so ]; then
    if [ "${NO_INSTALL:-0}" = 1 ]; then echo "run.sh: missing ngx_stream_module.so (apt-get install libnginx-mod-stream)" >&2; exit 1; fi
    echo "[run.sh] installing libnginx-mod-stream (ngx_stream_module for the nginx system)" >&2
    apt-get install -y -qq libnginx-mod-stream >/dev/null || { apt-get update -qq && apt-get install -y -qq libnginx-mod-stream >/dev/null; }
fi

# 3. one session for every system
SYSTEMS=("$@")
[ ${#SYSTEMS[@]} -eq 0 ] && SYSTEMS=(direct nginx rathole-tls bore portless-quic portless-tcp)
export OUTDIR=${OUTDIR:-$ANCHORS_DIR/results/portless-$(date +%Y%m%d-%H%M%S)}
export EXTRA_SYSTEMS=$REPO/bench/portless-systems.sh
echo "[run.sh] anchors.sh ${SYSTEMS[*]} -> $OUTDIR" >&2
rc=0
bash "$ANCHORS_SH" "${SYSTEMS[@]}" || rc=$?

# 4. where things are
if [ -f "$OUTDIR/results.tsv" ]; then
    python3 "$REPO/bench/targets.py" "$OUTDIR/results.tsv" | tee "$OUTDIR/targets.md"
fi
echo
echo "results TSV : $OUTDIR/results.tsv   (system, case, run, metric, value)"
echo "summary     : $OUTDIR/summary.md"
echo "targets     : $OUTDIR/targets.md"
echo "logs        : $OUTDIR/run.log, process logs in $ANCHORS_DIR/run/"
[ "$rc" -eq 0 ] || echo "[run.sh] anchors.sh exited with $rc" >&2
exit "$rc"
