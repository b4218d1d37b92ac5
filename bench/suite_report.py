"""Report side of bench/suite.py: BENCHMARKS.md (or bench/out/BENCHMARKS-quick.md)
rendered from the result dict that suite.py writes to bench/out/suite.json — one
part per section, then the verdicts on the stated targets. Section parts reuse
the engine, serving and inference-protocol renderers (engine_report.py,
serve_report.py, oip.py).
"""

from __future__ import annotations

import math

import engine_report
import oip
import serve_report
from engine_common import HIDDEN

TARGETS = {
    "train_cpu_vs_pytorch": 1 / 3,
    "gemm_fraction": 0.5,
    "serve_cpu_ms": 0.05,
    "serve_p99_ms": 2.0,
    "serve_rss_mb": 30.0,
    "cold_start_s": 0.2,
    "rec_p99_ms": 2.0,
    "rec_cpu_ms": 0.1,
}


def f(x, fmt="{:.2f}"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return fmt.format(x)


def div(a, b):
    return a / b if a is not None and b else None


def verdict(ok) -> str:
    return "—" if ok is None else ("met" if ok else "**not met**")


def train_flops_per_row(d: int) -> float:
    """GEMM FLOPs per training row: forward, weight gradients, input gradients of the
    layers after the first (biases and element-wise work not counted)."""
    widths = [d] + HIDDEN + [1]
    mats = [a * b for a, b in zip(widths, widths[1:])]
    return 2.0 * (sum(mats) + sum(mats) + sum(mats[1:]))


def sec_head(s: dict) -> str:
    return (f"Load average (1/5/15 min) before: {' / '.join(map(str, s.get('load_before', [])))}; "
            f"after: {' / '.join(map(str, s.get('load_after', [])))}; "
            f"section wall time {s.get('wall_s', 0):.0f} s.")


def render_engine(s: dict) -> list[str]:
    res = s.get("engine")
    if not res:
        return ["_engine section failed: " + s.get("failed", "no result") + "_"]
    L = [sec_head(s), "",
         f"Matched configuration on adult: MLP {HIDDEN} ReLU, Adam lr 1e-3, batch 256, "
         f"{res['epochs']} epochs, one thread, same 80/20 split for every system "
         f"(best of {res['repeat']}). CPU-s/epoch is process CPU time around the training loop.", "",
         engine_report.speed_table(res.get("speed") or {}), ""]
    L += [f"- {x}" for x in engine_report.ratio_lines(res.get("speed") or {}, res.get("quality") or {})]
    L += ["", "Test quality on both datasets (Myelin defaults and the matched configuration):", "",
          engine_report.quality_table(res.get("quality") or {}), "",
          "Single-core GEMM rate of this machine (numpy, one BLAS thread):", "",
          engine_report.gemm_table(res.get("gemm")), ""]
    gi = s.get("gemm_inside")
    if gi:
        L += [f"Myelin's training step, counted as GEMM work only "
              f"({gi['flops_per_row']:,.0f} FLOP per row: forward, weight gradients, and input "
              f"gradients of the layers after the first, with {gi['features']} inputs), runs at "
              f"**{gi['gflops']:.1f} GFLOP/s per CPU-second** — "
              f"{f(gi['fraction_of_1024'] and gi['fraction_of_1024'] * 100, '{:.0f}')}% of numpy's "
              f"1024³ SGEMM rate ({f(gi['numpy_sgemm_1024'], '{:.1f}')} GFLOP/s) and "
              f"{f(gi['fraction_of_layer'] and gi['fraction_of_layer'] * 100, '{:.0f}')}% of numpy on "
              f"the first layer's own 256 × {gi['features']} × 64 shape "
              f"({f(gi['numpy_sgemm_layer'], '{:.1f}')} GFLOP/s). The whole step (activations, loss, "
              f"Adam, batch gathering) is in the denominator, so this understates the rate inside "
              f"the GEMM calls themselves.", ""]
    L += ["Details: [docs/BENCHMARKS-engine.md](docs/BENCHMARKS-engine.md)."]
    return L


def render_threads(s: dict) -> list[str]:
    rows = s.get("rows")
    if not rows:
        return ["_threads section failed: " + s.get("failed", "no result") + "_"]
    L = [sec_head(s), "",
         f"Matched configuration, {s['epochs']} epochs. PyTorch gets `torch.set_num_threads(n)`, "
         f"scikit-learn a threadpoolctl limit of n on its BLAS, and OMP/OpenBLAS/MKL thread "
         f"variables are set to n. Myelin trains one model on one thread by design (its thread "
         f"pool is the job queue, not the GEMM): its \"2 threads\" rows are **two Myelin trainings "
         f"at once**, one per core; the figures are the mean of the two, and rows/s is their sum. "
         f"\"+ 1 busy process\" adds one CPU-bound process (`{s.get('busy_cmd')}`) for the whole "
         f"run, so three runnable threads share two cores — what a shared machine does. Wall "
         f"time is the fit loop's; CPU is the training process's CPU time over the same loop (for "
         f"PyTorch and scikit-learn it includes their threads' spin-waiting). \"× 1 thread\" "
         f"compares with the same system's 1-thread row of this run: a CPU-s/epoch ratio above "
         f"1 is CPU burnt without doing more work. Test metric: ROC AUC (adult) or RMSE "
         f"(california_housing) for the peers; Myelin's are in section 1. The load average above "
         f"counts everything else on the machine: at a load near or above 2 even the \"2 threads\" "
         f"rows are already oversubscribed.", "",
         "| dataset | system | condition | wall-s / epoch | CPU-s / epoch | rows/s (all runs) "
         "| wall × 1 thread | CPU × 1 thread | wall × Myelin (same condition) | test AUC / RMSE |",
         "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    idx = {(r["dataset"], r["system"], r["condition"]): r for r in rows}
    names = {"myelin": "Myelin", "pytorch": "PyTorch", "sklearn": "scikit-learn"}
    for r in rows:
        one = idx.get((r["dataset"], r["system"], "1 thread")) or {}
        my = idx.get((r["dataset"], "myelin", r["condition"]))
        L.append(f"| {r['dataset']} | {names[r['system']]} | {r['condition']} | "
                 f"{f(r.get('wall_per_epoch'), '{:.3f}')} | {f(r.get('cpu_per_epoch'), '{:.3f}')} | "
                 f"{f(r.get('rows_per_s_total'), '{:,.0f}')} | "
                 f"{f(div(r.get('wall_per_epoch'), one.get('wall_per_epoch')), '{:.2f}×')} | "
                 f"{f(div(r.get('cpu_per_epoch'), one.get('cpu_per_epoch')), '{:.2f}×')} | "
                 f"{f(div(r.get('wall_per_epoch'), (my or {}).get('wall_per_epoch')), '{:.1f}×')} | "
                 f"{f(r.get('metric'), '{:.4f}')} |")
    L += ["", "Why Myelin does not collapse: a training job is one thread that never waits on "
          "another thread. Its GEMMs (`matrixmultiply`, built without its threading feature) run "
          "on the calling thread, so there is no per-GEMM fork/join barrier to spin at. "
          "Concurrency comes from running several jobs (`jobs.workers`), each on a thread of its "
          "own in the idle scheduling class, away from the threads that serve HTTP, and passing "
          "a yield point between mini-batches. When the machine is "
          "oversubscribed a Myelin job simply gets a smaller share of a core: its wall time "
          "grows with the oversubscription while its CPU per epoch stays put. Thread pools that "
          "split every small GEMM across threads and spin-wait at the join instead burn CPU "
          "waiting for a descheduled partner — the CPU × 1 thread column."]
    return L


def render_serving(s: dict) -> list[str]:
    res = s.get("serve")
    if not res:
        return ["_serving section failed: " + s.get("failed", "no result") + "_"]
    L = [sec_head(s), "",
         "The same adult model in every server (Myelin's own model; the peers serve a "
         "scikit-learn pipeline with the same [64, 32] MLP), raw records in, probabilities out; "
         "every server is started by the harness on 127.0.0.1, one at a time; oha on the "
         "same machine. Server CPU per request = Δ(utime + stime) of the server's process tree "
         "÷ 200 answers.", ""]
    skipped = res.get("skipped") or {}
    for k, v in skipped.items():
        L.append(f"- {k} skipped: {v}")
    L += [serve_report.summary_table(res), ""]
    L += [f"- {x}" for x in serve_report.ratio_lines(res)]
    L += ["", "No bare axum \"hello\" probe is built by the suite; the comparison point in the "
          "targets (0.10 ms per request) is therefore not re-measured here.",
          "", "Details: [docs/BENCHMARKS-serving.md](docs/BENCHMARKS-serving.md)."]
    return L


def render_oip(s: dict) -> list[str]:
    res = s.get("oip")
    if not res:
        return ["_oip section failed: " + s.get("failed", "no result") + "_"]
    return [sec_head(s), ""] + oip.markdown(res)


def render_recommend(s: dict, serving: dict | None) -> list[str]:
    if s.get("failed") and not s.get("load"):
        return ["_recommend section failed: " + s["failed"] + "_"]
    L = [sec_head(s), ""]
    ld = s.get("load")
    peer = s.get("peer")
    if ld:
        sat, st = ld["saturation"], ld["steady"]
        L += ["`GET /recommend?model=ml100k&user=<random known user>&k=10` on a model trained "
              "on every ML-100k rating (default Mult-DAE + item-item blend), 32 connections, "
              f"oha on the same machine ({ld.get('oha_version', 'oha')}).", "",
              "| run | req/s | server CPU ms / req | p50 ms | p99 ms | p99.9 ms |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, r in (("saturation", sat), (f"steady -q {st.get('qps') or 2000:g}", st)):
            L.append(f"| {name} | {f(r['requests_per_s'], '{:,.0f}')} | "
                     f"{f(r['server_cpu_ms_per_request'], '{:.4f}')} | {f(r['p50_ms'], '{:.3f}')} | "
                     f"{f(r['p99_ms'], '{:.3f}')} | {f(r['p999_ms'], '{:.3f}')} |")
        L.append("")
        rss = (ld.get("rss_after") or {}).get("vm_rss_mib")
        L.append(f"Server RSS after the runs: {f(rss, '{:.1f}')} MiB.")
        L.append("")
    if peer:
        my_cpu = (ld or {}).get("saturation", {}).get("server_cpu_ms_per_request")
        L += [f"Peer in the same run: `implicit` {peer['version']} ALS ({peer['factors']} factors, "
              f"one thread) on the same ratings, `model.recommend(user, user_items, N=10)` called "
              f"in-process {peer['calls']:,} times for random users: "
              f"**{peer['cpu_ms_per_call']:.4f} ms CPU per call** with no HTTP, no JSON and no "
              f"network stack. Myelin's whole /recommend request (HTTP + JSON + scoring) costs "
              f"{f(div(my_cpu, peer['cpu_ms_per_call']), '{:.2f}×')} of that library call.", ""]
    cat = s.get("catalog") or []
    if cat:
        L += ["Scoring cost as the catalog grows (`recommend_eval --timing --hidden 300`, "
              "synthetic items, one user with |h| = 100 history items, score + top-10, one thread, "
              "best of five rounds):", "",
              "| items | component | wall ms / user | CPU ms / user | CPU × 1k items |",
              "| ---: | --- | ---: | ---: | ---: |"]
        base = {r["component"]: r["cpu_ms"] for r in cat if r["items"] == cat[0]["items"]}
        for r in cat:
            L.append(f"| {r['items']:,} | {r['component']} | {r['wall_ms']:.4f} | {r['cpu_ms']:.4f} | "
                     f"{f(div(r['cpu_ms'], base.get(r['component'])), '{:,.0f}×')} |")
        L += ["", "The Mult-DAE scores a user with one `u8 × i8` dot product per item over its "
              "int8 serving copy of the decoder (item-major, per-item scale; AVX-512 VNNI when "
              "the CPU has it) and keeps the top k in a bounded insertion list: "
              "O(hidden · items) work per user, linear in the catalog. The timing example "
              "measures the item-item part and the blend only up to 10k items; the 100k and 1M "
              "rows are the DAE alone. At 1M items the decoder (1M × 320 bytes, 320 MB) no "
              "longer fits in any cache, so the last step grows somewhat faster than the item "
              "count.", ""]
    L.append("Details: [docs/BENCHMARKS-recommend.md](docs/BENCHMARKS-recommend.md).")
    return L


def render_micro(s: dict) -> list[str]:
    c = s.get("criterion") or {}
    if not c:
        return ["_micro-benchmarks failed: " + s.get("failed", "no result") + "_"]
    ns = lambda k: (c.get(k) or {}).get("mean_ns")  # noqa: E731

    def t(x):
        if x is None:
            return "—"
        return f"{x / 1e6:.3f} ms" if x >= 1e6 else f"{x / 1e3:.2f} µs"
    L = [sec_head(s), "",
         "criterion, `benches/nn.rs`: a 39,000 × 108 synthetic table, MLP [64, 32], batch 256 "
         "(adult's shape after one-hot encoding); the pipeline rows use an adult-like raw table "
         "(6 numeric, 8 categorical columns). Mean time per iteration.", "",
         "| benchmark | mean | 95% CI |", "| --- | ---: | --- |"]
    for k in sorted(c):
        L.append(f"| `{k}` | {t(c[k]['mean_ns'])} | {t(c[k]['lo_ns'])} – {t(c[k]['hi_ns'])} |")
    fwd, sgd, adam = ns("nn/forward_256"), ns("nn/train_step_sgd_256"), ns("nn/train_step_adam_256")
    L.append("")
    if fwd and sgd:
        L.append(f"- Backward + SGD update (train step with SGD − forward): {t(sgd - fwd)} per "
                 f"256-row batch; the training forward also keeps activations, so this is an "
                 f"estimate.")
    if sgd and adam:
        L.append(f"- Adam's extra update cost over SGD (train step with Adam − with SGD): "
                 f"{t(adam - sgd)} per step (noise can make it negative: it is small).")
    if adam:
        fl = train_flops_per_row(108) * 256
        L.append(f"- GEMM work per Adam step: {fl / 1e6:.2f} MFLOP → {fl / adam:.1f} GFLOP/s "
                 f"(wall time of one thread).")
    return L


def render(res: dict) -> str:
    m = res.get("machine", {})
    secs = res["sections"]
    q = res["quick"]
    L = ["# Myelin benchmarks", "",
         "Generated by `bench/suite.py`; do not edit by hand. Every figure comes from one run "
         "of the suite, and every comparison is against a peer measured in that same run "
         "(this machine is shared, so absolute numbers move between runs; ratios and "
         "CPU-seconds move much less).", "",
         f"- Date (UTC): {res['date']} → {res.get('finished', '')}"
         + (" — **quick run** (shorter durations, fewer repeats)" if q else ""),
         f"- Machine: {m.get('Model name', '?')}, {m.get('CPU(s)', m.get('cores'))} CPU(s)"
         + (f", {m['Hypervisor vendor']} guest" if m.get("Hypervisor vendor") else "")
         + f"; Linux {m.get('kernel')}; Python {m.get('python')}; {m.get('rustc', '')}",
         f"- Commit: {m.get('commit', '?')}; Myelin binary: `{res.get('myelin')}`",
         f"- Load average (1/5/15 min) at start: {' / '.join(map(str, res.get('load_start', [])))}; "
         f"at end: {' / '.join(map(str, res.get('load_end', [])))}. Each section lists its own.",
         f"- Suite wall time: {res.get('wall_s', 0) / 60:.1f} min.", "",
         "Command:", "", f"    {res['command']}", ""]
    L += ["## Verdicts against the targets", ""] + verdicts(res) + [""]
    parts = (("1. Training — Myelin vs PyTorch vs scikit-learn", "engine", render_engine),
             ("2. Two threads and an oversubscribed machine", "threads", render_threads),
             ("3. Serving /predict — Myelin vs FastAPI+uvicorn vs MLServer", "serving", render_serving),
             ("4. Recommendation — /recommend and catalog size", "recommend", None),
             ("5. Engine micro-benchmarks (criterion)", "micro", render_micro),
             ("6. Open Inference Protocol — HTTP and gRPC vs /predict vs MLServer", "oip",
              render_oip))
    for title, key, fn in parts:
        if key not in secs:
            continue
        L += [f"## {title}", ""]
        if key == "recommend":
            L += render_recommend(secs[key], secs.get("serving"))
        else:
            L += fn(secs[key])
        L.append("")
    L += ["## Not covered", "",
          "- No bare axum \"hello\" probe: the serving figures are compared with the peers "
          "only, not with an empty axum handler.",
          "- No allocator comparison (system malloc vs mimalloc/jemalloc) and no `target-cpu` "
          "variants: the suite measures the binary it is given.",
          "- /recommend has no HTTP peer; the peer is `implicit`'s ALS `recommend` called "
          "in-process (no HTTP, no JSON), which favours the peer.",
          "- Myelin trains one model on one thread, so its two-thread figures are two "
          "trainings at once rather than one training on two threads.",
          "- The load generator (oha) shares the two cores with the server under test; "
          "saturation throughput is bounded by both, CPU per request is the server's own.",
          ""]
    L += ["## Exact commands", "", "Run by the suite, in order (section scripts add their own "
          "sub-commands to their detail documents):", ""]
    L += [f"    {c}" for c in res.get("commands", [])]
    if res.get("errors"):
        L += ["", "## Problems in this run", ""] + [f"- {e}" for e in res["errors"]]
    return "\n".join(L) + "\n"


def verdicts(res: dict) -> list[str]:
    secs = res["sections"]
    L = ["| target | measured (same run) | verdict |", "| --- | --- | --- |"]
    eng = (secs.get("engine") or {}).get("engine") or {}
    sp = eng.get("speed") or {}
    my, pt = sp.get("myelin") or {}, sp.get("pytorch") or {}
    r = div(my.get("cpu_seconds_per_epoch"), pt.get("cpu_seconds_per_epoch"))
    if r is not None:
        L.append(f"| training CPU-s/epoch on adult ≤ 1/3 of PyTorch | {my['cpu_seconds_per_epoch']:.4f} vs "
                 f"{pt['cpu_seconds_per_epoch']:.4f} s = {r:.2f}× (1/{1 / r:.1f}) | "
                 f"{verdict(r <= TARGETS['train_cpu_vs_pytorch'])} |")
    gi = (secs.get("engine") or {}).get("gemm_inside")
    if gi and gi.get("fraction_of_1024") is not None:
        L.append(f"| ≥ 50% of single-core GEMM rate inside the training step | {gi['gflops']:.1f} GFLOP/s "
                 f"= {gi['fraction_of_1024'] * 100:.0f}% of numpy 1024³ SGEMM "
                 f"({gi['numpy_sgemm_1024']:.1f}); {f(gi['fraction_of_layer'] and gi['fraction_of_layer'] * 100, '{:.0f}')}% "
                 f"of numpy on the layer shape | {verdict(gi['fraction_of_1024'] >= TARGETS['gemm_fraction'])} |")
    th = (secs.get("threads") or {}).get("rows") or []
    if th:
        idx = {(r["dataset"], r["system"], r["condition"]): r for r in th}
        parts = []
        worst_my = None
        for sysname, label in (("myelin", "Myelin"), ("pytorch", "PyTorch"), ("sklearn", "scikit-learn")):
            a = idx.get(("adult", sysname, "1 thread")) or {}
            b = idx.get(("adult", sysname, "2 threads + 1 busy process")) or {}
            cpu_x = div(b.get("cpu_per_epoch"), a.get("cpu_per_epoch"))
            wall_x = div(b.get("wall_per_epoch"), a.get("wall_per_epoch"))
            parts.append(f"{label} CPU {f(cpu_x, '{:.1f}×')}, wall {f(wall_x, '{:.1f}×')}")
            if sysname == "myelin":
                worst_my = cpu_x
        ok = worst_my <= 1.3 if worst_my is not None else None
        L.append(f"| two-thread training does not collapse when oversubscribed (adult, 2 threads + 1 busy "
                 f"process vs 1 thread, per epoch; Myelin: CPU within 1.3×) | {'; '.join(parts)} | "
                 f"{verdict(ok)} |")
    sv = (secs.get("serving") or {}).get("serve") or {}
    mys = (sv.get("servers") or {}).get("myelin") or {}
    if mys:
        c0 = sv["settings"]["conns"][0]
        sat = (mys.get("runs") or {}).get(f"saturation_rows1_c{c0}") or {}
        cpu = sat.get("server_cpu_ms_per_request")
        peers = []
        for p in ("fastapi", "mlserver"):
            pr = ((sv.get("servers") or {}).get(p) or {}).get("runs", {}).get(f"saturation_rows1_c{c0}") or {}
            pc = pr.get("server_cpu_ms_per_request")
            if pc and cpu:
                peers.append(f"{sv['servers'][p]['label']} {pc:.2f} ms ({pc / cpu:,.0f}× Myelin)")
        L.append(f"| server CPU ≤ 0.05 ms per single-row /predict | {f(cpu, '{:.4f}')} ms"
                 + (f"; {', '.join(peers)}" if peers else "") + f" | "
                 f"{verdict(cpu <= TARGETS['serve_cpu_ms'] if cpu else None)} |")
        st = (mys.get("runs") or {}).get("steady") or {}
        p99 = st.get("p99_ms")
        L.append(f"| /predict p99 < 2 ms at 2,000 req/s, 32 connections | p99 {f(p99)} ms at "
                 f"{f(st.get('requests_per_s'), '{:,.0f}')} req/s | "
                 f"{verdict(p99 < TARGETS['serve_p99_ms'] and (st.get('requests_per_s') or 0) >= 1900 if p99 else None)} |")
        rss = (mys.get("rss_after_runs") or {}).get("vm_rss_mb")
        L.append(f"| RSS < 30 MB with one model | {f(rss, '{:.1f}')} MB after the runs | "
                 f"{verdict(rss < TARGETS['serve_rss_mb'] if rss else None)} |")
        cs = mys.get("cold_start_s")
        L.append(f"| cold start < 0.2 s | {f(cs and cs * 1000, '{:.0f}')} ms | "
                 f"{verdict(cs < TARGETS['cold_start_s'] if cs else None)} |")
    rec = secs.get("recommend") or {}
    ld = rec.get("load")
    if ld:
        st, sat = ld["steady"], ld["saturation"]
        L.append(f"| /recommend p99 < 2 ms at 2,000 req/s | p99 {f(st['p99_ms'])} ms at "
                 f"{f(st['requests_per_s'], '{:,.0f}')} req/s | "
                 f"{verdict(st['p99_ms'] is not None and st['p99_ms'] < 2 and st['requests_per_s'] >= 1900)} |")
        L.append(f"| /recommend ≤ 0.1 ms server CPU per request | {f(sat['server_cpu_ms_per_request'], '{:.4f}')} ms "
                 f"(saturation), {f(st['server_cpu_ms_per_request'], '{:.4f}')} ms (2,000 req/s) | "
                 f"{verdict(sat['server_cpu_ms_per_request'] <= TARGETS['rec_cpu_ms'])} |")
    cat = rec.get("catalog") or []
    big = [r for r in cat if r["component"].startswith("dae")]
    if len(big) >= 2:
        a, b = big[0], big[-1]
        L.append(f"| bounded growth with catalog size | DAE: {a['cpu_ms']:.4f} ms at {a['items']:,} items → "
                 f"{b['cpu_ms']:.3f} ms at {b['items']:,} ({b['cpu_ms'] / a['cpu_ms']:,.0f}× for "
                 f"{b['items'] / a['items']:,.0f}× items; O(hidden · items)) | "
                 f"{verdict(b['cpu_ms'] / a['cpu_ms'] <= 1.5 * b['items'] / a['items'])} |")
    o = (secs.get("oip") or {}).get("oip")
    if o:
        L.append(oip_verdict(o))
    return L


def oip_verdict(o: dict) -> str:
    """The verdict row of the inference protocol targets."""
    cpu = o["myelin_cpu_ms_per_request"]
    ml = o.get("mlserver_cpu_ms_per_request")
    ratios = ", ".join(f"{label} {cpu[key] / cpu['predict']:.2f}×"
                       for key, label in (("oip_http_json", "HTTP JSON"),
                                          ("oip_http_binary", "HTTP binary"),
                                          ("oip_grpc", "gRPC")))
    worst = max(cpu[k] for k in ("oip_http_json", "oip_http_binary", "oip_grpc"))
    below = f"; MLServer {ml / worst:,.0f}× the costliest" if ml else "; MLServer not run"
    return (f"| OIP single-row infer: server CPU ≤ 1.3× /predict's and ≥ 100× below MLServer's | "
            f"{ratios} of /predict ({cpu['predict']:.4f} ms){below} | {verdict(oip.verdicts(o))} |")
