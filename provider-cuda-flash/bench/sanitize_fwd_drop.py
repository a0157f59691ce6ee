"""Shapes for compute-sanitizer (memcheck, racecheck) of the forward's _drop kernels at both mask resolutions: the
mma.sync kernels (flash_fwd.cu, exact and predicated head dims) and the Hopper wgmma kernels (flash_fwd_sm90.cu, head
dims 64 / 128 / 256), ragged lengths, GQA, causal both ways, Lq > Lk (fully masked rows)."""
import torch
import trainlib as tl

SHAPES = [  # B, H, Hk, Lq, Lk, E, dtype, causal, sm90
    (1, 2, 1, 130, 200, 64, torch.float16, 2, False),
    (1, 2, 2, 65, 129, 128, torch.bfloat16, 1, False),
    (1, 4, 2, 100, 70, 120, torch.float16, 2, False),
    (1, 2, 2, 33, 47, 256, torch.bfloat16, 0, False),
    (1, 2, 1, 70, 90, 200, torch.float16, 1, False),
    (1, 2, 2, 300, 10, 8, torch.float16, 2, False),
    (1, 2, 1, 200, 333, 64, torch.float16, 1, True),
    (2, 4, 2, 300, 1000, 64, torch.bfloat16, 0, True),
    (1, 4, 2, 130, 70, 128, torch.bfloat16, 2, True),
    (1, 2, 1, 257, 700, 128, torch.float16, 0, True),
    (1, 1, 1, 70, 100, 256, torch.bfloat16, 1, True),
    (1, 2, 1, 300, 450, 256, torch.float16, 0, True),
]
for byte in (False, True):
    for B, H, Hk, Lq, Lk, E, dt, causal, sm90 in SHAPES:
        q = torch.randn(B, H, Lq, E, dtype=dt, device="cuda")
        k = torch.randn(B, Hk, Lk, E, dtype=dt, device="cuda")
        v = torch.randn(B, Hk, Lk, E, dtype=dt, device="cuda")
        o = torch.empty_like(q)
        lse = torch.empty(B, H, Lq, dtype=torch.float32, device="cuda")
        tl.forward(q, k, v, o, lse, causal, None, 0.1, 7, 1, byte=byte, sm90=sm90)
        torch.cuda.synchronize()
        print("ok", "byte" if byte else "word", (B, H, Hk, Lq, Lk, E, dt, causal, sm90), flush=True)
print("sanitize_fwd_drop done")
