"""What the lab delivered, per stream and pool: counts, paths, authentication, latency, queues.

Reads the injector's sent.jsonl, every provider verdict (.json beside each .eml) and, while the lab
runs, each Postfix instance's queue (postqueue -j). Sinks: a text table and JSON.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mailinfra.lab.layout import LabLayout


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_arrivals(mail_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(mail_dir.glob("*/*.json"))]


def build_report(layout: LabLayout, pool_addresses: dict[str, list[str]],
                 queued: Iterable[dict[str, Any]] = (), now: float | None = None) -> dict[str, Any]:
    """Per (stream, pool) and in total. `queued`: postqueue -j entries, each with an added "pool"."""
    now = now or time.time()
    sent = read_jsonl(layout.sent_log)
    arrivals = read_arrivals(layout.mail_dir)
    route_addresses = set(layout.route_addresses())
    by_id = {s["lab_id"]: s for s in sent}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in sent:
        groups.setdefault((entry["stream"], entry["pool"]), {"sent": [], "arrivals": [], "queued": []})
        groups[(entry["stream"], entry["pool"])]["sent"].append(entry)
    # Placement probes are the hosts' own mail (mailinfra.placement), not the app's: counted apart, never as
    # lost, duplicated or foreign mail of a pool.
    probes = [a for a in arrivals if a.get("probe")]
    arrivals = [a for a in arrivals if not a.get("probe")]
    for arrival in arrivals:
        origin = by_id.get(arrival.get("lab_id", ""))
        key = (origin["stream"], origin["pool"]) if origin else (arrival.get("stream", "?"), "?")
        groups.setdefault(key, {"sent": [], "arrivals": [], "queued": []})["arrivals"].append(arrival)
    for item in queued:
        pool = item.get("pool", "?")
        key = next((k for k in groups if k[1] == pool), ("?", pool))
        groups.setdefault(key, {"sent": [], "arrivals": [], "queued": []})["queued"].append(item)
    rows = [_summarize(stream, pool, g, by_id=by_id, own=pool_addresses.get(pool, []),
                       route_addresses=route_addresses, now=now)
            for (stream, pool), g in sorted(groups.items())]
    totals = {
        "sent": sum(r["sent"] for r in rows), "delivered": sum(r["delivered"] for r in rows),
        "duplicates": sum(r["duplicates"] for r in rows), "queued": sum(r["queued"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "all_authenticated": all(r["auth_ok"] for r in rows if r["delivered"]),
        "all_from_own_pool": all(not r["foreign_ips"] for r in rows),
        "probes": len(probes),
        "probes_in_junk": sum(1 for a in probes if a.get("folder") == "Junk"),
    }
    return {"stack": layout.stack, "generated_at": now, "rows": rows, "totals": totals}


def _summarize(stream: str, pool: str, group: dict[str, Any], *, by_id: dict[str, dict[str, Any]],
               own: list[str], route_addresses: set[str], now: float) -> dict[str, Any]:
    accepted = [s for s in group["sent"] if s.get("accepted")]
    arrivals = group["arrivals"]
    ids = Counter(a.get("lab_id") for a in arrivals)
    latencies = sorted(a["arrival"] - by_id[i]["injected_at"] for a in arrivals
                       if (i := a.get("lab_id")) in by_id)
    # postqueue -j carries no headers, so a queued message is counted, not identified; DSNs
    # (null sender) are the MTA's own mail, not the app's.
    app_queued = [q for q in group["queued"] if q.get("sender")]
    lost = max(0, len(accepted) - len([i for i in ids if i in by_id]) - len(app_queued))
    ips = sorted({a["source_ip"] for a in arrivals})
    primary = [a for a in arrivals if a.get("via") == "primary"]
    ages = [now - q["arrival_time"] for q in group["queued"] if "arrival_time" in q]
    auth_ok = all(a["spf"] == "pass" or a["via"] != "primary" for a in arrivals) and all(
        a["dkim_pass"] and a["dmarc"] == "pass" for a in arrivals)
    return {
        "stream": stream, "pool": pool,
        "sent": len(accepted), "refused_at_injection": len(group["sent"]) - len(accepted),
        "delivered": len(ids), "duplicates": sum(n - 1 for n in ids.values()),
        "via": dict(Counter(a.get("via", "?") for a in arrivals)),
        "source_ips": ips,
        "foreign_ips": sorted({a["source_ip"] for a in primary if a["source_ip"] not in own}
                              | {a["source_ip"] for a in arrivals
                                 if a["source_ip"] not in own and a["source_ip"] not in route_addresses}),
        "spf": dict(Counter(a["spf"] for a in arrivals)),
        "dkim": dict(Counter("pass" if a["dkim_pass"] else "fail" for a in arrivals)),
        "dmarc": dict(Counter(a["dmarc"] for a in arrivals)),
        "helo_matches_ptr": sum(1 for a in primary if a["helo_matches_ptr"]), "primary": len(primary),
        "latency_seconds": _stats(latencies),
        "queued": len(group["queued"]), "oldest_queued_seconds": round(max(ages), 1) if ages else 0.0,
        "lost": lost, "auth_ok": auth_ok,
    }


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"median": 0.0, "p99": 0.0, "max": 0.0}
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    return {"median": round(statistics.median(values), 3), "p99": round(p99, 3), "max": round(values[-1], 3)}


def render_table(report: dict[str, Any]) -> str:
    header = (f"{'stream/pool':<26} {'sent':>4} {'dlvd':>4} {'dup':>3} {'queue':>5} {'age s':>5}  "
              f"{'via':<24} {'spf/dkim/dmarc pass':<19} {'helo=ptr':>8}  {'latency med/p99/max s':<22} source IPs")
    lines = [f"lab report for stack {report['stack']}", header, "-" * len(header)]
    for r in report["rows"]:
        n = r["delivered"] or 0
        auth = f"{r['spf'].get('pass', 0)}/{r['dkim'].get('pass', 0)}/{r['dmarc'].get('pass', 0)} of {n}"
        via = ", ".join(f"{k}:{v}" for k, v in sorted(r["via"].items())) or "-"
        lat = r["latency_seconds"]
        lines.append(
            f"{r['stream'] + '/' + r['pool']:<26} {r['sent']:>4} {r['delivered']:>4} {r['duplicates']:>3} "
            f"{r['queued']:>5} {r['oldest_queued_seconds']:>5.0f}  {via:<24} {auth:<19} "
            f"{str(r['helo_matches_ptr']) + '/' + str(r['primary']):>8}  "
            f"{lat['median']:.2f}/{lat['p99']:.2f}/{lat['max']:.2f}{'':<8} {' '.join(r['source_ips'])}"
            + (f"  FOREIGN {' '.join(r['foreign_ips'])}" if r["foreign_ips"] else ""))
    t = report["totals"]
    lines.append(f"total: sent {t['sent']}, delivered {t['delivered']}, duplicates {t['duplicates']}, "
                 f"queued {t['queued']}, lost {t['lost']}; every delivery authenticated: "
                 f"{'yes' if t['all_authenticated'] else 'NO'}; only own pool IPs: "
                 f"{'yes' if t['all_from_own_pool'] else 'NO'}")
    suppression = report.get("suppression") or {}
    if suppression:
        by_source = ", ".join(f"{k} {v}" for k, v in suppression.get("by_source", {}).items()) or "none"
        pools = ", ".join(f"{k} {v}" for k, v in suppression.get("pool_counts_24h", {}).items()) or "none"
        lines.append(f"suppression: {suppression.get('entries', 0)} entries ({by_source}); "
                     f"counted per pool, suppressing nobody: {pools}")
    return "\n".join(lines) + "\n"
