#!/usr/bin/env python3
"""Prints the markdown tables of bench/scale.sh from its raw JSON lines (one per loadgen
`messages` run, with the driver's `procs`, `tag` and `db_rows`). Ratios are "how many times
better Parley is": parley/node for rates, node/parley for latencies and costs. A second table
gives each server's scale-out factor (2 processes / 1 process). usage: scale_table.py RAW.jsonl"""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r.get("procs"), r.get("tag"), r.get("label")): r for r in rows}


def f(v, unit):
    if v is None or v < 0:
        return "-"
    if unit == "/s":
        return f"{v:,.0f} /s"
    if unit == "us":
        return f"{v / 1000:,.2f} ms" if v >= 1000 else f"{v:,.0f} µs"
    return f"{v:,.0f}{unit}"


def good(r):
    return r is not None and "error" not in r


FIGURES = (
    ("acked_per_s", "acknowledged messages/s", "/s", True, False),
    ("ack_p50_us", "ack latency p50", "us", False, False),
    ("ack_p99_us", "ack latency p99", "us", False, False),
    ("newmsg_p50_us", "send → agent newMessage p50 (all)", "us", False, False),
    ("newmsg_p99_us", "send → agent newMessage p99 (all)", "us", False, False),
    ("newmsg_cross_p50_us", "cross-node fan-out p50 (sender on the other node)", "us", False, True),
    ("newmsg_cross_p99_us", "cross-node fan-out p99", "us", False, True),
    ("newmsg_local_p50_us", "same-node newMessage p50", "us", False, True),
    ("server_cpu_us_per_msg", "server CPU per message (all its processes)", "us", False, False),
    ("backend_cpu_us_per_msg", "PostgreSQL + Redis CPU per message", "us", False, False),
    ("server_cpu_pct", "server CPU (% of one core)", " %", None, False),
)

print("| scenario | figure | parley | node | ratio (> 1: parley better) |")
print("|---|---|---:|---:|---:|")
for procs in (1, 2):
    for tag, desc in (("closed", "closed loop"), ("paced", "paced")):
        p, n = by.get((procs, tag, "parley")), by.get((procs, tag, "node"))
        if not p and not n:
            continue
        ref = p if good(p) else n
        where = ("1 process" if procs == 1 else
                 "2 nodes + 1 worker (node: 2 processes)")
        if good(ref):
            name = (f"{where}: messages {desc} ({ref.get('visitors')} visitors × window "
                    f"{ref.get('window')}, {ref.get('agents')} agents"
                    + (f", {ref.get('rate'):,}/s" if ref.get("rate") else "")
                    + f", {ref.get('seconds', 0):.0f} s)")
        else:
            name = f"{where}: messages {desc}"
        for r, who in ((p, "parley"), (n, "node")):
            if r is not None and not good(r):
                print(f"| {name} | **{who} failed: {r.get('error')}** | | | |")
        for key, label, unit, higher, cross_only in FIGURES:
            if cross_only and procs == 1:
                continue
            pv = p.get(key) if good(p) else None
            nv = n.get(key) if good(n) else None
            ratio = ""
            if higher is not None and pv and nv and pv > 0 and nv > 0:
                ratio = f"{(pv / nv) if higher else (nv / pv):.2f}×"
            print(f"| {name} | {label} | {f(pv, unit)} | {f(nv, unit)} | {ratio} |")

        def per(r, key):
            if not good(r) or not r.get("acked_total"):
                return "-"
            return f"{r.get(key, 0) / r['acked_total']:.2f}"
        print(f"| {name} | PostgreSQL commits per message | {per(p, 'pg_commits')} | "
              f"{per(n, 'pg_commits')} | |")
        print(f"| {name} | Redis commands per message | {per(p, 'redis_commands')} | "
              f"{per(n, 'redis_commands')} | |")
        def split(r):
            if not good(r) or not r.get("backend_cpu_pct_each"):
                return "-"
            return " / ".join(f"{float(x):.0f} %" for x in r["backend_cpu_pct_each"].split(","))
        print(f"| {name} | PostgreSQL / Redis CPU (% of one core) | {split(p)} | {split(n)} | |")
        print(f"| {name} | other processes' CPU (% of one core) | "
              f"{f(p.get('other_cpu_pct') if good(p) else None, ' %')} | "
              f"{f(n.get('other_cpu_pct') if good(n) else None, ' %')} | |")

        def chk(r):
            if not good(r):
                return "-"
            ok = "=" if r.get("db_rows") == r.get("acked_total") else "≠"
            return f"{r.get('db_rows'):,} {ok} {r.get('acked_total'):,}"
        print(f"| {name} | rows in PostgreSQL = acked (all phases) | {chk(p)} | {chk(n)} | |")

print()
print("| server | scenario | acked/s, 1 process | acked/s, 2 nodes (+ worker) | scale-out factor |")
print("|---|---|---:|---:|---:|")
for who in ("parley", "node"):
    for tag in ("closed", "paced"):
        one, two = by.get((1, tag, who)), by.get((2, tag, who))
        if not good(one) or not good(two):
            continue
        a, b = one.get("acked_per_s", 0), two.get("acked_per_s", 0)
        print(f"| {who} | {tag} | {f(a, '/s')} | {f(b, '/s')} | "
              f"{(b / a if a > 0 else 0):.2f}× |")
