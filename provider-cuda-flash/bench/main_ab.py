"""The main kernel against an earlier harness (FLASH_HARNESS_BASE) and PyTorch's flash and cuDNN backends, shape by
shape: one set of q, k, v [B, H, L, E] per shape, every variant timed in a shuffled order over 3 rounds, the best of
each (bench.graph_time: median of 7 replays of a 5-call CUDA graph); O and the LSE compared bit for bit with the
base harness's on the same inputs.

SHAPES "B:L:E:H:dtype:causal,..." (causal 0 / 1 = top-left); MAIN_AB_SM90=0 runs the mma.sync kernels where FlashPlan
would take the Hopper wgmma ones. Prints one line per shape (forward v21's tables)."""
import os, random
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from bench import graph_time
from flashlib import BASE_LIB, prepare
from placement import best_of_rounds


def main():
    assert BASE_LIB is not None, "FLASH_HARNESS_BASE names the harness to compare against"
    rng = random.Random(5)
    kw = dict(sm90=False) if os.environ.get("MAIN_AB_SM90") == "0" else {}
    print("E H B L dtype causal | ours us | base us | base / ours | bits | flash / ours | cudnn / ours")
    for s in os.environ["SHAPES"].split(","):
        B, L, E, H, dt, c = s.split(":")
        B, L, E, H, c = int(B), int(L), int(E), int(H), int(c)
        q = torch.randn(B, H, L, E, dtype=getattr(torch, dt), device="cuda")
        k, v = torch.randn_like(q), torch.randn_like(q)
        outs = {n: (torch.empty_like(q), torch.empty(B, H, L, dtype=torch.float32, device="cuda")) for n in ("ours", "base")}
        fns = {"ours": prepare(q, k, v, *outs["ours"], c, **kw),
               "base": prepare(q, k, v, *outs["base"], c, lib=BASE_LIB, **kw)}
        for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            def sdpa(be=be):
                with sdpa_kernel([be]):
                    F.scaled_dot_product_attention(q, k, v, is_causal=bool(c))
            try:
                sdpa()
                fns[name] = sdpa
            except RuntimeError:
                pass   # the backend does not take this shape
        for f in fns.values():
            f()
        torch.cuda.synchronize()
        same = all(torch.equal(a, b) for a, b in zip(outs["ours"], outs["base"]))
        t = best_of_rounds(fns, rounds=3, rng=rng, timer=lambda fn: graph_time(fn, calls=5, reps=7)[0])
        peer = " | ".join(f"{t[n] / t['ours']:.3f}" if n in t else "-" for n in ("flash", "cudnn"))
        print(f"{E:>3} {H:>2} {B:>2} {L:>5} {dt} {c} | {t['ours'] * 1000:8.1f} | {t['base'] * 1000:8.1f} | "
              f"{t['base'] / t['ours']:.3f} | {'same' if same else 'differ'} | {peer}", flush=True)
        del fns, outs, q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
