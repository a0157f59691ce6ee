"""Training step (forward + backward) of the provider's kernels against PyTorch's flash backend, same process, same
inputs: B*L = 16k tokens, hidden 2048 (E=64: 32 heads, E=128: 16 heads), L = 512..16k, causal and not, fp16 and bf16,
dropout 0 and 0.1. FLOPs = 3.5 x 4*B*H*L^2*E, halved for causal. Timing: CALLS back-to-back steps between two
events, median of REPS (no graphs: PyTorch's autograd step is not capturable as is). Ours: forward kernel, then
preprocess + dK/dV kernel + dQ conversion (workspace allocated once, as the provider's stream-ordered scratch).
Writes train.json / train.csv to argv[1]. BENCH_VARIANTS (JSON: {label: {"fwd": cubin, "bwd": cubin, "traits":
{class: [D, BM, BN, dSplit, exact]}, "dropout_only" / "no_dropout_only" / "word_only": bool}}) times earlier or experimental kernel versions on the same
inputs. BENCH_RESOLUTIONS (default "word,byte"): the dropout mask resolutions timed for p > 0 (rows of their own;
BYTE = one Philox call per 16 elements, PyTorch flash's own resolution); the forward runs BYTE only where trainlib's
forward takes `byte` and BENCH_FWD_BYTE is not 0 (else its WORD mask, noted in the row as fwd_resolution). Every row also times our backward alone
(sdpa4j_bwd_ms) and PyTorch's forward alone (torch-flash_fwd_ms).
"""
import inspect, json, math, os, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
import trainlib as tl

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
CALLS = int(os.environ.get("BENCH_CALLS", 5))
REPS = int(os.environ.get("BENCH_REPS", 5))
Ls = [int(x) for x in os.environ.get("BENCH_LS", "512,1024,2048,4096,8192,16384").split(",")]
VARIANTS = {k: dict(v, traits={int(c): tuple(t) for c, t in v.get("traits", {}).items()})
            for k, v in json.loads(os.environ.get("BENCH_VARIANTS", "{}")).items()}
DROPOUTS = [float(x) for x in os.environ.get("BENCH_DROPOUTS", "0,0.1").split(",")]
DTYPES = [getattr(torch, x) for x in os.environ.get("BENCH_DTYPES", "bfloat16,float16").split(",")]
RESOLUTIONS = os.environ.get("BENCH_RESOLUTIONS", "word,byte").split(",")
FWD_BYTE = "byte" in inspect.signature(tl.forward).parameters and os.environ.get("BENCH_FWD_BYTE", "1") != "0"


def timed(fn):
    return tl.timed(fn, REPS, CALLS)


