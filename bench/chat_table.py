#!/usr/bin/env python3
"""Prints the markdown table of bench/chat.sh from its raw JSON lines (one per loadgen run, with
the driver's `tag` and `db_rows`). Ratios are "how many times better Parley is": parley/node for
rates, node/parley for latencies. usage: chat_table.py RAW.jsonl"""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r.get("tag"), r.get("label")): r for r in rows}


def f(v, unit):
    if v is None or v < 0:
        return "-"
    if unit == "/s":
        return f"{v:,.0f} /s"
    if unit == "us":
        return f"{v / 1000:,.2f} ms" if v >= 1000 else f"{v:,.0f} µs"
    return f"{v:,.0f}{unit}"


print("| scenario | figure | parley | node | ratio (> 1: parley better) |")
print("|---|---|---:|---:|---:|")
for tag, desc in (("msg-closed", "messages, closed loop"), ("msg-paced", "messages, paced")):
    p, n = by.get((tag, "parley")), by.get((tag, "node"))
    if not p and not n:
        continue
    ref = p or n
    name = (f"{desc} ({ref.get('visitors')} visitors, {ref.get('agents')} agents, window "
            f"{ref.get('window')}" + (f", {ref.get('rate')}/s" if ref.get("rate") else "") + ")")
    for key, label, unit, higher in (
            ("acked_per_s", "acknowledged messages/s", "/s", True),
            ("ack_p50_us", "ack latency p50", "us", False),
            ("ack_p99_us", "ack latency p99", "us", False),
            ("ack_max_us", "ack latency max", "us", False),
            ("newmsg_p50_us", "send → agent newMessage p50", "us", False),
            ("newmsg_p99_us", "send → agent newMessage p99", "us", False),
            ("server_cpu_us_per_msg", "server CPU per message", "us", False),
            ("db_rows", "rows in store = acked (all phases)", "", None)):
        pv = p.get(key) if p else None
        nv = n.get(key) if n else None
        ratio = ""
        if higher is not None and pv and nv and pv > 0 and nv > 0:
            ratio = f"{(pv / nv) if higher else (nv / pv):.2f}×"
        if key == "db_rows":
            def chk(r):
                if not r:
                    return "-"
                ok = "=" if r.get("db_rows") == r.get("acked_total") else "≠"
                return f"{r.get('db_rows'):,} {ok} {r.get('acked_total'):,}"
            print(f"| {name} | {label} | {chk(p)} | {chk(n)} | |")
            continue
        print(f"| {name} | {label} | {f(pv, unit)} | {f(nv, unit)} | {ratio} |")

r = by.get(("api-replies", "parley"))
if r:
    name = f"agent replies ({r['visitors']} conversations, {r['http_conns']} keep-alive connections)"
    print(f"| {name} | replies/s | {f(r['replies_per_s'], '/s')} | | |")
    for k, l in (("post_p50_us", "POST latency p50"), ("post_p99_us", "POST latency p99"),
                 ("replied_p50_us", "POST → agentReplied p50"),
                 ("replied_p99_us", "POST → agentReplied p99"),
                 ("replied_max_us", "POST → agentReplied max")):
        print(f"| {name} | {l} | {f(r[k], 'us')} | | |")
r = by.get(("api-inbox", "parley"))
if r:
    name = f"inbox listing ({r['total']:,} conversations, {r['requests']} requests each)"
    for k, l in (("page1_p50_us", "page 1 (limit 20) p50"), ("page1_p99_us", "page 1 p99"),
                 ("deep_p50_us", f"page {r['deep_page']} (last) p50"),
                 ("deep_p99_us", f"page {r['deep_page']} p99")):
        print(f"| {name} | {l} | {f(r[k], 'us')} | | |")
for lg in ("0", "20"):
    r = by.get((f"api-logins-{lg}", "parley"))
    if r:
        name = f"visitor messages at {r['rate']}/s, {lg} logins/s"
        print(f"| {name} | ack p50 | {f(r['ack_p50_us'], 'us')} | | |")
        print(f"| {name} | ack p99 | {f(r['ack_p99_us'], 'us')} | | |")
        print(f"| {name} | ack max | {f(r['ack_max_us'], 'us')} | | |")
        if lg != "0":
            print(f"| {name} | logins done (p50 / p99) | {r['logins']} "
                  f"({f(r['login_p50_us'], 'us')} / {f(r['login_p99_us'], 'us')}) | | |")
