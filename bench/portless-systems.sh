# portless-systems.sh - Portless as two extra systems for anchors.sh (sourced via EXTRA_SYSTEMS).
#
#   portless-quic : edge + connector, tunnel over QUIC (UDP)            `tunnel run --protocol quic`
#   portless-tcp  : edge + connector, tunnel over TLS/HTTP2 on TCP      `tunnel run --protocol http2`
#
# Path of a request: client --HTTPS--> edge 127.0.0.1:$PORT --tunnel--> connector --HTTP--> origin
# nginx 127.0.0.1:8080 (the same origin and files, 1k.bin and 100m.bin, that every other system fronts).
# The edge routes by the Host header: clients send `Host: app.bench.test` (HTTP_HOST_*), and connect to
# https://127.0.0.1:$PORT (no SNI is sent for an IP literal; the edge then serves its default certificate,
# which wrk/oha --insecure/curl -k do not verify).
#
# Each start uses a fresh state dir $A/portless/<system> (store, local CA, credentials), then:
#   portless edge --state-dir D --listen 127.0.0.1:PORT --tunnel-listen 127.0.0.1:TPORT --metrics 127.0.0.1:MPORT --name bench
#   portless tunnel create bench --state-dir D --credentials-file D/creds.json
#   portless tunnel route app.bench.test bench --state-dir D
#   portless tunnel run --credentials-file D/creds.json --url http://127.0.0.1:8080 --protocol P --metrics 127.0.0.1:CPORT
# and waits (bounded) for the connector's /ready to answer 200 and for the public URL to serve 1k.bin
# (the edge polls its route table every second, so a new route is live within ~1 s).
# Edge and connector are started with anchors.sh's `spawn`, so their RSS and CPU are counted.
#
# Knobs (env): PORTLESS_BIN (default: ${CARGO_TARGET_DIR:-<repo>/target}/release/portless),
#              PORTLESS_HA_CONNECTIONS (connector --ha-connections; default: the connector's own default).
# Ports are fixed, loopback-only, for this benchmark only, and kept below the ephemeral range
# (32768-60999) like anchors.sh's own ports. TCP_PORT_* is the edge's public raw TCP port (edge config
# `ports:`), mapped to the tunnel hostname iperf.bench.test, whose connector rule is tcp://127.0.0.1:5201
# (anchors.sh's iperf3 server): iperf3 runs client -> edge port -> tunnel -> connector -> iperf3 -s.

