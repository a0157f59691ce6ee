#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention backends on the GPU, on the shape list the Java side uses.

For every shape in --shapes (JSON: {"shapes": [{"set", "batch", "heads", "seqLen", "kvLen", "headDim", "causal",
"dtype", "pass", "dropout"}]}; --sets picks some sets) it times torch.nn.functional.scaled_dot_product_attention pinned to each backend with torch.nn.attention.sdpa_kernel
(FLASH_ATTENTION, EFFICIENT_ATTENTION, CUDNN_ATTENTION, MATH) plus the post's eager implementation
(dropout(softmax(Q·Kᵀ·scale [+ causal mask])) · V, scores materialised) as the eager baseline, with torch.cuda events:
warm-up calls, then the median of --repeats timed calls, the input set rotating among --input-sets sets. Peak memory
is torch.cuda.max_memory_allocated() during one call minus the memory allocated before it (inputs excluded,
outputs included). A training step ("pass": "fwd+bwd") is the forward with requires_grad inputs, then
out.backward(dOut); "dropout" is dropout_p (F.dropout for eager). A backend that refuses a shape is recorded UNSUPPORTED with PyTorch's reason; running out of memory
is recorded OOM.

Writes one JSON file whose rows have the columns of the Java side's ResultFiles (implementation, kind, device, dtype,
pass, batch, heads, seqLen, headDim, causal, status, medianMs, minMs, repeats, gflops, flops, memoryBytes,
memoryMethod, note), so `BenchMain gpu-compare` reads it directly.

    python3 benchmarks/gpu/pytorch_peer.py --shapes benchmarks/gpu/shapes.json --out benchmarks/results/gpu-torch.json
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {
    "torch-flash": SDPBackend.FLASH_ATTENTION,
    "torch-efficient": SDPBackend.EFFICIENT_ATTENTION,
    "torch-cudnn": SDPBackend.CUDNN_ATTENTION,
    "torch-math": SDPBackend.MATH,
}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def kv_len(s):
    return s.get("kvLen", s["seqLen"])


def flops(s):
    f = 4.0 * s["batch"] * s["heads"] * s["seqLen"] * kv_len(s) * s["headDim"]
    if s.get("causal", False):
        f /= 2
    return f * (3.5 if s.get("pass", "fwd") == "fwd+bwd" else 1.0)


def eager_sdpa(q, k, v, causal, dropout):
    """The post's eager_sdpa: scores materialised, softmax, (dropout,) then P·V."""
    scale = 1.0 / math.sqrt(q.size(-1))
    s = q @ k.transpose(-2, -1) * scale
    if causal:
        L, S = q.size(-2), k.size(-2)
        mask = torch.ones(L, S, dtype=torch.bool, device=q.device).tril(diagonal=0)
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    if dropout > 0:
        p = F.dropout(p, dropout)
    return p @ v


def make_call(impl, s, tensors):
    causal = bool(s.get("causal", False))
    train = s.get("pass", "fwd") == "fwd+bwd"
    dropout = float(s.get("dropout", 0.0))
    q, k, v, do = tensors

    def fwd():
        if impl == "torch-eager":
            return eager_sdpa(q, k, v, causal, dropout)
        with sdpa_kernel([BACKENDS[impl]]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=dropout)

    if not train:
        def call():
            with torch.no_grad():
                fwd()
        return call

    def call_train():
        out = fwd()
        out.backward(do)
        q.grad = k.grad = v.grad = None
    return call_train


def row(impl, s, status, times=None, mem=None, note=""):
    r = {
        "implementation": impl, "kind": "eager" if impl == "torch-eager" else "peer",
        "device": "cuda:%d" % torch.cuda.current_device(), "dtype": s.get("dtype", "fp16"),
        "pass": s.get("pass", "fwd"), "batch": s["batch"], "heads": s["heads"], "seqLen": s["seqLen"],
        "kvLen": kv_len(s), "headDim": s["headDim"], "causal": bool(s.get("causal", False)),
        "dropout": float(s.get("dropout", 0.0)), "status": status,
        "medianMs": None, "minMs": None, "repeats": 0, "gflops": None, "flops": flops(s),
        "memoryBytes": mem, "memoryMethod": "torch.cuda.max_memory_allocated growth during one call (outputs included)",
        "note": note,
    }
    if times:
        med = statistics.median(times)
        r.update(medianMs=med, minMs=min(times), repeats=len(times), gflops=flops(s) / (med * 1e6))
    return r


