"""Report side of bench/serve.py: the summary table, Myelin-to-peer ratios,
targets, the table of every run and the Markdown doc
(docs/BENCHMARKS-serving.md), all rendered from the result dict that
serve.py writes to `<out>/serve.json`.

Also imported by bench/suite.py (summary_table, ratio_lines).
"""

from __future__ import annotations

import json
import math
import tempfile

from serve_common import STEADY_CONNS, TARGETS

ORDER = ("myelin", "fastapi", "mlserver")


def _f(x, fmt="{:.2f}"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return fmt.format(x)


def _run(res, key, name):
    return (res["servers"].get(key) or {}).get("runs", {}).get(name) or {}


def summary_table(res: dict) -> str:
    b = res["settings"]["batch_rows"]
    rate = res["settings"]["rate"]
    eq = res.get("equal_rate")
    cols = [k for k in ORDER if k in res["servers"] and not res["servers"][k].get("failed")]
    if not cols:
        return "_no server answered_"
    label = {k: res["servers"][k]["label"] for k in cols}

    def row(name, fn, target=""):
        return "| " + name + " | " + " | ".join(fn(k) for k in cols) + f" | {target} |"

    def sat(k, rows, c, field, fmt):
        return _f(_run(res, k, f"saturation_rows{rows}_c{c}").get(field), fmt)

    lines = ["| | " + " | ".join(label[k] for k in cols) + " | target (Myelin) |",
             "| --- | " + " | ".join("---:" for _ in cols) + " | --- |"]
    lines.append(row("cold start: spawn → first 200 (ms)",
                     lambda k: _f((res["servers"][k].get("cold_start_s") or 0) * 1000, "{:.0f}"),
                     f"< {TARGETS['cold_start_s'] * 1000:.0f} ms"))
    for c in res["settings"]["conns"]:
        lines.append(row(f"1 row, -c {c}: req/s", lambda k, c=c: sat(k, 1, c, "requests_per_s", "{:,.0f}")))
        lines.append(row(f"1 row, -c {c}: server CPU ms / request",
                         lambda k, c=c: sat(k, 1, c, "server_cpu_ms_per_request", "{:.4f}"),
                         f"≤ {TARGETS['cpu_ms_per_request']} ms"))
    for c in res["settings"]["conns"]:
        lines.append(row(f"{b} rows, -c {c}: req/s (rows/s)",
                         lambda k, c=c: sat(k, b, c, "requests_per_s", "{:,.0f}") + " ("
                         + sat(k, b, c, "rows_per_s", "{:,.0f}") + ")"))
        lines.append(row(f"{b} rows, -c {c}: server CPU ms / request (µs / row)",
                         lambda k, c=c: sat(k, b, c, "server_cpu_ms_per_request", "{:.3f}") + " ("
                         + sat(k, b, c, "server_cpu_us_per_row", "{:.2f}") + ")"))
    reps = res["settings"].get("latency_repeat", 1)
    rep_note = f", median-p99 run of {reps}" if reps > 1 else ""

    def p99s(k, name):
        return ", ".join(_f(x) for x in _run(res, k, name).get("p99_ms_all", []))
    st = lambda k, f, fmt="{:.2f}": _f(_run(res, k, "steady").get(f), fmt)  # noqa: E731
    lines.append(row(f"-q {rate:g} -c {STEADY_CONNS}: achieved req/s",
                     lambda k: st(k, "requests_per_s", "{:,.0f}")))
    lines.append(row(f"-q {rate:g}: p50 / p99 / p99.9 (ms){rep_note}",
                     lambda k: f"{st(k, 'p50_ms')} / {st(k, 'p99_ms')} / {st(k, 'p999_ms')}",
                     f"p99 < {TARGETS['p99_ms_at_2000']:g} ms"))
    if reps > 1:
        lines.append(row(f"-q {rate:g}: p99 of each of the {reps} runs (ms)",
                         lambda k: p99s(k, "steady")))
    if eq:
        er = lambda k, f, fmt="{:.2f}": _f(_run(res, k, "equal_rate").get(f), fmt)  # noqa: E731
        lines.append(row(f"-q {eq} (all sustain it): achieved req/s",
                         lambda k: er(k, "requests_per_s", "{:,.0f}")))
        lines.append(row(f"-q {eq}: p50 / p99 / p99.9 (ms){rep_note}",
                         lambda k: f"{er(k, 'p50_ms')} / {er(k, 'p99_ms')} / {er(k, 'p999_ms')}"))
        if reps > 1:
            lines.append(row(f"-q {eq}: p99 of each of the {reps} runs (ms)",
                             lambda k: p99s(k, "equal_rate")))
    wt = (res["servers"].get("myelin") or {}).get("while_training")
    if wt:
        r = wt["run"]
        lines.append(row(f"-q {rate:g} while {wt['jobs']} training job(s) run: p50 / p99 / p99.9 (ms)",
                         lambda k: (f"{_f(r.get('p50_ms'))} / {_f(r.get('p99_ms'))} / "
                                    f"{_f(r.get('p999_ms'))} ({_f(r.get('requests_per_s'), '{:,.0f}')} req/s)")
                         if k == "myelin" else "—"))

    def mem(k, when, f):
        m = res["servers"][k].get(when) or {}
        return _f(m.get(f), "{:.1f}")
    lines.append(row("RSS after first prediction: VmRSS / VmHWM (MiB)",
                     lambda k: f"{mem(k, 'rss_after_first_predict', 'vm_rss_mib')} / "
                               f"{mem(k, 'rss_after_first_predict', 'vm_hwm_mib')}"))
    lines.append(row("RSS after the runs: VmRSS / VmHWM (MiB)",
                     lambda k: f"{mem(k, 'rss_after_runs', 'vm_rss_mib')} / "
                               f"{mem(k, 'rss_after_runs', 'vm_hwm_mib')}",
                     f"< {TARGETS['rss_mb']:g} MB ({TARGETS['rss_mb'] * 1e6 / 2**20:.1f} MiB)"))
    return "\n".join(lines)


def ratios(res: dict) -> dict:
    out = {}
    my = res["servers"].get("myelin") or {}
    c0 = res["settings"]["conns"][0]
    b = res["settings"]["batch_rows"]
    for peer in ("fastapi", "mlserver"):
        p = res["servers"].get(peer)
        if not p or p.get("failed") or my.get("failed"):
            continue
        r = {}

        def div(a, bb):
            return a / bb if a is not None and bb else None
        for rows in (1, b):
            k = f"saturation_rows{rows}_c{c0}"
            r[f"cpu_per_request_rows{rows}"] = div(
                _run(res, "myelin", k).get("server_cpu_ms_per_request"),
                _run(res, peer, k).get("server_cpu_ms_per_request"))
            r[f"requests_per_s_rows{rows}"] = div(
                _run(res, "myelin", k).get("requests_per_s"),
                _run(res, peer, k).get("requests_per_s"))
        r["p99_equal_rate"] = div(_run(res, "myelin", "equal_rate").get("p99_ms"),
                                  _run(res, peer, "equal_rate").get("p99_ms"))
        r["p99_at_rate"] = div(_run(res, "myelin", "steady").get("p99_ms"),
                               _run(res, peer, "steady").get("p99_ms"))
        r["rss_after_runs"] = div((my.get("rss_after_runs") or {}).get("vm_rss_mib"),
                                  (p.get("rss_after_runs") or {}).get("vm_rss_mib"))
        r["cold_start"] = div(my.get("cold_start_s"), p.get("cold_start_s"))
        out[peer] = r
    return out


def _frac(x):
    """0.0123 -> '1/81'; 3.2 -> '3.2×'."""
    if x is None:
        return "—"
    if x < 1:
        return f"1/{1 / x:,.0f}" if 1 / x >= 10 else f"1/{1 / x:.1f}"
    return f"{x:,.1f}×"


def ratio_lines(res: dict) -> list[str]:
    out = []
    c0 = res["settings"]["conns"][0]
    b = res["settings"]["batch_rows"]
    for peer, r in res.get("ratios", {}).items():
        lbl = res["servers"][peer]["label"]
        my1 = _run(res, "myelin", f"saturation_rows1_c{c0}")
        pe1 = _run(res, peer, f"saturation_rows1_c{c0}")
        myb = _run(res, "myelin", f"saturation_rows{b}_c{c0}")
        peb = _run(res, peer, f"saturation_rows{b}_c{c0}")
        if r.get("cpu_per_request_rows1"):
            out.append(f"server CPU per single-row request: Myelin "
                       f"{my1['server_cpu_ms_per_request']:.4f} ms = "
                       f"{_frac(r['cpu_per_request_rows1'])} of {lbl} "
                       f"({pe1['server_cpu_ms_per_request']:.3f} ms)")
        if r.get(f"cpu_per_request_rows{b}"):
            out.append(f"server CPU per {b}-row request: Myelin "
                       f"{myb['server_cpu_ms_per_request']:.3f} ms = "
                       f"{_frac(r[f'cpu_per_request_rows{b}'])} of {lbl} "
                       f"({peb['server_cpu_ms_per_request']:.3f} ms)")
        if r.get("requests_per_s_rows1"):
            out.append(f"saturation throughput, 1 row, -c {c0}: Myelin "
                       f"{my1['requests_per_s']:,.0f} req/s = {_frac(r['requests_per_s_rows1'])} "
                       f"{lbl} ({pe1['requests_per_s']:,.0f} req/s)")
        if r.get(f"requests_per_s_rows{b}"):
            out.append(f"saturation throughput, {b} rows, -c {c0}: Myelin "
                       f"{myb['requests_per_s']:,.0f} req/s = "
                       f"{_frac(r[f'requests_per_s_rows{b}'])} {lbl} "
                       f"({peb['requests_per_s']:,.0f} req/s)")
        if r.get("p99_equal_rate"):
            eq = res.get("equal_rate")
            out.append(f"p99 at {eq} req/s: Myelin "
                       f"{_run(res, 'myelin', 'equal_rate')['p99_ms']:.2f} ms = "
                       f"{_frac(r['p99_equal_rate'])} of {lbl} "
                       f"({_run(res, peer, 'equal_rate')['p99_ms']:.2f} ms)")
        if r.get("rss_after_runs"):
            out.append(f"RSS after the runs: Myelin = {_frac(r['rss_after_runs'])} of {lbl}")
        if r.get("cold_start"):
            out.append(f"cold start: Myelin = {_frac(r['cold_start'])} of {lbl}")
    return out


def target_lines(res: dict) -> list[str]:
    my = res["servers"].get("myelin") or {}
    if my.get("failed"):
        return ["Myelin did not start: no figures."]
    out = []

    def verdict(ok):
        return "met" if ok else "not met"
    cpu = [(c, _run(res, "myelin", f"saturation_rows1_c{c}").get("server_cpu_ms_per_request"))
           for c in res["settings"]["conns"]]
    cpu = [(c, x) for c, x in cpu if x is not None]
    if cpu:
        worst = max(x for _, x in cpu)
        out.append(f"server CPU per single-row request ≤ {TARGETS['cpu_ms_per_request']} ms: "
                   + ", ".join(f"{x:.4f} ms at -c {c}" for c, x in cpu)
                   + f" — {verdict(worst <= TARGETS['cpu_ms_per_request'])}")
    st = _run(res, "myelin", "steady")
    if st.get("p99_ms") is not None:
        out.append(f"p99 < {TARGETS['p99_ms_at_2000']:g} ms at {res['settings']['rate']:g} req/s: "
                   f"{st['p99_ms']:.2f} ms at an achieved {st['requests_per_s']:,.0f} req/s — "
                   f"{verdict(st['p99_ms'] < TARGETS['p99_ms_at_2000'])}")
    m = my.get("rss_after_runs") or {}
    if m.get("vm_rss_mb") is not None:
        out.append(f"RSS < {TARGETS['rss_mb']:g} MB: VmRSS {m['vm_rss_mb']:.1f} MB "
                   f"({m['vm_rss_mib']:.1f} MiB), VmHWM {m['vm_hwm_mb']:.1f} MB after the runs — "
                   f"{verdict(m['vm_rss_mb'] < TARGETS['rss_mb'])} for VmRSS, "
                   f"{verdict(m['vm_hwm_mb'] < TARGETS['rss_mb'])} for VmHWM")
    m1 = my.get("rss_after_first_predict") or {}
    if m1.get("vm_rss_mb") is not None:
        out.append(f"RSS < {TARGETS['rss_mb']:g} MB right after the first prediction: VmRSS "
                   f"{m1['vm_rss_mb']:.1f} MB ({m1['vm_rss_mib']:.1f} MiB) — "
                   f"{verdict(m1['vm_rss_mb'] < TARGETS['rss_mb'])}")
    if my.get("cold_start_s") is not None:
        out.append(f"cold start < {TARGETS['cold_start_s']:g} s: {my['cold_start_s'] * 1000:.0f} ms — "
                   f"{verdict(my['cold_start_s'] < TARGETS['cold_start_s'])}")
    return out


def detail_table(res: dict) -> str:
    lines = ["| server | run | rows | -c | -q | req/s | rows/s | server CPU ms/req | "
             "server CPU (cores) | p50 ms | p99 ms | p99.9 ms | max ms | 200 | non-200 | "
             "client errors | VmRSS / VmHWM after (MiB) | load avg after |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
             "---: | ---: | --- | --- | ---: | ---: |"]
    for k in ORDER:
        s = res["servers"].get(k)
        if not s:
            continue
        runs = dict(s.get("runs", {}))
        if s.get("while_training"):
            runs[f"steady while {s['while_training']['jobs']} training job(s)"] = s["while_training"]["run"]
            if s["while_training"].get("idle_after"):
                runs["steady, idle again after training"] = s["while_training"]["idle_after"]
        for name, r in runs.items():
            if not isinstance(r, dict) or r.get("aggregate_of"):
                continue
            training = r.get("server_cpu_includes_training")
            lines.append(
                f"| {s['label']} | {name} | {r['rows_per_request']} | {r['connections']} | "
                f"{_f(r.get('qps'), '{:g}')} | {_f(r.get('requests_per_s'), '{:,.0f}')} | "
                f"{_f(r.get('rows_per_s'), '{:,.0f}')} | "
                + ("— (training) | " if training else
                   f"{_f(r.get('server_cpu_ms_per_request'), '{:.4f}')} | ")
                + f"{_f(r.get('server_cpu_cores'), '{:.2f}')} | {_f(r.get('p50_ms'))} | "
                f"{_f(r.get('p99_ms'))} | {_f(r.get('p999_ms'))} | {_f(r.get('max_ms'), '{:.1f}')} | "
                f"{r['ok_requests']:,} | {json.dumps(r['non_200']) if r['non_200'] else '0'} | "
                f"{'; '.join(f'{e}: {n}' for e, n in r['client_errors'].items()) or '0'} | "
                f"{_f((r.get('rss_after') or {}).get('vm_rss_mib'), '{:.1f}')} / "
                f"{_f((r.get('rss_after') or {}).get('vm_hwm_mib'), '{:.1f}')} | "
                f"{_f((r.get('load_average_after') or [None])[0])} |")
    return "\n".join(lines)


def render_doc(res: dict) -> str:
    mi = res["machine"]
    cores = mi.get("cpus") or mi.get("nproc")
    la0 = " / ".join(str(x) for x in res["load_average_at_start"])
    la1 = " / ".join(str(x) for x in res["load_average_at_end"])
    st = res["settings"]
    sw = ", ".join(f"{k} {mi[k]}" for k in ("fastapi", "uvicorn", "starlette", "pydantic",
                                             "scikit-learn", "numpy", "pandas") if mi.get(k))
    lines = [
        "# Myelin serving benchmarks",
        "",
        "Generated by `bench/serve.py`; do not edit by hand — rerun the harness "
        "(see [bench/README.md](../bench/README.md)).",
        "",
        f"- Date (UTC): {res['date']}",
        f"- Machine: {mi.get('cpu_model', 'unknown CPU')}, {cores} CPU(s)"
        + (f" ({mi.get('cores_per_socket')} core(s) per socket, "
           f"{mi.get('threads_per_core')} thread(s) per core)" if mi.get("cores_per_socket") else "")
        + (f", {mi['hypervisor']} guest" if mi.get("hypervisor") else ""),
        f"- Load average (1/5/15 min) at start: {la0}; at end: {la1}. Server, load "
        "generator and anything else running share these CPUs; a load average above ~0.5 "
        "at the start means other work was running.",
        f"- Software: {mi.get('myelin_version', 'myelin')} (commit {mi.get('git_commit', '?')}"
        + (", uncommitted changes under src/" if mi.get("git_src_dirty") else "")
        + f"; binary built {mi.get('myelin_binary_mtime', '?')}), {mi.get('oha', 'oha')}, "
        f"Python {mi.get('python')}, {sw}"
        + "."
        + (f" MLServer environment ({mi.get('mlserver_python')}): {mi['mlserver_env']}."
           if mi.get("mlserver_env") else ""),
        f"- Model: adult (48,842 rows, 14 raw fields, target `income`), {st['model_epochs']} "
        "epochs — quality is irrelevant here. Myelin: `myelin train` defaults otherwise "
        "(hidden layers [128, 64]). Peers: scikit-learn Pipeline(ColumnTransformer("
        "StandardScaler on the numeric fields, OneHotEncoder on the text fields) + "
        f"MLPClassifier((64, 32), max_iter={st['model_epochs']})).",
        f"- Request: `POST /predict` with `{{\"model\": \"adult\", \"instances\": [...]}}`, "
        f"1 raw record ({res['servers'].get('myelin', {}).get('body_bytes', {}).get(1, '?')} "
        f"bytes) or {st['batch_rows']} records; every server answers a label and the class "
        "probabilities for each instance.",
        f"- Runs: oha, keep-alive connections, {st['duration_s']:g} s per Myelin run and "
        f"{st['peer_duration_s']:g} s per peer run, after an unrecorded {st['warmup_s']:g} s "
        "warm-up. Server CPU = utime + stime of the server's process tree "
        "(/proc/<pid>/stat, before and after the run) ÷ answers with status 200. "
        "Latency runs use `--latency-correction` (measured from the scheduled send time, "
        f"so queueing is not hidden) and are repeated {st.get('latency_repeat', 1)} times, "
        "interleaved; the summary shows the run with the median p99 and lists every p99.",
        "",
        "Sample single-row body:",
        "",
        "```json",
        res.get("sample_body", ""),
        "```",
        "",
        "## Summary",
        "",
        summary_table(res),
        "",
    ]
    rl = ratio_lines(res)
    if rl:
        lines += ["Ratios (same run, -c {} for saturation):".format(st["conns"][0]), ""]
        lines += [f"- {x}" for x in rl] + [""]
    tl = target_lines(res)
    if tl:
        lines += ["Targets (Myelin; stated, not enforced):", ""] + [f"- {x}" for x in tl] + [""]
    wt = (res["servers"].get("myelin") or {}).get("while_training")
    if wt:
        idle = _run(res, "myelin", "steady")
        r = wt["run"]
        lines += [
            "## Latency while training",
            "",
            f"{wt['jobs']} training job(s) (`POST /train`, adult CSV body, "
            f"`params={{\"epochs\":{wt['epochs']},\"early_stopping_patience\":null}}`, "
            f"`MYELIN_JOBS__WORKERS={max(1, wt['jobs'])}`) were running during the second "
            f"steady run (jobs still running at its end: {wt['jobs_running_throughout']}; "
            "they were cancelled afterwards).",
            "",
            "| Myelin, -q {:g} -c {} | achieved req/s | p50 ms | p99 ms | p99.9 ms | max ms |".format(
                st["rate"], STEADY_CONNS),
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| idle (median-p99 run of {idle.get('aggregate_of', 1)}) | "
            f"{_f(idle.get('requests_per_s'), '{:,.0f}')} | {_f(idle.get('p50_ms'))} | "
            f"{_f(idle.get('p99_ms'))} | {_f(idle.get('p999_ms'))} | {_f(idle.get('max_ms'), '{:.1f}')} |",
            f"| while {wt['jobs']} job(s) train | {_f(r.get('requests_per_s'), '{:,.0f}')} | "
            f"{_f(r.get('p50_ms'))} | {_f(r.get('p99_ms'))} | {_f(r.get('p999_ms'))} | "
            f"{_f(r.get('max_ms'), '{:.1f}')} |",
        ]
        i2 = wt.get("idle_after")
        if i2:
            lines.append(
                f"| idle again, after the jobs were cancelled | "
                f"{_f(i2.get('requests_per_s'), '{:,.0f}')} | {_f(i2.get('p50_ms'))} | "
                f"{_f(i2.get('p99_ms'))} | {_f(i2.get('p999_ms'))} | {_f(i2.get('max_ms'), '{:.1f}')} |")
        lines += ["", "The 1-minute load average after each of these runs is in the table "
                  "below; on a shared machine the idle figures before and after bracket the "
                  "drift in background load.", ""]
    lines += ["## Every run", "", detail_table(res), ""]
    notes = [
        "oha runs on the same machine as the server and competes with it for the CPUs; "
        "saturation req/s is therefore a floor for a dedicated server, while CPU per "
        "request (the server's own CPU time) is largely unaffected by the client.",
        "“client errors” are oha's own errors; with `-z`, requests still in flight when "
        "the time is up are counted there as aborted (at most one per connection) and "
        "are not failures of the server.",
        "The FastAPI peer runs one uvicorn worker (one process), the endpoint is a plain "
        "`def` run on FastAPI's thread pool, BLAS is limited to one thread "
        f"(OPENBLAS_NUM_THREADS=1 …); uvicorn's HTTP parser and event loop are "
        f"{'httptools + uvloop' if mi.get('httptools') and mi.get('uvloop') else 'h11 + asyncio (uvicorn without the [standard] extras)'}.",
    ]
    fa = res["servers"].get("fastapi") or {}
    pc = (fa.get("model_training") or {}).get("predict_cpu_ms")
    if pc:
        notes.append("The scikit-learn Pipeline's own cost, in-process without HTTP "
                     "(`DataFrame.from_records` + `predict_proba`, best of 5 × 20 calls): "
                     + ", ".join(f"{v:.3f} ms CPU for {k} record(s)" for k, v in pc.items())
                     + _share(pc.get("1"), _run(res, "fastapi", f"saturation_rows1_c{st['conns'][0]}"))
                     + ".")
    if "mlserver" in res["servers"]:
        notes.append("MLServer speaks the Open Inference Protocol (V2): the same records are "
                     "sent as one input per column with the pandas codec "
                     "(`\"parameters\": {\"content_type\": \"pd\"}`) to "
                     "`/v2/models/adult/infer`, the runtime calls `predict_proba`; "
                     "`parallel_workers` is 0 so inference runs in the server process. "
                     "MLServer pins its own FastAPI/Starlette versions, so it runs from its own "
                     "virtual environment (`python -m venv bench/out/mlserver-venv && "
                     "bench/out/mlserver-venv/bin/pip install mlserver mlserver-sklearn`; "
                     "a clean install from PyPI).")
        ms = res["servers"].get("mlserver") or {}
        if ms.get("sample_v2_body"):
            notes.append("MLServer single-row body: `" + ms["sample_v2_body"] + "`")
    for k, why in res.get("skipped", {}).items():
        notes.append(f"{k} peer not run: {why}")
    lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    lines += [
        "## Commands",
        "",
        "```sh",
        "python scripts/fetch_datasets.py --out data",
        "cargo build --release",
        "python -m pip install -r bench/requirements.txt",
        res["command"],
        "```",
        "",
        "What the harness ran (temporary paths shortened to `$TMP`; ports are free "
        "loopback ports picked at run time):",
        "",
        "```sh",
        *[_tmp(c) for c in res["commands"]],
        "```",
        "",
    ]
    if res.get("errors"):
        lines += ["## Problems in this run", ""]
        for e in res["errors"]:
            lines += ["```", _tmp(e.strip()), "```", ""]
    return "\n".join(lines)


def _share(model_ms, sat: dict) -> str:
    srv_ms = sat.get("server_cpu_ms_per_request")
    if not model_ms or not srv_ms:
        return ""
    return (f"; the single-record figure is {model_ms / srv_ms:.0%} of the FastAPI "
            f"server's CPU per single-row request ({srv_ms:.3f} ms)")


def _tmp(s: str) -> str:
    t = tempfile.gettempdir()
    import re
    return re.sub(re.escape(t) + r"/myelin-serve-bench-[^/ ']+", "$TMP", s)
