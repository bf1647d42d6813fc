#!/usr/bin/env python3
"""One table: Hopper beside the peers (huey, RQ, the SQLite floor), plus ratios vs targets.

Usage: report.py --peers PEERS.json --hopper HOPPER.json [--md OUT.md] [--cmd "..."]

PEERS.json is what ``../shared/bench-peers/run_all.sh`` writes (``--json-out``
of its report.py); HOPPER.json is what ``bench_hopper.py --json`` writes. The
peer harness's own formatting helpers are imported, not copied, so the rows
look the same as in its report.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.environ.get("PEER_DIR", os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                "shared", "bench-peers"))
sys.path.insert(0, PEERS)

from report import fmt, md_table, qhead, queue_rows, text_table  # noqa: E402  (peers' report.py)


def _run(bench: dict | None, **match) -> dict | None:
    for r in (bench or {}).get("runs", []):
        if "error" not in r and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _optional_json(path: str | None) -> dict | None:
    """The JSON a step of run_all.sh wrote, or None when that step was skipped or failed."""
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def targets(peers: dict, hopper: dict, label: str = "",
            wake_ms: float | None = None) -> list[list]:
    """Rows: what, Hopper, reference, ratio or value, target, met? A cold pickup's
    reference is ``wake_ms``, the machine's own wake-up of an idle process."""
    huey = peers.get("huey")
    huey_proc = _run(huey, worker_type="process")
    floor = _run(peers.get("floor")) or {}
    rows = []

    def add(what, hop, ref, value, target, ok, nd=2):
        rows.append([what, fmt(hop, 0 if isinstance(hop, float) and hop > 100 else 2)
                     if hop is not None else "-",
                     fmt(ref, 0 if isinstance(ref, float) and ref > 100 else 2)
                     if ref is not None else "-",
                     fmt(value, nd) if value is not None else "-", target,
                     "-" if ok is None else ("yes" if ok else "NO")])

    for dur in ("full", "normal"):
        h = _run(hopper, durability=dur)
        if h is None:
            continue
        tag = f"[{label}{dur}]"
        r = _ratio(h.get("drain_per_s"), (huey_proc or {}).get("drain_per_s"))
        add(f"{tag} e2e tasks/s vs SqliteHuey -k process", h.get("drain_per_s"),
            (huey_proc or {}).get("drain_per_s"), r, ">= 8x", None if r is None else r >= 8)
        r = _ratio(h.get("drain_per_s"), floor.get("drain_per_s"))
        add(f"{tag} e2e tasks/s vs floor (bench_floor.py)", h.get("drain_per_s"),
            floor.get("drain_per_s"), r, ">= 0.5", None if r is None else r >= 0.5)
        lat = h.get("latency", {})
        add(f"{tag} pickup p50 ms (warm, 20 ms pacing)", lat.get("p50_ms"), None,
            lat.get("p50_ms"), "<= 2 ms", lat.get("p50_ms", 99) <= 2)
        add(f"{tag} pickup p99 ms (warm)", lat.get("p99_ms"), None, lat.get("p99_ms"),
            "<= 10 ms", lat.get("p99_ms", 99) <= 10)
        cold = h.get("cold", {}).get("ms", [])
        if cold:
            add(f"{tag} cold pickup median / max ms (after 5 s idle, n={len(cold)};"
                " reference: one wake-up of an idle process)",
                statistics.median(cold), wake_ms, max(cold), "<= 2 / <= 10 ms",
                statistics.median(cold) <= 2 and max(cold) <= 10)
        idle = h.get("idle_cpu")
        if idle:
            add(f"{tag} idle CPU of {idle['workers']} workers over {idle['seconds']:g} s "
                f"(psutil s; schedstat {idle['workers_schedstat_ms']} ms)",
                idle["workers_cpu_times_s"], None, idle["workers_cpu_times_s"],
                "0.00 s (none measurable)", idle["workers_cpu_times_s"] == 0)
        if dur == "full":
            r = _ratio(h.get("enqueue_per_s"), (huey_proc or {}).get("enqueue_per_s"))
            add(f"{tag} single enqueue/s vs huey (both synchronous=FULL)",
                h.get("enqueue_per_s"), (huey_proc or {}).get("enqueue_per_s"), r, ">= 1.2x",
                None if r is None else r >= 1.2)
        else:
            r = _ratio(h.get("enqueue_per_s"), (huey_proc or {}).get("enqueue_per_s"))
            add(f"{tag} single enqueue/s vs huey (huey at FULL; not equal durability)",
                h.get("enqueue_per_s"), (huey_proc or {}).get("enqueue_per_s"), r,
                "(context)", None)
    b = hopper.get("batch_enqueue")
    if b:
        add(f"batch enqueue/s (enqueue_many, {b['chunk']} per call, {b['durability']})",
            b["per_s"], None, b["per_s"], ">= 100,000/s", b["per_s"] >= 100000, nd=0)
    c = hopper.get("claim_rate")
    if c:
        add(f"claim rate {c['big']['queued']:,} vs {c['small']['queued']:,} queued "
            "(claim+complete, 64/txn, 1 process)", c["big"]["per_s"], c["small"]["per_s"],
            c["ratio"], ">= 0.8", c["ratio"] >= 0.8)
    return rows