def measure(impl, s, args):
    dtype = DTYPES[s.get("dtype", "fp16")]
    train = s.get("pass", "fwd") == "fwd+bwd"
    qshape = (s["batch"], s["heads"], s["seqLen"], s["headDim"])
    kvshape = (s["batch"], s["heads"], kv_len(s), s["headDim"])
    sets = []
    try:
        gen = torch.Generator(device="cuda").manual_seed(args.seed)
        for _ in range(args.input_sets):
            t = [torch.randn(shape, device="cuda", dtype=dtype, generator=gen)
                 for shape in (qshape, kvshape, kvshape, qshape)]
            if train:
                for x in t[:3]:
                    x.requires_grad_(True)
            sets.append(t)
        calls = [make_call(impl, s, t) for t in sets]
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        calls[0]()
        torch.cuda.synchronize()
        first = time.perf_counter() - t0
        mem = torch.cuda.max_memory_allocated() - base
        for i in range(1, args.warmup if first < 2 else 1):  # a slow case needs no more warm-up
            calls[i % len(calls)]()
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        times = []
        for i in range(args.repeats):
            c = calls[(args.warmup + i) % len(calls)]
            torch.cuda.synchronize()
            start.record()
            c()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
            if times[0] / 1000 * (args.repeats - 1) > 80:  # as the Java side: one repeat of a very slow case
                break
        return row(impl, s, "OK", times, mem)
    except torch.OutOfMemoryError as e:
        return row(impl, s, "OOM", note=str(e).splitlines()[0][:300])
    except RuntimeError as e:
        msg = " ".join(str(e).split())[:400]
        status = "UNSUPPORTED" if "No available kernel" in msg or "not supported" in msg.lower() else "ERROR"
        return row(impl, s, status, note=msg)
    finally:
        del sets
        torch.cuda.empty_cache()


def run_info():
    def sh(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"
    p = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        # the commit the bundle was built from (run-gpu.sh reads it out of the benchmarks jar): the GPU host's
        # checkout may be stale; git in the working directory only when run on its own
        "commit": os.environ.get("SDPA4J_COMMIT") or sh("git", "rev-parse", "HEAD"),
        "dirty": os.environ.get("SDPA4J_DIRTY")
                 or str(bool(sh("git", "status", "--porcelain", "--untracked-files=no"))).lower(),
        "gpu": "%s (cc %d.%d, %d SMs, %.1f GiB)" % (p.name, p.major, p.minor, p.multi_processor_count,
                                                   p.total_memory / 2**30),
        "driver": sh("nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"),
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": str(torch.backends.cudnn.version()),
        "python": sys.version.split()[0], "host": platform.node(), "cpuModel": platform.processor(),
        "command": "pytorch_peer.py " + " ".join(sys.argv[1:]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", required=True, help="shape list JSON")
    ap.add_argument("--out", required=True, help="output JSON")
    ap.add_argument("--sets", default="", help="comma-separated sets of the shape list (default: all)")
    ap.add_argument("--backends", default="torch-flash,torch-efficient,torch-cudnn,torch-math,torch-eager",
                    help="comma-separated subset of " + ",".join(list(BACKENDS) + ["torch-eager"]))
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--input-sets", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261126)
    args = ap.parse_args()
    with open(args.shapes) as f:
        doc = json.load(f)
    shapes = doc["shapes"] if isinstance(doc, dict) else doc
    wanted = [x.strip() for x in args.sets.split(",") if x.strip()]
    if wanted:
        shapes = [s for s in shapes if s.get("set", "inference") in wanted]
    impls = [b.strip() for b in args.backends.split(",") if b.strip()]
    rows = []
    total = len(shapes) * len(impls)
    for n, (s, impl) in enumerate(((s, i) for s in shapes for i in impls), 1):
        r = measure(impl, s, args)
        rows.append(r)
        speed = "%.1f TFLOP/s" % (r["gflops"] / 1000) if r["gflops"] else r["status"]
        print("[%d/%d] %s B=%d H=%d Lq=%d Lk=%d E=%d%s %s %s%s: %s" % (
              n, total, impl, s["batch"], s["heads"], s["seqLen"], kv_len(s), s["headDim"],
              " causal" if s.get("causal") else "", s.get("dtype", "fp16"), s.get("pass", "fwd"),
              " dropout %g" % s["dropout"] if s.get("dropout") else "", speed), file=sys.stderr, flush=True)
    with open(args.out, "w") as f:
        json.dump({"run": run_info(), "measurements": rows}, f, indent=1)
    print("wrote " + args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
