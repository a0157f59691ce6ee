"""Times the provider's kernels against PyTorch SDPA backends (flash, efficient, cuDNN) in the same process.

Each measurement: 10-call CUDA graph replays timed with events, median of 15 replays (launch gaps removed); BENCH_ROUNDS
(2) passes over ours, the baseline and torch's backends in turn, each keeping its best median.
FLOPs = 4*B*H*Lq*Lk*E, halved for causal. Writes JSON and CSV to the folder given as argv[1]."""
import json, math, os, sys, statistics
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F
from flashlib import prepare, kv_read, BASE_LIB, LIB

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
QUICK = os.environ.get("BENCH_QUICK") == "1"
# BENCH_EXPLORE=1: the decode shapes (fp16 and bf16) with the experimental decode variants, and the training shapes
# that were below 1.0x in the last table, with the fp16 tiling variants; torch's efficient backend skipped
EXPLORE = os.environ.get("BENCH_EXPLORE") == "1"
DECODE_VARIANTS = os.environ.get("BENCH_DECODE_VARIANTS") == "1"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 2))
BACKENDS = {"torch-flash": SDPBackend.FLASH_ATTENTION, "torch-efficient": SDPBackend.EFFICIENT_ATTENTION,
            "torch-cudnn": SDPBackend.CUDNN_ATTENTION}

def graph_time(fn, calls=int(os.environ.get("BENCH_CALLS", 10)), reps=int(os.environ.get("BENCH_REPS", 15))):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(calls):
            fn()
    g.replay()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); g.replay(); b.record(); b.synchronize()
        ts.append(a.elapsed_time(b) / calls)
    del g
    return statistics.median(ts), min(ts), max(ts)

