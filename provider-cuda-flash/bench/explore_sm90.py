"""The Hopper wgmma kernels (flash_fwd_sm90.cu) during development: correctness of every SM90 traits variant against
float64 on a few shapes, then timings of the shipped traits, the variants, the mma.sync main kernel and PyTorch's
flash / cuDNN backends on training shapes, in one process. Env: EXPLORE_DIMS (e.g. "128" or "64,128,256"),
EXPLORE_LS (e.g. "1024,4096,16384"). Writes explore.json to argv[1]."""
import json, os, sys
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F
from flashlib import prepare, SM90_VARIANTS, SM90_LIB
from check import one
from bench import graph_time

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
DIMS = [int(x) for x in os.environ.get("EXPLORE_DIMS", "64,128,256").split(",")]
LS = [int(x) for x in os.environ.get("EXPLORE_LS", "1024,4096,16384").split(",")]
HEADS = {64: 32, 128: 16, 256: 8}   # the hidden 2048; other head dims: 16 heads up to 128, else 8

def check_variant(name, E, gen):
    """check.one through variant `name` on three shapes; returns the failures."""
    bad = 0
    for (B, H, G, Lq, Lk, causal, dt, scale) in ((2, 16, 1, 1000, 1000, 1, torch.float16, None),
                                                (3, 12, 3, 700, 333, 2, torch.bfloat16, None),
                                                (1, 48, 4, 517, 1203, 0, torch.float16, -0.1)):
        ok, oe, le, _ = one((B, H, G, Lq, Lk, E, dt, causal, "bhle", scale, None), gen, sm90=name)
        print(f"variant {name} E={E} {(B, H, G, Lq, Lk, causal, str(dt)[6:], scale)} oerr {oe:.2e} lerr {le:.2e} {'ok' if ok else 'FAIL'}", flush=True)
        bad += not ok
    return bad

def main():
    os.makedirs(OUT, exist_ok=True)
    assert SM90_LIB is not None, "no sm90 harness"
    gen = torch.Generator(device="cuda").manual_seed(7)
    bad = 0
    for name, (_, D, _, _) in SM90_VARIANTS.items():
        if D in DIMS:
            bad += check_variant(name, D, gen)
    print("variant check failures:", bad, flush=True)
    rows = []
    for E in DIMS:
        for L in LS:
            for causal in (False, True):
                for dt in (torch.float16, torch.bfloat16):
                    B, H = 16384 // L, HEADS.get(E, 16 if E <= 128 else 8)
                    q = torch.randn(B, H, L, E, dtype=dt, device="cuda")
                    k = torch.randn(B, H, L, E, dtype=dt, device="cuda")
                    v = torch.randn(B, H, L, E, dtype=dt, device="cuda")
                    o = torch.empty_like(q)
                    lse = torch.empty(B, H, L, dtype=torch.float32, device="cuda")
                    flops = 4.0 * B * H * L * L * E * (0.5 if causal else 1.0)
                    row = dict(E=E, L=L, causal=causal, dtype=str(dt)[6:])
                    fns = {"sm90": prepare(q, k, v, o, lse, 2 if causal else 0),
                           "mma": prepare(q, k, v, o, lse, 2 if causal else 0, sm90=False)}
                    for name, (_, D, _, _) in SM90_VARIANTS.items():
                        if D == E:
                            fns[name] = prepare(q, k, v, o, lse, 2 if causal else 0, sm90=name)
                    sd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                    for rnd in range(2):
                        for name, fn in fns.items():
                            ms = graph_time(fn)[0]
                            row[name] = min(ms, row.get(name, 1e9))
                        for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                            with sdpa_kernel([be]):
                                ms = graph_time(sd)[0]
                            row[name] = min(ms, row.get(name, 1e9))
                    tf = {n: flops / (ms * 1e-3) / 1e12 for n, ms in row.items() if isinstance(ms, float)}
                    row["tflops"] = tf
                    rows.append(row)
                    print(f"E={E:3d} L={L:5d} causal={int(causal)} {row['dtype']:8s} " + " ".join(
                        f"{n} {v:6.1f}" for n, v in tf.items()) + f" | sm90/flash {tf['sm90'] / tf['flash']:.3f} sm90/cudnn {tf['sm90'] / tf['cudnn']:.3f}", flush=True)
                    del fns, q, k, v, o, lse
                    torch.cuda.empty_cache()
    with open(os.path.join(OUT, "explore.json"), "w") as f:
        json.dump(rows, f, indent=1)

if __name__ == "__main__":
    main()
