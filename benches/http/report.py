#!/usr/bin/env python3
"""Turns the raw results of benches/http/run.sh into markdown.

    report.py RESULTS_DIR                  # the run's markdown block, to stdout
    report.py RESULTS_DIR --append FILE    # adds it to FILE under SECTION (created if missing)

RESULTS_DIR holds results.txt (one `key=value ...` line per wrk run), checks.txt (round, server,
ok|FAIL, message; tab-separated), meta.txt (`key=value` lines), logs/ and perf/.
"""
import argparse
import datetime as dt
import os
import re
import statistics
import sys

SECTION = "## HTTP: linkgate vs nginx (issue: middleware)"

INTRO = """\
`benches/http/run.sh` serves the same generated 100 000-link nginx map (`benches/http/gen_map.py`:
keys `/go/k<N>-<8 hex>`, targets ~55 B `https://store.example.com/p/<N>?ref=aff_<N%100>&utm=x`)
from five servers in turn, alternating A B C D E A B C D E so that noise shows as spread:

- **nginx**: `map $uri $affiliate_url { ... }` + `location / { return 302 $affiliate_url; }`,
  `worker_processes 1`, `keepalive_requests 100000`, `absolute_redirect off`,
  `access_log <tmp>/access.log combined buffer=64k` (nginx's own click log);
- **nginx-nolog**: the same with `access_log off` (the reference for what a click log costs);
- **hyper**: `target/release/examples/hyper --threads 1 --links <map> --clicks <tmp>/clicks.jsonl`;
- **hyper-noclicks**: the same with `--no-clicks` (serve only, record nothing: the reference for
  what linkgate's click logging costs);
- **axum**: `target/release/examples/axum`, same flags.

wrk (1 thread, 50 connections, keep-alive) asks for a random key per request
(`benches/http/random_keys.lua`). The server is pinned to CPU0 and wrk to CPU1 with `taskset`.
**Server CPU per request** is the server's utime and stime (`/proc/PID/stat` fields 14 and 15;
nginx: master + worker) over the wrk run, divided by the requests wrk counted. On a server that
keeps its one core busy, throughput is the inverse of this figure, and this figure is much less
sensitive than req/s to other work on the machine. Each ratio compares two servers measured in
the same round; the range is min–max over rounds. After every linkgate run the script stops the
server (SIGTERM) and checks that its click file has exactly `recorded` lines and that `recorded`
matches the requests wrk counted.
"""


def parse_kv(line):
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def num(d, k, default=0.0):
    try:
        return float(d.get(k, default))
    except ValueError:
        return default


def load(dirpath):
    results = []
    with open(os.path.join(dirpath, "results.txt")) as f:
        for line in f:
            if line.strip():
                results.append(parse_kv(line))
    checks = []
    p = os.path.join(dirpath, "checks.txt")
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 3)
                if len(parts) == 4:
                    checks.append(parts)
    meta = {}
    with open(os.path.join(dirpath, "meta.txt")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return results, checks, meta


def derive(r, clk):
    req = num(r, "requests")
    dur = num(r, "duration_us") / 1e6
    d = dict(r)
    d["rps"] = req / dur if dur else 0.0
    if "utime" in r and req:
        d["user_us"] = num(r, "utime") / clk / req * 1e6
        d["sys_us"] = num(r, "stime") / clk / req * 1e6
        d["cpu_us"] = d["user_us"] + d["sys_us"]
        d["busy"] = (num(r, "utime") + num(r, "stime")) / clk / dur if dur else 0.0
    if "drain_utime" in r and req:
        d["drain_us"] = (num(r, "drain_utime") + num(r, "drain_stime")) / clk / req * 1e6
        d["drain_user_us"] = num(r, "drain_utime") / clk / req * 1e6
    d["sock_err"] = sum(num(r, k) for k in ("connect", "read", "write", "timeout"))
    d["status_err"] = num(r, "status")
    d["bytes_req"] = num(r, "bytes") / req if req else 0.0
    if "cpu_total" in r and num(r, "cpu_total"):
        # Share of the server's CPU that other processes used during the run.
        d["others"] = max(0.0, (num(r, "cpu_busy") - num(r, "utime") - num(r, "stime")) / num(r, "cpu_total"))
    if "wrk_cpu_s" in r and dur:
        d["wrk_busy"] = num(r, "wrk_cpu_s") / dur
    return d


def fmt(x, nd=0):
    if x is None:
        return "–"
    if nd == 0:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{nd}f}"


def spread(vals, nd=0, unit=""):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f"{fmt(med, nd)}{unit}"
    return f"{fmt(med, nd)}{unit} ({fmt(min(vals), nd)}–{fmt(max(vals), nd)})"


