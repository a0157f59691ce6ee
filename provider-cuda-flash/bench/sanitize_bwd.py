"""Representative training shapes for compute-sanitizer (memcheck, racecheck): forward with dropout, backward in
fast and deterministic mode, head dims 8..256 (exact and predicated kernels), ragged lengths, GQA, causal both ways;
the dropout shapes once at each mask resolution (WORD, BYTE: the BYTE backward after a WORD forward, which only sets O
and LSE)."""
import torch
import trainlib as tl

SHAPES = [  # B, H, Hk, Lq, Lk, E, dtype, causal, p, deterministic
    (1, 2, 1, 130, 200, 64, torch.float16, 2, 0.1, False),
    (1, 2, 2, 65, 129, 128, torch.bfloat16, 1, 0.0, False),
    (1, 4, 2, 100, 70, 120, torch.float16, 2, 0.2, True),
    (1, 2, 2, 33, 47, 256, torch.bfloat16, 0, 0.1, False),
    (1, 2, 1, 70, 90, 200, torch.float16, 1, 0.0, True),
    (1, 2, 2, 1, 300, 32, torch.bfloat16, 0, 0.0, False),
    (1, 2, 2, 300, 1, 8, torch.float16, 2, 0.1, True),
    (1, 2, 2, 64, 128, 64, torch.bfloat16, 0, 0.0, True),
    (1, 2, 1, 150, 140, 64, torch.float16, 0, 0.0, False),
    (1, 2, 2, 96, 260, 128, torch.bfloat16, 1, 0.1, False),
    (1, 4, 2, 200, 300, 128, torch.float16, 0, 0.0, False),  # GQA through the Hopper wgmma kernel (sm_90)
    (2, 4, 1, 70, 300, 64, torch.bfloat16, 2, 0.1, False),
    (1, 2, 2, 100, 200, 64, torch.float16, 1, 0.1, True),      # deterministic dq kernel, exact head dim
    (1, 2, 1, 90, 130, 128, torch.bfloat16, 0, 0.1, False),    # wgmma _drop, GQA, partial tiles
]
for B, H, Hk, Lq, Lk, E, dt, causal, p, det in SHAPES:
    q = torch.randn(B, H, Lq, E, dtype=dt, device="cuda")
    k = torch.randn(B, Hk, Lk, E, dtype=dt, device="cuda")
    v = torch.randn(B, Hk, Lk, E, dtype=dt, device="cuda")
    dout = torch.randn(B, H, Lq, E, dtype=dt, device="cuda")
    o = torch.empty_like(q)
    lse = torch.empty(B, H, Lq, dtype=torch.float32, device="cuda")
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    tl.forward(q, k, v, o, lse, causal, None, p, 7, 1)
    for byte in ((False, True) if p > 0 else (False,)):
        tl.Backward(q, k, v, o, lse, dout, dq, dk, dv, causal, None, p, 7, 1, det, byte=byte)()
        torch.cuda.synchronize()
        print(f"ok B={B} H={H}/{Hk} Lq={Lq} Lk={Lk} E={E} {dt} causal={causal} p={p} det={det}"
              f" {'BYTE' if byte else 'WORD'}", flush=True)
print("sanitize_bwd done")