_PORTLESS_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PORTLESS_BIN:-}" ]; then
    _t=${CARGO_TARGET_DIR:-$_PORTLESS_REPO/target}
    case $_t in /*) ;; *) _t=$_PORTLESS_REPO/$_t;; esac
    PORTLESS_BIN=$_t/release/portless
fi
PORTLESS_HOST=app.bench.test
PORTLESS_ORIGIN=http://127.0.0.1:8080
PORTLESS_IPERF_HOST=iperf.bench.test
PORTLESS_IPERF_ORIGIN=tcp://127.0.0.1:5201

#                       public         tunnel (UDP+TCP)   edge metrics     connector metrics
HTTP_PORT_portless_quic=19443; _PQ_TPORT=19844; _PQ_MPORT=19240; _PQ_CPORT=19241; TCP_PORT_portless_quic=19201
HTTP_PORT_portless_tcp=19543;  _PT_TPORT=19944; _PT_MPORT=19340; _PT_CPORT=19341; TCP_PORT_portless_tcp=19301
HTTP_HOST_portless_quic=$PORTLESS_HOST; HTTP_BASE_portless_quic=https://127.0.0.1:$HTTP_PORT_portless_quic
HTTP_HOST_portless_tcp=$PORTLESS_HOST;  HTTP_BASE_portless_tcp=https://127.0.0.1:$HTTP_PORT_portless_tcp

# portless_wait_ready URL TRIES : until URL answers 200 (0.1 s apart, bounded)
portless_wait_ready() {
    local url=$1 tries=${2:-200} i code
    for i in $(seq 1 "$tries"); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null)
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    log "ERROR: $url did not answer 200 (last: ${code:-none})"; return 1
}

# portless_start SYSTEM PORT TPORT MPORT CPORT PROTOCOL RAWPORT
portless_start() {
    local s=$1 port=$2 tport=$3 mport=$4 cport=$5 proto=$6 rawport=$7 i
    local d=$A/portless/$s
    [ -x "$PORTLESS_BIN" ] || { log "ERROR: no portless binary at $PORTLESS_BIN (cargo build --release -p portless, or set PORTLESS_BIN)"; return 1; }
    rm -rf "$d"; mkdir -p "$d"
    # edge: the public raw TCP port for iperf3; connector: the HTTP origin and the iperf3 server
    printf 'ports:\n  - listen: 127.0.0.1:%s\n    protocol: tcp\n    hostname: %s\n' \
        "$rawport" "$PORTLESS_IPERF_HOST" > "$d/edge.yml"
    printf 'ingress:\n  - hostname: %s\n    service: %s\n  - service: %s\n' \
        "$PORTLESS_IPERF_HOST" "$PORTLESS_IPERF_ORIGIN" "$PORTLESS_ORIGIN" > "$d/connector.yml"
    spawn "$s-edge" env RUST_LOG="${RUST_LOG:-warn}" "$PORTLESS_BIN" edge --state-dir "$d" --config "$d/edge.yml" \
        --listen "127.0.0.1:$port" --tunnel-listen "127.0.0.1:$tport" --metrics "127.0.0.1:$mport" --name bench
    wait_listen "$port" || return 1
    wait_listen "$tport" || return 1
    # the edge writes its advertised tunnel address into the store at start-up, right after binding:
    # give it a moment so that `tunnel create` puts 127.0.0.1:$tport (not the default) into the credentials
    portless_wait_ready "http://127.0.0.1:$mport/healthz" 100 || return 1
    RUST_LOG="${RUST_LOG:-warn}" "$PORTLESS_BIN" tunnel create bench --state-dir "$d" --credentials-file "$d/creds.json" \
        > "$RUN/$s-create.log" 2>&1 || { log "ERROR: tunnel create failed: $(tail -3 "$RUN/$s-create.log")"; return 1; }
    grep -q "127.0.0.1:$tport" "$RUN/$s-create.log" || { log "ERROR: credentials do not name the edge 127.0.0.1:$tport: $(grep -i 'edge address' "$RUN/$s-create.log")"; return 1; }
    for h in "$PORTLESS_HOST" "$PORTLESS_IPERF_HOST"; do
        RUST_LOG="${RUST_LOG:-warn}" "$PORTLESS_BIN" tunnel route "$h" bench --state-dir "$d" \
            >> "$RUN/$s-route.log" 2>&1 || { log "ERROR: tunnel route $h failed: $(tail -3 "$RUN/$s-route.log")"; return 1; }
    done
    local ha=()
    [ -n "${PORTLESS_HA_CONNECTIONS:-}" ] && ha=(--ha-connections "$PORTLESS_HA_CONNECTIONS")
    spawn "$s-connector" env RUST_LOG="${RUST_LOG:-warn}" "$PORTLESS_BIN" tunnel run --credentials-file "$d/creds.json" \
        --config "$d/connector.yml" --protocol "$proto" --metrics "127.0.0.1:$cport" "${ha[@]}"
    portless_wait_ready "http://127.0.0.1:$cport/ready" 200 || return 1
    # route table poll (1 s) + tunnel registration: until the public URL serves the origin's file
    for i in $(seq 1 100); do
        [ "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 -H "Host: $PORTLESS_HOST" "https://127.0.0.1:$port/1k.bin")" = 200 ] && {
            log "$s ready: $(curl -s --max-time 1 "http://127.0.0.1:$cport/ready")"; return 0; }
        sleep 0.1
    done
    log "ERROR: https://127.0.0.1:$port/1k.bin (Host: $PORTLESS_HOST) never answered 200"; return 1
}

start_portless_quic() { portless_start portless-quic "$HTTP_PORT_portless_quic" "$_PQ_TPORT" "$_PQ_MPORT" "$_PQ_CPORT" quic "$TCP_PORT_portless_quic"; }
start_portless_tcp()  { portless_start portless-tcp  "$HTTP_PORT_portless_tcp"  "$_PT_TPORT" "$_PT_MPORT" "$_PT_CPORT" http2 "$TCP_PORT_portless_tcp"; }