def ratio_spread(vals, nd=2):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.{nd}f}×"
    return f"{statistics.median(vals):.{nd}f}× ({min(vals):.{nd}f}–{max(vals):.{nd}f})"


def verdict(vals, ok):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "not measured"
    n = sum(1 for v in vals if ok(v))
    if n == len(vals):
        return "**met**"
    if n == 0:
        return "**not met**"
    return f"**mixed** ({n} of {len(vals)} rounds)"


def parse_ts(s):
    # tracing-subscriber's default: 2026-11-29T04:45:56.929563Z
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", s)
    if not m:
        return None
    t = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    return t.timestamp() + (float(m.group(2)) if m.group(2) else 0.0)


def reload_latencies(dirpath):
    """Seconds from each map swap to the next `reloaded` log line (a swap that lands while a
    reload runs is picked up by the next one)."""
    swaps_p = os.path.join(dirpath, "logs", "swaps.txt")
    log_p = os.path.join(dirpath, "logs", "hyper-reload.log")
    if not (os.path.exists(swaps_p) and os.path.exists(log_p)):
        return []
    with open(swaps_p) as f:
        swaps = [float(l.split()[0]) for l in f if l.strip()]
    done = []
    with open(log_p, errors="replace") as f:
        for l in f:
            if "reloaded " in l:
                t = parse_ts(l)
                if t is not None:
                    done.append(t)
    lat = []
    for s in swaps:
        after = [t for t in done if t >= s]
        if after:
            lat.append(after[0] - s)
    return lat


def perf_lines(dirpath, name):
    p = os.path.join(dirpath, "perf", name)
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [l.rstrip() for l in f if l.strip()]


CLICK_SYMBOLS = re.compile(
    r"click|Click|recorder|Recorder|record|crossbeam|drain|Drain|jsonl|JsonLines|write_json|"
    r"json_str|rfc3339|wyrand|itoa|anonymi|IpPolicy|client_ip|Sharded|bounded"
)


def perf_click_share(dirpath):
    """(drain thread share, worker-thread share in click-named symbols) from perf, in %."""
    drain = None
    for l in perf_lines(dirpath, "threads.txt"):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)", l)
        if m and m.group(2).startswith("linkgate-drain"):
            drain = float(m.group(1))
    path = 0.0
    seen = False
    for l in perf_lines(dirpath, "comm_symbol.txt"):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", l)
        if not m:
            continue
        seen = True
        if m.group(2).startswith("linkgate-drain"):
            continue
        if CLICK_SYMBOLS.search(m.group(3)):
            path += float(m.group(1))
    return drain, (path if seen else None)


