"""Times the provider's kernels against PyTorch SDPA backends (flash, efficient, cuDNN) in the same process.

Each measurement: 10-call CUDA graph replays timed with events, median of 15 replays (launch gaps removed).
FLOPs = 4*B*H*Lq*Lk*E, halved for causal. Writes JSON and CSV to the folder given as argv[1]."""
import json, math, os, sys, statistics
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F
from flashlib import prepare, BASE_LIB

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
QUICK = os.environ.get("BENCH_QUICK") == "1"
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
    ms, lo, hi = graph_time(run)
    row["sdpa4j_ms"] = ms; row["sdpa4j_spread"] = (lo, hi); row["sdpa4j_info"] = {k2: str(v2) for k2, v2 in run.info.items()}
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run(); torch.cuda.synchronize()
    row["sdpa4j_extra_bytes"] = torch.cuda.max_memory_allocated() - base
    del run
    if BASE_LIB is not None and kind == "train":
        rb = prepare(q, k, v, o, lse, 2 if causal else 0, lib=BASE_LIB)
        row["base_ms"] = graph_time(rb)[0]
        del rb
    if os.environ.get("BENCH_VARIANTS") == "1" and kind == "train" and dtype == torch.float16 and Lq in (1024, 4096, 16384):
        for var in (1, 2):
            try:
                rv = prepare(q, k, v, o, lse, 2 if causal else 0, variant=var)
                row[f"var{var}_ms"] = graph_time(rv)[0]
                del rv
            except Exception as e:
                row[f"var{var}_error"] = str(e)[:100]
    for name, be in BACKENDS.items():
        try:
            with sdpa_kernel([be]):
                f = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal and Lq == Lk)
                ms2, _, _ = graph_time(f)
            row[name + "_ms"] = ms2
        except Exception as e:  # backend refuses the shape
            row[name + "_ms"] = None
            row[name + "_error"] = str(e).split("\n")[0][:120]
    del q, k, v, o, lse
    torch.cuda.empty_cache()
    return row

def tflops(row, key):
    ms = row.get(key + "_ms")
    return None if ms is None else row["flops"] / (ms * 1e-3) / 1e12

def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    shapes = []
    Ls = (1024, 4096) if QUICK else (512, 1024, 2048, 4096, 8192, 16384)
    dts = (torch.float16,) if QUICK else (torch.float16, torch.bfloat16)
    for E, H in ((64, 32), (128, 16), (256, 8)):
        for L in Ls:
            for causal in (False, True):
                for dt in dts:
                    shapes.append((16384 // L, H, L, L, E, dt, causal, "train"))
    for B in (1, 8, 64):
        for Lk in (4096, 16384, 65536):
            for dt in dts:
                shapes.append((B, 16, 1, Lk, 128, dt, False, "decode"))
    for s in shapes:
        r = measure(*s)
        rows.append(r)
        best = [tflops(r, n) for n in BACKENDS if r.get(n + "_ms")]
        print(f"{r['kind']:6s} B={r['B']:3d} H={r['H']:2d} Lq={r['Lq']:5d} Lk={r['Lk']:5d} E={r['E']:3d} {r['dtype']:8s} causal={int(r['causal'])} "
              f"sdpa4j {tflops(r, 'sdpa4j'):6.1f} | flash {tflops(r, 'torch-flash') or 0:6.1f} eff {tflops(r, 'torch-efficient') or 0:6.1f} "
              f"cudnn {tflops(r, 'torch-cudnn') or 0:6.1f} TFLOP/s  ({r['sdpa4j_ms']*1e3:.1f} us)"
              + (f" base {tflops(r, 'base'):6.1f}" if 'base_ms' in r else "")
              + (f" var1 {tflops(r, 'var1') or 0:6.1f} var2 {tflops(r, 'var2') or 0:6.1f}" if 'var1_ms' in r else ""), flush=True)
    meta = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda,
                sms=torch.cuda.get_device_properties(0).multi_processor_count)
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