def measure(B, H, L, E, dt, causal, p, byte=False):
    q, k, v, dout = (torch.randn(B, H, L, E, dtype=dt, device="cuda") for _ in range(4))
    flops = 3.5 * 4.0 * B * H * L * L * E * (0.5 if causal else 1.0)
    byte = byte and p > 0
    row = dict(B=B, H=H, L=L, E=E, dtype=str(dt).split(".")[-1], causal=causal, dropout=p, flops=flops,
               resolution=("byte" if byte else "word") if p > 0 else "-",
               fwd_resolution=("byte" if byte and FWD_BYTE else "word") if p > 0 else "-")
    fkw = dict(byte=True) if byte and FWD_BYTE else {}
    o = torch.empty_like(q)
    lse = torch.empty(B, H, L, dtype=torch.float32, device="cuda")
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    bwd = tl.Backward(q, k, v, o, lse, dout, dq, dk, dv, 1 if causal else 0, None, p, 42, 0, byte=byte)

    def ours():
        tl.forward(q, k, v, o, lse, 1 if causal else 0, None, p, 42, 0, **fkw)
        bwd()

    ms, lo, hi = timed(ours)
    row["sdpa4j_bwd_ms"] = timed(bwd)[0]
    row.update(sdpa4j_ms=ms, sdpa4j_spread=(lo, hi), sdpa4j_workspace_bytes=(
        bwd.dsum.numel() + (0 if bwd.acc is None else bwd.acc.numel())) * 4)
    del bwd
    for label, var in (VARIANTS.items() if p > 0 or os.environ.get("BENCH_VARIANTS_DROPOUT_ONLY") != "1" else ()):
        if (p == 0 and var.get("dropout_only")) or (p > 0 and var.get("no_dropout_only")) or (
                byte and var.get("word_only")):
            continue
        vb = tl.Backward(q, k, v, o, lse, dout, dq, dk, dv, 1 if causal else 0, None, p, 42, 0, variant=var, byte=byte)

        def run_var():
            tl.forward(q, k, v, o, lse, 1 if causal else 0, None, p, 42, 0, variant=var, **fkw)
            vb()

        row[label + "_ms"] = timed(run_var)[0]
        del vb
    qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))

    def torch_flash():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            out = F.scaled_dot_product_attention(qg, kg, vg, is_causal=causal, dropout_p=p)
        torch.autograd.grad(out, (qg, kg, vg), dout)

    def torch_flash_fwd():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), torch.no_grad():
            F.scaled_dot_product_attention(qg, kg, vg, is_causal=causal, dropout_p=p)

    try:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        ms2, _, _ = timed(torch_flash)
        row["torch-flash_ms"] = ms2
        row["torch-flash_peak_extra_bytes"] = torch.cuda.max_memory_allocated() - base
        row["torch-flash_fwd_ms"] = timed(torch_flash_fwd)[0]
    except Exception as e:
        row["torch-flash_ms"] = None
        row["torch-flash_error"] = str(e).split("\n")[0][:120]
    del q, k, v, dout, o, lse, dq, dk, dv, qg, kg, vg
    torch.cuda.empty_cache()
    return row


def tf(row, key):
    ms = row.get(key + "_ms")
    return None if ms is None else row["flops"] / (ms * 1e-3) / 1e12


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for E, H in ((64, 32), (128, 16)):
        for L in Ls:
            for causal in (False, True):
                for p, res in [(p, res) for p in DROPOUTS for res in (RESOLUTIONS if p > 0 else ["word"])]:
                    for dt in DTYPES:
                        r = measure(16384 // L, H, L, E, dt, causal, p, res == "byte")
                        rows.append(r)
                        ratio = (r["torch-flash_ms"] / r["sdpa4j_ms"]) if r.get("torch-flash_ms") else float("nan")
                        print(f"train E={E:3d} H={H:2d} L={L:5d} B={r['B']:2d} {r['dtype']:8s} causal={int(causal)} p={p:.1f} "
                              f"{r['resolution']:4s} sdpa4j {tf(r, 'sdpa4j'):6.1f} flash {tf(r, 'torch-flash') or 0:6.1f} TFLOP/s "
                              f"ratio {ratio:5.2f} ({r['sdpa4j_ms']:.3f} ms vs {r.get('torch-flash_ms') or 0:.3f} ms;"
                              f" bwd {r['sdpa4j_bwd_ms']:.3f} vs {(r.get('torch-flash_ms') or 0) - (r.get('torch-flash_fwd_ms') or 0):.3f})"
                              + "".join(f" {lb} {tf(r, lb):6.1f}" for lb in VARIANTS if lb + "_ms" in r),
                              flush=True)
    meta = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda,
                sms=torch.cuda.get_device_properties(0).multi_processor_count, calls=CALLS, reps=REPS)
    with open(os.path.join(OUT, "train.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    cols = ["B", "H", "L", "E", "dtype", "causal", "dropout", "resolution", "fwd_resolution", "sdpa4j_ms", "torch-flash_ms",
            "sdpa4j_bwd_ms", "torch-flash_fwd_ms"]
    with open(os.path.join(OUT, "train.csv"), "w") as f:
        f.write(",".join(cols) + ",sdpa4j_tflops,flash_tflops,ratio\n")
        for r in rows:
            ratio = (r["torch-flash_ms"] / r["sdpa4j_ms"]) if r.get("torch-flash_ms") else None
            f.write(",".join(str(r.get(c)) for c in cols) + f",{tf(r, 'sdpa4j')},{tf(r, 'torch-flash')},{ratio}\n")
    print(meta)


if __name__ == "__main__":
    main()