def build(dirpath):
    results, checks, meta = load(dirpath)
    clk = float(meta.get("clk_tck", 100))
    main = [derive(r, clk) for r in results if r.get("kind") == "main"]
    reload_ = [derive(r, clk) for r in results if r.get("kind") == "reload"]
    servers = []
    for r in main:
        if r["server"] not in servers:
            servers.append(r["server"])
    rounds = sorted({int(r["round"]) for r in main})
    by = {(int(r["round"]), r["server"]): r for r in main}

    def per_round(server, key, base="nginx", inv=False):
        out = []
        for rd in rounds:
            a, b = by.get((rd, server)), by.get((rd, base))
            if a and b and a.get(key) and b.get(key):
                out.append(b[key] / a[key] if inv else a[key] / b[key])
        return out

    o = []
    o.append(f"### Run {meta.get('date', '?')}")
    o.append("")
    o.append(f"- Command: `{meta.get('command', 'benches/http/run.sh')}` (git {meta.get('git', '?')}).")
    o.append(f"- Machine: {meta.get('machine', '?')}. nginx {meta.get('nginx', '?')}, wrk {meta.get('wrk', '?')} "
             f"`-t1 -c{meta.get('connections')} -d{meta.get('duration')}` after a {meta.get('warmup')} warm-up; "
             f"{fmt(float(meta.get('links', 0)))} links; {meta.get('rounds')} rounds.")
    o.append(f"- Other load: {meta.get('wait', '')}; load average at start {meta.get('load_start', '?')}; "
             f"at the end {meta.get('load_end', '?')}.")
    o.append("")

    # Per-server figures.
    o.append("Median over rounds (min–max):")
    o.append("")
    o.append("| server | req/s | p50 ms | p99 ms | user µs/req | sys µs/req | CPU µs/req | server's share of CPU0 | others' share of CPU0 | wrk's share of CPU1 | socket errors | non-2xx/3xx | bytes/response |")
    o.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in servers:
        rs = [r for r in main if r["server"] == s]
        o.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            s,
            spread([r["rps"] for r in rs]),
            spread([num(r, "p50_us") / 1000 for r in rs], 2),
            spread([num(r, "p99_us") / 1000 for r in rs], 2),
            spread([r.get("user_us") for r in rs], 2),
            spread([r.get("sys_us") for r in rs], 2),
            spread([r.get("cpu_us") for r in rs], 2),
            spread([r.get("busy", 0) * 100 for r in rs], 0, " %"),
            spread([r["others"] * 100 if "others" in r else None for r in rs], 0, " %"),
            spread([r["wrk_busy"] * 100 if "wrk_busy" in r else None for r in rs], 0, " %"),
            fmt(sum(r["sock_err"] for r in rs)),
            fmt(sum(r["status_err"] for r in rs)),
            fmt(statistics.median([r["bytes_req"] for r in rs])),
        ))
    o.append("")
    o.append("A server's share of CPU0 below ~95 % means it was not saturated: other processes took CPU0, or wrk "
             "(near 100 % of CPU1) was the limit. req/s and latency then measure the machine; CPU per request "
             "stays comparable.")
    o.append("")
    o.append("Ratios against nginx (access log on) in the same round, median (min–max):")
    o.append("")
    o.append("| server | req/s | CPU/req | user/req | sys/req | p50 | p99 |")
    o.append("|---|---|---|---|---|---|---|")
    for s in servers:
        if s == "nginx":
            continue
        o.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            s,
            ratio_spread(per_round(s, "rps")),
            ratio_spread(per_round(s, "cpu_us")),
            ratio_spread(per_round(s, "user_us")),
            ratio_spread(per_round(s, "sys_us")),
            ratio_spread([by[(rd, s)] and num(by[(rd, s)], "p50_us") / num(by[(rd, "nginx")], "p50_us")
                          for rd in rounds if (rd, s) in by and (rd, "nginx") in by and num(by[(rd, "nginx")], "p50_us")]),
            ratio_spread([num(by[(rd, s)], "p99_us") / num(by[(rd, "nginx")], "p99_us")
                          for rd in rounds if (rd, s) in by and (rd, "nginx") in by and num(by[(rd, "nginx")], "p99_us")]),
        ))
    o.append("")

    # Goals.
    def p99_ratio(s, base="nginx"):
        return [num(by[(rd, s)], "p99_us") / num(by[(rd, base)], "p99_us")
                for rd in rounds if (rd, s) in by and (rd, base) in by and num(by[(rd, base)], "p99_us")]

    cpu_r = per_round("hyper", "cpu_us")
    user_r = per_round("hyper", "user_us")
    p99_r = p99_ratio("hyper")
    axum_rps = per_round("axum", "rps", base="hyper")
    axum_cpu = per_round("axum", "cpu_us", base="hyper")
    drain_share = [by[(rd, "hyper")]["drain_us"] / by[(rd, "hyper")]["cpu_us"]
                   for rd in rounds if (rd, "hyper") in by and by[(rd, "hyper")].get("drain_us") is not None
                   and by[(rd, "hyper")].get("cpu_us")]
    nginx_log_tput = [1 - x for x in per_round("nginx", "rps", base="nginx-nolog")]
    nginx_log_cpu = [x - 1 for x in per_round("nginx", "cpu_us", base="nginx-nolog")]
    perf_drain, perf_path = perf_click_share(dirpath)

    rl = {r.get("phase"): r for r in reload_ if r.get("server") == "hyper"}
    dip = None
    rl_err = None
    if "base" in rl and "reload" in rl and rl["base"]["rps"]:
        dip = 1 - rl["reload"]["rps"] / rl["base"]["rps"]
        rl_err = rl["reload"]["sock_err"] + rl["reload"]["status_err"]

    o.append("Goals (each round must meet a goal for **met**):")
    o.append("")
    o.append("| goal | measured | verdict |")
    o.append("|---|---|---|")
    o.append(f"| linkgate-hyper server CPU per request ≤ 0.9× nginx's | {ratio_spread(cpu_r)} | {verdict(cpu_r, lambda v: v <= 0.9)} |")
    o.append(f"| … of which user time ≤ 0.7× nginx's | {ratio_spread(user_r)} | {verdict(user_r, lambda v: v <= 0.7)} |")
    o.append(f"| p99 ≤ nginx's | {ratio_spread(p99_r)} | {verdict(p99_r, lambda v: v <= 1.0)} |")
    # Measured directly: hyper against the same server with --no-clicks, same round.
    log_tput = [1 - x for x in per_round("hyper", "rps", base="hyper-noclicks")]
    log_cpu = [x - 1 for x in per_round("hyper", "cpu_us", base="hyper-noclicks")]
    drain_txt = "drain thread " + (spread([x * 100 for x in drain_share], 1, " %") if drain_share else "–") + " of server CPU"
    if log_cpu:
        click_txt = (f"CPU per request +{spread([x * 100 for x in log_cpu], 1, ' %')}, throughput "
                     f"−{spread([x * 100 for x in log_tput], 1, ' %')} against `--no-clicks` (same round); {drain_txt}")
        # On a saturated core throughput is 1 / CPU per request; CPU per request is the steadier of the two.
        click_verdict = verdict(log_cpu, lambda v: v <= 0.02) + " (on CPU per request)"
    else:
        click_txt = drain_txt
        click_verdict = verdict(drain_share, lambda v: v <= 0.02) + " (estimate: no `--no-clicks` run)"
    if perf_path is not None:
        click_txt += f"; perf: drain {perf_drain if perf_drain is not None else 0:.1f} % + request-path click symbols {perf_path:.1f} % of samples"
    o.append(f"| click logging ≤ 2 % of throughput | {click_txt} | {click_verdict} |")
    o.append(f"| axum within 10 % of hyper (req/s) | {ratio_spread(axum_rps)} of hyper (CPU/req {ratio_spread(axum_cpu)}) | {verdict(axum_rps, lambda v: abs(v - 1) <= 0.10)} |")
    if dip is not None:
        o.append(f"| reload dip < 5 % with 0 errors | dip {dip * 100:.1f} %, {fmt(rl_err)} errors | "
                 f"{'**met**' if dip < 0.05 and rl_err == 0 else '**not met**'} (1 run) |")
    o.append("")

    # Click logging.
    o.append("Click logging:")
    o.append("")
    if nginx_log_tput:
        o.append(f"- nginx reference, `access_log ... buffer=64k` against `access_log off`: throughput "
                 f"−{spread([x * 100 for x in nginx_log_tput], 1, ' %')}, CPU per request "
                 f"+{spread([x * 100 for x in nginx_log_cpu], 1, ' %')} (negative = noise larger than the cost).")
    if drain_share:
        hy = [by[(rd, "hyper")] for rd in rounds if (rd, "hyper") in by]
        o.append(f"- linkgate-hyper: the `linkgate-drain` thread (JSON + `write`) used "
                 f"{spread([r.get('drain_us') for r in hy], 3)} µs/req = {spread([x * 100 for x in drain_share], 1, ' %')} of the server's CPU; "
                 f"the request-path part (building the `Click`, `try_send`, counters) runs on the worker thread.")
    if log_cpu:
        o.append(f"- linkgate-hyper against itself with `--no-clicks` (`GateBuilder::record_clicks(false)`: same "
                 f"routing, no click built or sent, the drain idle), same round: CPU per request "
                 f"+{spread([x * 100 for x in log_cpu], 1, ' %')}, throughput −{spread([x * 100 for x in log_tput], 1, ' %')} "
                 f"(negative = noise larger than the cost).")
    ck = [c for c in checks]
    bad = [c for c in ck if c[2] != "ok"]
    lg = [c for c in ck if c[1] in ("hyper", "hyper-noclicks", "axum")]
    if lg:
        o.append(f"- Click checks (file lines = `recorded` = `delivered`, 0 dropped, all matched, `recorded` − requests counted "
                 f"by wrk within the requests in flight when wrk stopped; with `--no-clicks`: 0 recorded and no click file): "
                 f"{len(lg) - len([c for c in lg if c[2] != 'ok'])} of {len(lg)} runs ok.")
    if bad:
        for c in bad:
            o.append(f"  - FAILED ({c[1]}, round {c[0]}): {c[3]}")
    o.append("")

    # Reload.
    o.append(f"Reload under load ({fmt(float(meta.get('reload_links', 0)))} links, {meta.get('reload_duration', '')} per phase, "
             "1 run each; base = the same server without reloads just before):")
    o.append("")
    o.append("| server | phase | req/s | p99 ms | max ms | socket errors | non-2xx/3xx | notes |")
    o.append("|---|---|---|---|---|---|---|---|")
    lat = reload_latencies(dirpath)
    for r in reload_:
        if r.get("phase") == "skipped":
            o.append(f"| {r['server']} | skipped | | | | | | NGINX_RELOAD=0 |")
            continue
        notes = ""
        if r.get("phase") == "base" and r.get("startup_s"):
            notes = f"start-up with the map {r['startup_s']} s"
            if r.get("user_us") is not None:
                notes += f"; CPU {r['cpu_us']:.2f} µs/req"
        if r.get("phase") == "reload" and r["server"] == "hyper":
            rel = int(num(r, "reloads"))
            cpu_rel = (num(r, "reload_utime") + num(r, "reload_stime")) / clk
            notes = (f"{int(num(r, 'swaps'))} map swaps ({r.get('mode')}, every {r.get('every')} s), reloads done: {rel} (swaps made during a reload coalesce), "
                     f"{int(num(r, 'reload_failed'))} failed; reload thread {cpu_rel / rel if rel else 0:.2f} s CPU per reload; ")
            if lat:
                notes += f"swap → served {statistics.median(lat):.2f} s median, {max(lat):.2f} s max; "
            if num(r, "idle_reload_s", -1) >= 0:
                notes += (f"one reload on the idle server: {num(r, 'idle_reload_s'):.2f} s from swap to served, "
                          f"{num(r, 'idle_reload_ticks') / clk:.2f} s CPU; ")
            notes += f"RSS {num(r, 'rss_kb') / 1024:.0f} MiB (peak {num(r, 'hwm_kb') / 1024:.0f} MiB)"
            if r.get("user_us") is not None:
                notes += f"; CPU {r['cpu_us']:.2f} µs/req"
        if r.get("phase") == "reload" and r["server"] == "nginx":
            sw = num(r, "reload_s", -1)
            when = ("no new worker within 120 s" if sw < 0 else
                    f"new worker {sw:.1f} s after the SIGHUP" + ("" if r.get("switched_in_window") == "1" else ", after the wrk run ended"))
            notes = (f"one SIGHUP with a changed map, 1 s into the load; {when}; the master spent "
                     f"{(num(r, 'master_utime') + num(r, 'master_stime')) / clk:.1f} s CPU parsing it, on the server's CPU")
        o.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["server"], r.get("phase"), fmt(r["rps"]), fmt(num(r, "p99_us") / 1000, 2),
            fmt(num(r, "max_us") / 1000, 1), fmt(r["sock_err"]), fmt(r["status_err"]), notes))
    nb = {r.get("phase"): r for r in reload_ if r.get("server") == "nginx"}
    if "base" in nb and "reload" in nb and nb["base"]["rps"]:
        o.append("")
        o.append(f"nginx with a reload: throughput {(1 - nb['reload']['rps'] / nb['base']['rps']) * 100:.1f} % below its baseline, "
                 f"{fmt(nb['reload']['sock_err'] + nb['reload']['status_err'])} errors.")
    if dip is not None:
        o.append(f"linkgate-hyper with reloads: throughput {dip * 100:.1f} % below its baseline, {fmt(rl_err)} errors.")
    o.append("")

    # perf.
    top = perf_lines(dirpath, "top.txt")
    if top:
        o.append(f"Profile of linkgate-hyper under the same load ({meta.get('perf', 'perf')}); "
                 "self time, top user-space symbols (`perf report --no-children --sort symbol`):")
        o.append("")
        o.append("```")
        user = [l for l in top if "[.]" in l][:20]
        o.extend(user)
        o.append("```")
        th = perf_lines(dirpath, "threads.txt")
        dso = perf_lines(dirpath, "dso.txt")
        if th:
            o.append("")
            o.append("By thread: " + "; ".join(re.sub(r"\s+", " ", l.strip()) for l in th[:6]) + ".")
        if dso:
            o.append("By object: " + "; ".join(re.sub(r"\s+", " ", l.strip()) for l in dso[:6]) + ".")
    else:
        o.append(f"perf: {meta.get('perf', 'not run')}.")
    o.append("")
    return "\n".join(o) + "\n", top


def append(path, block):
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    else:
        text = "# Benchmarks\n"
    lines = text.split("\n")
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == SECTION)
    except StopIteration:
        text = text.rstrip("\n") + "\n\n" + SECTION + "\n\n" + INTRO + "\n" + block
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        before = "\n".join(lines[:end]).rstrip("\n")
        after = "\n".join(lines[end:])
        text = before + "\n\n" + block + ("\n" + after if after.strip() else "")
    tmp = path + ".tmp-http-bench"
    with open(tmp, "w") as f:
        f.write(text.rstrip("\n") + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--append", metavar="FILE")
    a = ap.parse_args()
    block, top = build(a.dir)
    if a.append:
        append(a.append, block)
    else:
        sys.stdout.write(block)
        if top:
            sys.stdout.write("\nperf report --no-children --sort symbol | head -40:\n\n")
            sys.stdout.write("\n".join(top) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