def measure(B, H, Lq, Lk, E, dtype, causal, kind):
    q = torch.randn(B, H, Lq, E, dtype=dtype, device="cuda")
    k = torch.randn(B, H, Lk, E, dtype=dtype, device="cuda")
    v = torch.randn(B, H, Lk, E, dtype=dtype, device="cuda")
    flops = 4.0 * B * H * Lq * Lk * E * (0.5 if causal else 1.0)
    row = dict(kind=kind, B=B, H=H, Lq=Lq, Lk=Lk, E=E, dtype=str(dtype).split(".")[-1], causal=causal, flops=flops)
    o = torch.empty_like(q)
    lse = torch.empty(B, H, Lq, dtype=torch.float32, device="cuda")
    run = prepare(q, k, v, o, lse, 2 if causal else 0)   # bottom-right == top-left for Lq == Lk; decode: causal off
    torch.cuda.synchronize()
    row["sdpa4j_info"] = {k2: str(v2) for k2, v2 in run.info.items()}
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run(); torch.cuda.synchronize()
    row["sdpa4j_extra_bytes"] = torch.cuda.max_memory_allocated() - base
    ours = {"sdpa4j": run}
    if BASE_LIB is not None:
        # the committed kernel with the v7 decode rules (half a wave of cluster splits, a memset per workspace call),
        # with BENCH_BASE_RULES=v8 this flashlib's rules without pacing (the plans of a kernel before v12), with v12
        # its rules pacing grids of at most one wave (v12's plans), with v13 v13's plans (waves of one block per SM)
        base_rules = os.environ.get("BENCH_BASE_RULES", "v7")
        ours["base"] = prepare(q, k, v, o, lse, 2 if causal else 0, lib=BASE_LIB, rules=base_rules,
                               paced=False if base_rules == "v8" else None)
        row["base_splits"] = ours["base"].info["splits"]
    if run.info.get("sm90") is not None:
        # the Hopper wgmma kernel runs: the mma.sync main kernel on the same inputs is its same-run baseline ("mma")
        ours["mma"] = prepare(q, k, v, o, lse, 2 if causal else 0, sm90=False)
    if kind == "decode" and hasattr(LIB, "harness_stream_read"):
        ours["floor"] = kv_read(k, v)   # the floor of a decode call: K and V read once, no attention
    sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal and Lq == Lk)
    # ROUNDS passes over ours, the baseline and torch's backends, in turn; each keeps its best median (the spread
    # between two timings of the same kernel in one process reached 10% at L = 2k-4k)
    for rnd in range(ROUNDS):
        for name, fn in ours.items():
            ms, lo, hi = graph_time(fn)
            if rnd == 0 or ms < row[name + "_ms"]:
                row[name + "_ms"] = ms
                if name == "sdpa4j":
                    row["sdpa4j_spread"] = (lo, hi)
        for name, be in BACKENDS.items():
            if (EXPLORE and name == "torch-efficient") or (rnd > 0 and row[name + "_ms"] is None):
                continue
            try:
                with sdpa_kernel([be]):
                    ms2, _, _ = graph_time(sdpa)
                row[name + "_ms"] = ms2 if rnd == 0 else min(ms2, row[name + "_ms"])
            except Exception as e:  # backend refuses the shape
                row[name + "_ms"] = None
                row[name + "_error"] = str(e).split("\n")[0][:120]
    del ours, run
    if (EXPLORE or DECODE_VARIANTS) and kind == "decode" and dtype == torch.float16:
        # the compact decode traits (devices with < 128 KB of shared memory per block), twice the splits, no per-call
        # memset (counters reset by the kernel alone); with BENCH_DECODE_VARIANTS=1 the split merges of v7: the
        # workspace + counter path with its memset ("counter", v6's rules) and without, and cluster merges with other
        # split counts and the compact (96 KB, two blocks per SM) traits
        variants = [("compact", dict(compact=True)), ("mul2", dict(split_slots_mul=2)),
                    ("nomemset", dict(zero_counters=False, cluster=False))]
        if DECODE_VARIANTS:
            sp = row["sdpa4j_info"]["splits"]
            variants = [("counter", dict(cluster=False)), ("memset", dict(zero_counters=True, cluster=False))]
            variants += [(f"cl{n}{'c' if c else ''}", dict(force_splits=n, cluster=True, compact=c))
                         for n, c in ((2, False), (4, False), (4, True), (8, False), (8, True), (16, True))
                         if str(n) != sp or c]
        for name, kw in variants:
            rv = prepare(q, k, v, o, lse, 0, **kw)
            row[name + "_ms"] = graph_time(rv)[0]
            row[name + "_splits"] = rv.info["splits"]
            row["variants"] = row.get("variants", []) + [name]
            del rv
    if (EXPLORE and kind == "train" and dtype == torch.float16 and E in (128, 256)) or (
            os.environ.get("BENCH_VARIANTS") == "1" and kind == "train" and dtype == torch.float16 and Lq in (1024, 4096, 16384)):
        for var in (1, 2):
            try:
                rv = prepare(q, k, v, o, lse, 2 if causal else 0, variant=var)
                row[f"var{var}_ms"] = graph_time(rv)[0]
                del rv
            except Exception as e:
                row[f"var{var}_error"] = str(e)[:100]
    del q, k, v, o, lse
    torch.cuda.empty_cache()
    return row

def tflops(row, key):
    ms = row.get(key + "_ms")
    return None if ms is None else row["flops"] / (ms * 1e-3) / 1e12

