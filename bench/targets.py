#!/usr/bin/env python3
"""targets.py RESULTS_TSV - the compact comparison table of docs/benchmarks.md and the Portless targets.

Reads anchors.sh's results.tsv (system, case, run, metric, value); cells are medians over runs.
Targets (docs/benchmarks.md): >= 30,000 req/s at c=50 through edge+tunnel; <= 0.1 ms added p50 at c=1
(Portless p50 minus direct p50, same session); <= 30 MiB RSS edge+connector idle; raw TCP (iperf3
through a public port and tunnel) >= 1.5x rathole's TLS transport, single stream and 4 streams.
"""
import collections
import math
import statistics
import sys

TARGET_RPS = 30000.0
TARGET_ADDED_P50_MS = 0.1
TARGET_RSS_IDLE_KIB = 30 * 1024
TARGET_TCP_VS_RATHOLE_TLS = 1.5


def load(path):
    data = collections.defaultdict(list)
    order = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            system, case, _run, metric, value = parts
            try:
                v = float(value)
            except ValueError:
                continue
            if math.isnan(v):
                continue
            if system not in order:
                order.append(system)
            data[(system, case, metric)].append(v)
    return data, order


def med(data, system, case, metric):
    v = data.get((system, case, metric))
    return statistics.median(v) if v else None


def peak_load_rss(data, system):
    v = [med(data, system, c, "TOTAL") for c in ("rss_peak_http", "rss_peak_download", "rss_peak_conn", "rss_peak_iperf")]
    v = [x for x in v if x is not None]
    return max(v) if v else None


def fmt(v, nd):
    return "-" if v is None else f"{v:,.{nd}f}"


def main():
    data, order = load(sys.argv[1])
    rows = [
        ("req/s, 1 KiB, c=high (wrk)", lambda s: med(data, s, "wrk_chigh", "rps"), 0),
        ("p50 ms, 1 KiB, c=high", lambda s: med(data, s, "wrk_chigh", "p50_ms"), 3),
        ("p99 ms, 1 KiB, c=high", lambda s: med(data, s, "wrk_chigh", "p99_ms"), 3),
        ("req/s, 1 KiB, c=1 (wrk)", lambda s: med(data, s, "wrk_c1", "rps"), 0),
        ("p50 ms, 1 KiB, c=1", lambda s: med(data, s, "wrk_c1", "p50_ms"), 3),
        ("p99 ms, 1 KiB, c=1", lambda s: med(data, s, "wrk_c1", "p99_ms"), 3),
        ("req/s, 1 KiB, c=high (oha)", lambda s: med(data, s, "oha_chigh", "rps"), 0),
        ("raw TCP Gbit/s, iperf3 1 stream", lambda s: med(data, s, "iperf_P1", "gbps"), 2),
        ("raw TCP Gbit/s, iperf3 4 streams", lambda s: med(data, s, "iperf_P4", "gbps"), 2),
        ("raw TCP Gbit/s, iperf3 -R 1 stream", lambda s: med(data, s, "iperf_R1", "gbps"), 2),
        ("100 MiB download MB/s", lambda s: med(data, s, "download", "MBps"), 0),
        ("new connections/s", lambda s: med(data, s, "conn", "rps"), 0),
        ("RSS idle, KiB (all processes)", lambda s: med(data, s, "rss_idle", "TOTAL"), 0),
        ("RSS peak under load, KiB", lambda s: peak_load_rss(data, s), 0),
        ("RSS idle after load, KiB", lambda s: med(data, s, "rss_after", "TOTAL"), 0),
    ]
    print("| metric (median over runs) | " + " | ".join(order) + " |")
    print("|---|" + "---:|" * len(order))
    for title, get, nd in rows:
        cells = [fmt(get(s), nd) for s in order]
        if all(c == "-" for c in cells):
            continue
        print(f"| {title} | " + " | ".join(cells) + " |")

    def errs(s, case):
        v = data.get((s, case, "errors"))
        return "-" if v is None else f"{sum(v):.0f}"
    # wrk: socket errors + non-2xx responses; oha: includes the c in-flight requests cut at the deadline
    cells = [f"{errs(s, 'wrk_chigh')} / {errs(s, 'wrk_c1')} / {errs(s, 'oha_chigh')} / {errs(s, 'conn')}" for s in order]
    if any(c != "- / - / - / -" for c in cells):
        print("| errors: wrk c=high / wrk c=1 / oha c=high / new conns (sum over runs) | " + " | ".join(cells) + " |")
    print()
    direct_p50 = med(data, "direct", "wrk_c1", "p50_ms")
    print("Portless targets (edge + connector):")
    for s in order:
        if not s.startswith("portless"):
            continue
        checks = []
        rps = med(data, s, "wrk_chigh", "rps")
        if rps is not None:
            checks.append(f"req/s c=high {rps:,.0f} (target >= {TARGET_RPS:,.0f}: {'met' if rps >= TARGET_RPS else 'NOT met'})")
        p50 = med(data, s, "wrk_c1", "p50_ms")
        if p50 is not None and direct_p50 is not None:
            added = p50 - direct_p50
            checks.append(f"added p50 c=1 {added:.3f} ms (target <= {TARGET_ADDED_P50_MS} ms: {'met' if added <= TARGET_ADDED_P50_MS else 'NOT met'})")
        for mode, words in (("iperf_P1", "1 stream"), ("iperf_P4", "4 streams")):
            mine, theirs = med(data, s, mode, "gbps"), med(data, "rathole-tls", mode, "gbps")
            if mine is not None and theirs:
                ratio = mine / theirs
                met = "met" if ratio >= TARGET_TCP_VS_RATHOLE_TLS else "NOT met"
                checks.append(f"raw TCP {words} {ratio:.2f}x rathole-tls (target >= {TARGET_TCP_VS_RATHOLE_TLS}x: {met})")
        rss = med(data, s, "rss_idle", "TOTAL")
        if rss is not None:
            checks.append(f"RSS idle {rss / 1024:.1f} MiB (target <= 30 MiB: {'met' if rss <= TARGET_RSS_IDLE_KIB else 'NOT met'})")
        labels = sorted({m for (ss, c, m) in data if ss == s and c == "rss_idle" and m != "TOTAL"})
        per = ", ".join(f"{l} {med(data, s, 'rss_idle', l) / 1024:.1f} MiB idle / "
                        f"{fmt((med(data, s, 'rss_peak_http', l) or 0) / 1024, 1)} MiB peak http" for l in labels)
        print(f"- {s}: " + ("; ".join(checks) if checks else "no data"))
        if per:
            print(f"  per process: {per}")
    print("\nc=high is C_HIGH (50 unless changed). oha counts the requests still in flight at its deadline (= c per run)"
          " as errors. Any other error makes that system's figures invalid. Smoke runs (RUNS=1, short DUR) are not results.")


if __name__ == "__main__":
    main()