def _dead(run: dict | None, table: str) -> str:
    for t in (run or {}).get("tables_after_drain", []):
        if t["table"] == table:
            return f"{t['dead']:,} dead / {t['live']:,} live"
    return "-"


PG_TABLES = {"hopper": "tasks", "pgqueuer": "pgqueuer", "procrastinate": "procrastinate_jobs"}
PGHEAD = ["workers", "Hopper e2e/s", "PgQueuer e2e/s", "procrastinate e2e/s",
          "Hopper / faster peer", "target", "met", "dead tuples after drain (Hopper; PgQueuer;"
          " procrastinate)"]


def pg_rows(hopper_pg: dict | None, pgq: dict | None, proc: dict | None) -> list[list]:
    """One row per worker count: Hopper on PostgreSQL vs the faster of its two peers."""
    counts = sorted({r.get("workers") for b in (hopper_pg, pgq, proc) if b
                     for r in b.get("runs", []) if r.get("workers")})
    rows = []
    for w in counts:
        h, q, p = (_run(b, workers=w) for b in (hopper_pg, pgq, proc))
        rates = [r.get("drain_per_s") for r in (q, p) if r and r.get("drain_per_s")]
        ratio = _ratio((h or {}).get("drain_per_s"), max(rates) if rates else None)
        rows.append([w, fmt((h or {}).get("drain_per_s")), fmt((q or {}).get("drain_per_s")),
                     fmt((p or {}).get("drain_per_s")) + (" (capped)" if p and p.get("partial")
                                                          else ""),
                     fmt(ratio, 2) if ratio else "-", ">= 1.5x",
                     "-" if ratio is None else ("yes" if ratio >= 1.5 else "NO"),
                     "; ".join(_dead(r, PG_TABLES[n]) for n, r in
                               (("hopper", h), ("pgqueuer", q), ("procrastinate", p)))])
    return rows


def pg_targets(hopper_pg: dict | None, workers: int,
               wake_ms: float | None = None) -> list[list]:
    """Pickup latency on PostgreSQL at the harness's worker count."""
    h = _run(hopper_pg, workers=workers, durability="full")
    if not h or "latency" not in h:
        return []
    lat, cold = h["latency"], h.get("cold", {}).get("ms", [])
    out = [["[postgres] pickup p50 ms (warm)", fmt(lat["p50_ms"], 2), "-",
            fmt(lat["p50_ms"], 2), "<= 5 ms", "yes" if lat["p50_ms"] <= 5 else "NO"]]
    if cold:
        out.append(["[postgres] cold pickup median / max ms (after 5 s idle; reference:"
                    " one wake-up of an idle process)", fmt(statistics.median(cold), 2),
                    "-" if wake_ms is None else fmt(wake_ms, 2), fmt(max(cold), 2),
                    "<= 5 ms (median)",
                    "yes" if statistics.median(cold) <= 5 else "NO"])
    return out


def http_targets(http: dict | None) -> list[list]:
    """HTTP: single enqueue vs a bare Flask endpoint, its p99, batch tasks/s."""
    if not http:
        return []
    single, bare, batch = http["single"], http["bare"], http["batch_run"]
    ratio = http["ratio"]
    return [
        [f"[http] POST /api/tasks req/s vs bare Flask ({http['threads']} keep-alive clients)",
         fmt(single["per_s"]), fmt(bare["per_s"]), fmt(ratio, 2), ">= 0.6",
         "yes" if ratio >= 0.6 else "NO"],
        ["[http] POST /api/tasks p99 ms (worst round)", fmt(single["p99_ms"], 1), "-",
         fmt(single["p99_ms"], 1), "< 20 ms", "yes" if single["p99_ms"] < 20 else "NO"],
        [f"[http] POST /api/tasks/batch tasks/s ({http['batch']} per request)",
         fmt(batch["tasks_per_s"]), "-", fmt(batch["tasks_per_s"]), ">= 20,000/s",
         "yes" if batch["tasks_per_s"] >= 20000 else "NO"],
    ]


THEAD = ["target", "Hopper", "reference", "ratio / value", "target", "met"]