def main():
    os.makedirs(OUT, exist_ok=True)
    from flashlib import LIB, DECODE, DECODE_COMPACT, CLUSTERS, decode_smem
    if CLUSTERS and hasattr(LIB, "harness_max_clusters"):
        # clusters of the D=128 decode kernels the device runs at once (cudaOccupancyMaxActiveClusters)
        for name, tr, c in (("n32w4s2", DECODE[3], 0), ("n16w4s3", DECODE_COMPACT[3], 1)):
            bn, w, st = tr
            print("max active clusters", name, {n: LIB.harness_max_clusters(3, c, n, w * 32, decode_smem(128, bn, w, st))
                                                for n in (2, 4, 8, 16)}, flush=True)
    rows = []
    shapes = []
    Ls = (1024, 4096) if QUICK else (512, 1024, 2048, 4096, 8192, 16384)
    dts = (torch.float16,) if QUICK else (torch.float16, torch.bfloat16)
    if os.environ.get("BENCH_DTYPES"):   # e.g. "bfloat16": the dtypes measured, by name
        dts = tuple(getattr(torch, n) for n in os.environ["BENCH_DTYPES"].split(","))
    for E, H in ((64, 32), (128, 16), (256, 8)):
        for L in Ls:
            for causal in (False, True):
                for dt in dts:
                    if os.environ.get("BENCH_DECODE_ONLY") == "1" or EXPLORE and not ((E == 128 and (L, causal) in ((2048, False), (4096, True), (4096, False)))
                                        or (E == 256 and 1024 <= L <= 4096)):
                        continue
                    shapes.append((16384 // L, H, L, L, E, dt, causal, "train"))
    # BENCH_DECODE_DIMS: the decode head dims and head counts, "E:H,..." (hidden 2048: 64:32, 128:16; 256:8)
    dims = [tuple(int(x) for x in d.split(":")) for d in os.environ.get("BENCH_DECODE_DIMS", "128:16").split(",")]
    for E, H in dims:
        for B in (int(b) for b in os.environ.get("BENCH_DECODE_BATCHES", "1,8,64").split(",")):
            for Lk in (int(n) for n in os.environ.get("BENCH_DECODE_KEYS", "4096,16384,65536").split(",")):
                for dt in dts:
                    shapes.append((B, H, 1, Lk, E, dt, False, "decode"))
    for s in shapes:
        r = measure(*s)
        rows.append(r)
        best = [tflops(r, n) for n in BACKENDS if r.get(n + "_ms")]
        print(f"{r['kind']:6s} B={r['B']:3d} H={r['H']:2d} Lq={r['Lq']:5d} Lk={r['Lk']:5d} E={r['E']:3d} {r['dtype']:8s} causal={int(r['causal'])} "
              f"sdpa4j {tflops(r, 'sdpa4j'):6.1f} | flash {tflops(r, 'torch-flash') or 0:6.1f} eff {tflops(r, 'torch-efficient') or 0:6.1f} "
              f"cudnn {tflops(r, 'torch-cudnn') or 0:6.1f} TFLOP/s  ({r['sdpa4j_ms']*1e3:.1f} us)"
              + (f" base {tflops(r, 'base'):6.1f}" if 'base_ms' in r else "")
              + (f" mma {tflops(r, 'mma'):6.1f}" if 'mma_ms' in r else "")
              + (f" var1 {tflops(r, 'var1') or 0:6.1f} var2 {tflops(r, 'var2') or 0:6.1f}" if 'var1_ms' in r else "")
              + "".join(f" {n} {r[n + '_ms']*1e3:.1f}us/{r[n + '_splits']}" for n in
                        ["base"] + r.get("variants", []) if r['kind'] == 'decode' and n + '_ms' in r)
              + (f" [splits {r['sdpa4j_info']['splits']}, torch flash {r['torch-flash_ms']*1e3:.1f} cudnn {(r['torch-cudnn_ms'] or 0)*1e3:.1f} us]" if r['kind'] == 'decode' else ""), flush=True)
    meta = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda,
                sms=torch.cuda.get_device_properties(0).multi_processor_count, rounds=ROUNDS,
                graph_calls=graph_time.__defaults__[0], replays=graph_time.__defaults__[1])
    with open(os.path.join(OUT, "bench.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    cols = ["kind", "B", "H", "Lq", "Lk", "E", "dtype", "causal", "sdpa4j_ms", "torch-flash_ms", "torch-efficient_ms", "torch-cudnn_ms"]
    with open(os.path.join(OUT, "bench.csv"), "w") as f:
        f.write(",".join(cols) + ",sdpa4j_tflops,flash_tflops,cudnn_tflops\n")
        for r in rows:
            f.write(",".join(str(r.get(c)) for c in cols) + f",{tflops(r,'sdpa4j')},{tflops(r,'torch-flash')},{tflops(r,'torch-cudnn')}\n")
    print(meta)

if __name__ == "__main__":
    main()
