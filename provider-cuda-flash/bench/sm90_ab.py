"""The Hopper wgmma forward (harness_sm90.cu, FLASH_SM90) in three parts (SM90_AB_PARTS, default "quick,base,dims"):
- quick: FlashPlan's kernel against float64 at every head-dim class and at padded head dims (grids large enough for
  the main kernel; each call must take the wgmma kernel); exits 1 on a failure;
- base: head dims 64 / 128 / 256 (the issue's hidden 2048), the kernels of an earlier sm90 harness (SM90_BASE; its
  table rows SM90_BASE_ROWS "64:0,128:1,256:2", default flashlib.SM90's) against FLASH_SM90's on the same inputs, O
  and the LSE compared bit for bit, with PyTorch's flash and cuDNN backends;
- dims: head dims SM90_AB_DIMS (default "96,192"; 16 heads up to 128, else 8) at SM90_AB_LS keys (B.L = 16k tokens):
  the wgmma kernel, the mma.sync main kernel, flashlib.SM90_VARIANTS of that head dim (SM90_AB_VARIANTS: a comma list
  of those to run, default all), PyTorch's flash and cuDNN, in the dtypes SM90_AB_DTYPES (default
  "float16,bfloat16").
Every variant timed in shuffled rounds (placement.best_of_rounds over bench.graph_time); one line per shape
(forward v22's tables)."""
import ctypes, os, random, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
import flashlib
from flashlib import prepare, SM90
from check import one
from placement import best_of_rounds

BASE = ctypes.CDLL(os.environ["SM90_BASE"]) if os.environ.get("SM90_BASE") else None
BASE_ROWS = {int(d): int(i) for d, i in (x.split(":") for x in os.environ["SM90_BASE_ROWS"].split(","))} \
    if os.environ.get("SM90_BASE_ROWS") else {d: row[0] for d, row in SM90.items()}
DTYPES = [getattr(torch, d) for d in os.environ.get("SM90_AB_DTYPES", "float16,bfloat16").split(",")]
VARIANTS = os.environ["SM90_AB_VARIANTS"].split(",") if os.environ.get("SM90_AB_VARIANTS") else None
rng = random.Random(18)
gen = torch.Generator(device="cuda").manual_seed(18)
HEADS = {64: 32, 128: 16, 256: 8}

def quick():
    """check.one (FlashPlan's kernel against float64) at each shape; each call must also take the wgmma kernel."""
    bad = 0
    for E in (64, 96, 128, 192, 256, 40, 80, 112, 160, 176, 248):
        few = E <= 64   # the class of 64 takes the wgmma kernel from 8192 keys
        for cfg in ((4, 32, 1, 300 if few else 600, 8300 if few else 700, E, torch.float16, 1, "bhle", None, None),
                    (2, 48, 3, 333, 8200 if few else 1203, E, torch.bfloat16, 2, "pad", -0.3, None),
                    (4, 32, 2, 257, 8193 if few else 200, E, torch.float16, 0, "blhe", 0.7, None)):
            ok, oe, le, info = one(cfg, gen)
            ok = ok and info["sm90"] is not None
            bad += not ok
            print(f"quick E={E} {cfg[:5] + cfg[6:10]} sm90={info['sm90']} oerr {oe:.2e} lerr {le:.2e} {'ok' if ok else 'FAIL'}", flush=True)
    print("quick failures:", bad, flush=True)
    return bad

def torch_backends(q, k, v, causal):
    """PyTorch's flash and cuDNN SDPA backends on the same inputs (causal 1 = top-left, as PyTorch's is_causal)."""
    fns = {}
    for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        def sd(be=be):
            with sdpa_kernel([be]):
                F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
        fns[name] = sd
    return fns

def base_fn(q, k, v, o, lse, causal, E):
    """The base harness's kernel for head dim E (same traits, hence the same grid and shared memory as ours)."""
    ours = prepare(q, k, v, o, lse, causal)
    pref = ctypes.byref(ours.params)
    gx, gy, _ = ours.info["grid"]
    def run():
        st = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        r = BASE.harness_sm90_launch(pref, BASE_ROWS[E], int(q.dtype == torch.bfloat16), gx, gy, 256, ours.info["smem"], st)
        if r:
            raise RuntimeError(f"base launch failed: cuda error {r}")
    run.keep = ours
    return run

