"""Times edited copies of memeff_fwd.cu (compiled to separate cubins) against PyTorch's efficient backend on chosen
shapes of the issue's grid, and prints the fp32 error of each against a float64 reference next to PyTorch's.

usage: python3 variants.py SPEC...   with SPEC = CUBIN:DTYPES[:ENV=VALUE,...], DTYPES from f16,bf16,f32 joined by '+'
  e.g. fB.cubin:f32:MEMEFF_F32_Q128=8/1/16/2   (harness tile override, '/' for ',')
Rows: E = 128 at L = 1024 and 4096 with the issue's masks for 16-bit (no mask for fp32), plus fp32 E = 64 at L = 1024.
"""
import importlib, math, os, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
DTS = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}


def harness(env):
    for k in [k for k in os.environ if k.startswith("MEMEFF_")]:
        del os.environ[k]
    for k, v in env.items():
        os.environ[k] = v
    import memeff_harness as h
    h = importlib.reload(h)
    h.MAX_SMEM = torch.cuda.get_device_properties(0).shared_memory_per_block_optin
    return h


def rows(dt):
    if dt == torch.float32:
        return [("none", 128, 1024), ("none", 128, 4096), ("none", 64, 1024)]
    return [(m, 128, L) for L in (1024, 4096) for m in ("none", "keypad-bool", "bias")]


def run(spec):
    parts = spec.split(":")
    env = dict(kv.replace("/", ",").split("=", 1) for kv in parts[2].split(",")) if len(parts) > 2 else {}
    h = harness(env)
    mod = h.Module(parts[0])
    for name in parts[1].split("+"):
        dt = DTS[name]
        if dt == torch.float32:
            torch.manual_seed(1)
            q, k, v = (torch.randn(1, 4, 1024, 128, device="cuda") for _ in range(3))
            ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
            o = torch.empty_like(q)
            h.launch(mod, q, k, v, o)
            rel = lambda x: ((x.double() - ref).norm() / ref.norm()).item()
            with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                te = F.scaled_dot_product_attention(q, k, v)
            with sdpa_kernel(SDPBackend.MATH):
                tm = F.scaled_dot_product_attention(q, k, v)
            q32 = lambda x: (x.view(torch.int32) & ~0x1FFF).view(torch.float32)  # inputs truncated to TF32
            t1 = F.scaled_dot_product_attention(q32(q).double(), q32(k).double(), q32(v).double())
            print(f"{parts[0]} f32 E128 L1024 rel err vs float64: ours {rel(o):.2e}  torch efficient {rel(te):.2e}"
                  f"  torch math fp32 {rel(tm):.2e}  (inputs rounded to tf32: {rel(t1):.2e})", flush=True)
        for mk, E, L in rows(dt):
            H, B = 2048 // E, 16384 // L
            q, k, v = (torch.randn(B, H, L, E, device="cuda", dtype=dt) for _ in range(3))
            if mk == "keypad-bool":
                lens = torch.randint(L // 2, L + 1, (B,), device="cuda")
                mask = torch.arange(L, device="cuda").view(1, 1, 1, L) < lens.view(B, 1, 1, 1)
            elif mk == "bias":
                mask = torch.randn(1, H, L, L, device="cuda", dtype=dt)
            else:
                mask = None
            o = torch.empty_like(q)
            it = 10 if dt == torch.float32 or L >= 4096 else 20
            t_m = h.timeit(lambda: h.launch(mod, q, k, v, o, None, mask), it)
            with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                t_t = h.timeit(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), it)
                ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            err = ((o.float() - ref.float()).norm() / ref.float().norm()).item()
            fl = 4.0 * B * H * L * L * E
            print(f"{parts[0]:10s} {name:4s} {mk:11s} E{E:3d} L{L:5d} ours {fl / t_m / 1e9:6.1f} torch "
                  f"{fl / t_t / 1e9:6.1f} TF/s x{t_t / t_m:.3f} err {err:.1e}", flush=True)
            del q, k, v, o, mask, ref


if __name__ == "__main__":
    for s in sys.argv[1:]:
        run(s)