def main() -> int:
    """Print the table and the ratios; optionally write them as markdown."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", required=True)
    ap.add_argument("--hopper", required=True, nargs="+",
                    help="one or more bench_hopper.py JSON files (e.g. before and after the peers)")
    ap.add_argument("--hopper-pg", help="bench_hopper.py --engine postgres JSON")
    ap.add_argument("--pgqueuer", help="bench_pgpeers.py --queue pgqueuer JSON")
    ap.add_argument("--procrastinate", help="bench_pgpeers.py --queue procrastinate JSON")
    ap.add_argument("--http", help="bench_http.py --json output")
    ap.add_argument("--enqueue-ab", help="bench_enqueue_ab.py --json output")
    ap.add_argument("--wake", help="bench_wake.py --json output (the cold pickups' reference)")
    ap.add_argument("--md")
    ap.add_argument("--cmd", default="bash bench/run_all.sh")
    a = ap.parse_args()
    with open(a.peers) as f:
        peers = json.load(f)
    hoppers = []
    for path in a.hopper:
        with open(path) as f:
            hoppers.append(json.load(f))
    pg = {}
    for key in ("hopper_pg", "pgqueuer", "procrastinate"):
        found = _optional_json(getattr(a, key))
        if found is not None:
            pg[key] = found
    if "hopper_pg" in pg:
        pg["hopper_pg"]["bench"] = "hopper"
    meta = peers.get("meta") or {}
    qrows = queue_rows([*hoppers, peers.get("huey"), peers.get("rq"), peers.get("floor"),
                        pg.get("hopper_pg"), pg.get("pgqueuer"), pg.get("procrastinate")])
    wake = _optional_json(a.wake)
    wake_ms = wake["cold_median_ms"] if wake is not None else None
    trows = []
    for hopper in hoppers:
        label = f"{hopper['label']}, " if len(hoppers) > 1 and hopper.get("label") else ""
        trows += targets(peers, hopper, label, wake_ms)
    prows = pg_rows(pg.get("hopper_pg"), pg.get("pgqueuer"), pg.get("procrastinate"))
    trows += pg_targets(pg.get("hopper_pg"), int(meta.get("WORKERS") or 2), wake_ms)
    trows += http_targets(_optional_json(a.http))
    ab = _optional_json(a.enqueue_ab)
    if ab is not None:
        ratio = ab["ratio_median"]
        trows.append([f"single enqueue/s vs huey, interleaved bursts of {ab['burst']} "
                      f"(median of {len(ab['rounds'])} rounds; both synchronous=FULL)",
                      fmt(ab["hopper_median"]), fmt(ab["huey_median"]), fmt(ratio, 2), ">= 1.2x",
                      "yes" if ratio >= 1.2 else "NO"])
    head = qhead(meta)
    print(f"\nN={meta.get('N')} tasks, {meta.get('WORKERS')} workers, latency: "
          f"{meta.get('LAT_N')} tasks @ {meta.get('LAT_GAP_MS')} ms, cold: "
          f"{meta.get('COLD_N')} x after {meta.get('COLD_IDLE_S')} s idle; "
          f"{meta.get('date')}, {meta.get('cpu', '?').strip()}, {meta.get('nproc')} cores, "
          f"{meta.get('mem')} RAM, {meta.get('disk')}")
    print(text_table(head, qrows))
    print()
    print(text_table(THEAD, trows))
    if prows:
        print("\nPostgreSQL, end-to-end tasks/s by worker count (fresh database each):")
        print(text_table(PGHEAD, prows))
    if a.md:
        md = [f"Run: {meta.get('date')}; host: {meta.get('cpu', '?').strip()}, "
              f"{meta.get('nproc')} cores, {meta.get('mem')} RAM, kernel "
              f"{meta.get('kernel')}; disk {meta.get('disk')}; Python {meta.get('python')}, "
              f"SQLite {hoppers[0].get('sqlite')}; N = {meta.get('N')}, "
              f"{meta.get('WORKERS')} workers.", "",
              f"Command: `{a.cmd}`", "",
              md_table(head, qrows), "", md_table(THEAD, trows), ""]
        if prows:
            server = (pg.get("hopper_pg") or {}).get("server", {})
            md += ["PostgreSQL " + ", ".join(f"{k} {v}" for k, v in server.items())
                   + "; end-to-end tasks/s by worker count, a fresh database each:", "",
                   md_table(PGHEAD, prows), ""]
        extra = []
        for hopper in hoppers:
            c = hopper.get("claim_rate")
            if c:
                extra.append(f"- claim rate runs (tasks/s, {c['rounds']} alternating rounds of "
                             f"{c['per_round']}): {c['small']['queued']:,} queued "
                             f"{c['small']['runs']}; {c['big']['queued']:,} queued "
                             f"{c['big']['runs']}")
            for r in hopper.get("runs", []):
                tag = f"[{hopper.get('label')}, {r.get('durability')}]"
                if r.get("idle_cpu"):
                    extra.append(f"- idle CPU {tag}: {r['idle_cpu']}")
                if r.get("runs_once"):
                    extra.append(f"- task rows after the run {tag} "
                                 f"(status/attempts: count): {r['runs_once']}")
                extra.append(f"- {tag} enqueue call p50 in the latency phase: "
                             f"{r.get('enqueue_call_p50_ms')} ms; shutdown {r.get('shutdown')}, "
                             f"exit code {r.get('exit_code')}")
        md += extra + [""]
        with open(a.md, "w") as f:
            f.write("\n".join(md))
        print(f"\nwrote {a.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