def ab_base():
    print("E L causal dtype | new us | base us | base/new | bits | flash/new | cudnn/new", flush=True)
    for E, Ls in ((64, (8192, 16384)), (128, (1024, 4096, 16384)), (256, (1024, 4096, 16384))):
        for L in Ls:
            for causal in (0, 1):
                for dt in (torch.float16, torch.bfloat16):
                    B, H = 16384 // L, HEADS[E]
                    q = torch.randn(B, H, L, E, dtype=dt, device="cuda"); k = torch.randn_like(q); v = torch.randn_like(q)
                    on, ln = torch.empty_like(q), torch.empty(B, H, L, dtype=torch.float32, device="cuda")
                    oo, lo = torch.empty_like(q), torch.empty(B, H, L, dtype=torch.float32, device="cuda")
                    fns = {"new": prepare(q, k, v, on, ln, causal), "base": base_fn(q, k, v, oo, lo, causal, E)}
                    assert fns["new"].info["sm90"] is not None
                    fns.update(torch_backends(q, k, v, causal))
                    t = best_of_rounds(fns, 3, rng)
                    fns["new"](); fns["base"](); torch.cuda.synchronize()
                    bits = torch.equal(on, oo) and torch.equal(ln, lo)
                    print(f"{E} {L} {causal} {str(dt)[6:]} | {t['new']*1e3:.1f} | {t['base']*1e3:.1f} | {t['base']/t['new']:.3f} | {'same' if bits else 'DIFF'} | {t['flash']/t['new']:.3f} | {t['cudnn']/t['new']:.3f}", flush=True)
                    del fns, q, k, v, on, ln, oo, lo
                    torch.cuda.empty_cache()

def ab_dims(dims, Ls):
    print("E H L causal dtype | sm90 us | mma us | mma/sm90 | flash/sm90 | cudnn/sm90 | variants/sm90", flush=True)
    for E in dims:
        for L in Ls:
            for causal in (0, 1):
                for dt in DTYPES:
                    H = 16 if E <= 128 else 8
                    B = 16384 // L
                    q = torch.randn(B, H, L, E, dtype=dt, device="cuda"); k = torch.randn_like(q); v = torch.randn_like(q)
                    o, lse = torch.empty_like(q), torch.empty(B, H, L, dtype=torch.float32, device="cuda")
                    fns = {"sm90": prepare(q, k, v, o, lse, causal), "mma": prepare(q, k, v, o, lse, causal, sm90=False)}
                    assert fns["sm90"].info["sm90"] is not None
                    for name, (_, D, _, _) in flashlib.SM90_VARIANTS.items():
                        if D == E and (VARIANTS is None or name in VARIANTS):
                            fns[name] = prepare(q, k, v, o, lse, causal, sm90=name)
                    fns.update(torch_backends(q, k, v, causal))
                    t = best_of_rounds(fns, 2, rng)
                    fl = 4.0 * B * H * L * L * E * (0.5 if causal else 1.0) / (t["sm90"] * 1e-3) / 1e12
                    var = " ".join(f"{n} {t['sm90']/t[n]:.3f}" for n in t if n.startswith("d"))
                    print(f"{E} {H} {L} {causal} {str(dt)[6:]} | {t['sm90']*1e3:.1f} ({fl:.0f} TF) | {t['mma']*1e3:.1f} | {t['mma']/t['sm90']:.3f} | {t['flash']/t['sm90']:.3f} | {t['cudnn']/t['sm90']:.3f} | {var}", flush=True)
                    del fns, q, k, v, o, lse
                    torch.cuda.empty_cache()

if __name__ == "__main__":
    parts = os.environ.get("SM90_AB_PARTS", "quick,base,dims")
    if "quick" in parts and quick():
        sys.exit(1)
    if "base" in parts:
        assert BASE is not None, "SM90_BASE names the harness to compare against"
        ab_base()
    if "dims" in parts:
        ab_dims([int(x) for x in os.environ.get("SM90_AB_DIMS", "96,192").split(",")],
                [int(x) for x in os.environ.get("SM90_AB_LS", "1024,4096,16384").split(",")])
