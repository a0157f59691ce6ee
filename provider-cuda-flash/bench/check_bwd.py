"""Training-path correctness: the provider's forward (with dropout) and backward kernels against a float64 autograd
reference with dev.sdpa4j.Dropout's mask, over head dims 8..256, causal both alignments, GQA/MQA, ragged and unit
lengths, fully masked rows, [B,L,H,E] strides, custom scale, deterministic mode (bit-identical reruns).
Usage: python3 check_bwd.py [seed]"""
import math, random, sys
import torch
import trainlib as tl

dev = "cuda"
FLOOR = {torch.float16: 1.2e-2, torch.bfloat16: 6e-2}  # max |err| / max(1, max |ref|), per tensor


def reference(q, k, v, dout, causal, scale, p, keep, dt=torch.float64):
    """Attention and its gradients computed in dt (float64: the reference; the input dtype: the eager algorithm's
    rounding, which sets the tolerance as PyTorch's tests do)."""
    B, H, Lq, E = q.shape
    Hk, Lk = k.shape[1], k.shape[2]
    qd, kd, vd = (x.detach().to(dt).requires_grad_() for x in (q, k, v))
    kk = kd.repeat_interleave(H // Hk, dim=1)
    vv = vd.repeat_interleave(H // Hk, dim=1)
    s = scale * qd @ kk.transpose(-1, -2)
    if causal:
        off = 0 if causal == 1 else Lk - Lq
        i = torch.arange(Lq, device=dev)[:, None]
        j = torch.arange(Lk, device=dev)[None, :]
        s = s.masked_fill(j > i + off, float("-inf"))
    lse = torch.logsumexp(s, -1)
    valid = torch.isfinite(lse)[..., None]
    pm = torch.softmax(torch.where(valid, s, torch.zeros_like(s)), -1) * valid
    if p > 0:
        pm = pm * keep / (1 - p)
    o = pm @ vv
    o.backward(dout.to(dt))
    return o.detach(), lse.detach(), qd.grad, kd.grad, vd.grad


def rel(a, ref):
    return ((a.double() - ref).abs().max() / max(1.0, ref.abs().max().item())).item()


def make(shape, dt, blhe):
    B, H, L, E = shape
    if blhe:
        return torch.randn(B, L, H, E, device=dev).to(dt).transpose(1, 2)
    return torch.randn(B, H, L, E, device=dev).to(dt)


def empty_like_layout(x):
    B, H, L, E = x.shape
    if x.stride(1) == E and x.stride(2) == H * E:  # [B,L,H,E] memory
        return torch.full((B, L, H, E), float("nan"), dtype=x.dtype, device=dev).transpose(1, 2)
    return torch.full((B, H, L, E), float("nan"), dtype=x.dtype, device=dev)


def run_case(c):
    B, H, Hk, Lq, Lk, E, dt, causal, p, det, blhe, scale = c
    torch.manual_seed(random.getrandbits(31))
    q = make((B, H, Lq, E), dt, blhe)
    k = make((B, Hk, Lk, E), dt, blhe)
    v = make((B, Hk, Lk, E), dt, blhe)
    dout = make((B, H, Lq, E), dt, blhe)
    o = empty_like_layout(q)
    lse = torch.full((B, H, Lq), float("nan"), device=dev)
    seed, offset = random.getrandbits(63), random.getrandbits(32)
    tl.forward(q, k, v, o, lse, causal, scale, p, seed, offset)
    dq, dk, dv = empty_like_layout(q), empty_like_layout(k), empty_like_layout(v)
    run = tl.Backward(q, k, v, o, lse, dout, dq, dk, dv, causal, scale, p, seed, offset, det)
    run()
    torch.cuda.synchronize()
    keep = tl.keep_mask(B, H, Lq, Lk, p, seed, offset, dev) if p > 0 else None
    sc = 1.0 / math.sqrt(E) if scale is None else scale
    ro, rlse, rq, rk, rv = reference(q, k, v, dout, causal, sc, p, keep)
    lo = reference(q, k, v, dout, causal, sc, p, keep, dt)
    errs = dict(o=rel(o, ro), dq=rel(dq, rq), dk=rel(dk, rk), dv=rel(dv, rv))
    # tolerance: the floor, or 3x the error of the eager algorithm run in the input's precision
    tols = {n: max(FLOOR[dt], 3 * rel(x, r)) for n, x, r in zip(("o", "dq", "dk", "dv"), (lo[0], lo[2], lo[3], lo[4]),
                                                                  (ro, rq, rk, rv))}
    lse_ok = torch.equal(torch.isinf(lse), torch.isinf(rlse)) and (
        (lse - rlse).abs()[torch.isfinite(rlse)].max().item() < 2e-3 if torch.isfinite(rlse).any() else True)
    finite = all(torch.isfinite(x).all().item() for x in (o, dq, dk, dv))
    bits = True
    if det:
        dq2, dk2, dv2 = empty_like_layout(q), empty_like_layout(k), empty_like_layout(v)
        tl.Backward(q, k, v, o, lse, dout, dq2, dk2, dv2, causal, scale, p, seed, offset, det)()
        torch.cuda.synchronize()
        bits = all(torch.equal(a.view(torch.int16), b.view(torch.int16)) for a, b in ((dq, dq2), (dk, dk2), (dv, dv2)))
    ok = finite and lse_ok and bits and all(errs[n] <= tols[n] for n in errs)
    return ok, errs, lse_ok, finite, bits


def cases(seed):
    rnd = random.Random(seed)
    out = []
    fixed = [
        (1, 2, 2, 1, 1, 64, torch.float16, 0, 0.0, False, False, None),
        (1, 2, 1, 1, 300, 128, torch.bfloat16, 2, 0.1, False, False, None),
        (1, 4, 2, 300, 1, 64, torch.float16, 1, 0.0, True, False, None),
        (2, 4, 4, 200, 77, 128, torch.float16, 2, 0.0, False, False, None),    # fully masked rows
        (2, 4, 4, 200, 77, 128, torch.bfloat16, 2, 0.2, True, False, None),
        (1, 8, 1, 257, 513, 64, torch.bfloat16, 1, 0.0, False, True, 0.3),     # MQA, [B,L,H,E], custom scale
        (1, 2, 2, 130, 190, 256, torch.float16, 0, 0.1, False, False, None),
        (1, 2, 2, 130, 190, 256, torch.bfloat16, 1, 0.0, True, False, None),
        (1, 3, 3, 100, 100, 8, torch.float16, 1, 0.0, False, False, -0.5),    # negative scale
        (1, 2, 2, 64, 64, 32, torch.bfloat16, 0, 0.5, False, False, None),
        (1, 6, 2, 333, 444, 96, torch.float16, 2, 0.0, False, True, None),
        (1, 2, 2, 129, 1000, 200, torch.bfloat16, 0, 0.0, False, False, None),
        (1, 2, 1, 1000, 129, 80, torch.float16, 1, 0.1, True, False, None),
        (2, 16, 16, 1024, 1024, 128, torch.bfloat16, 1, 0.0, False, False, None),
        (2, 16, 16, 1024, 1024, 64, torch.float16, 0, 0.1, False, False, None),
    ]
    out += fixed
    for _ in range(30):
        E = rnd.choice([8, 16, 24, 32, 40, 64, 64, 72, 96, 120, 128, 128, 136, 160, 192, 248, 256])
        Hk = rnd.choice([1, 2, 3])
        G = rnd.choice([1, 1, 2, 4])
        out.append((rnd.choice([1, 2]), Hk * G, Hk, rnd.choice([1, 5, 63, 64, 65, 127, 200, 383]),
                    rnd.choice([1, 7, 64, 128, 129, 300, 511]), E, rnd.choice([torch.float16, torch.bfloat16]),
                    rnd.choice([0, 1, 2]), rnd.choice([0.0, 0.0, 0.15]), rnd.choice([False, True]),
                    rnd.choice([False, True]), rnd.choice([None, None, 0.7])))
    return out


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1234
    random.seed(seed)
    print(f"check_bwd seed {seed}")
    fails = 0
    worst = {torch.float16: {}, torch.bfloat16: {}}
    all_cases = cases(seed)
    for c in all_cases:
        ok, errs, lse_ok, finite, bits = run_case(c)
        B, H, Hk, Lq, Lk, E, dt, causal, p, det, blhe, scale = c
        for n, e in errs.items():
            worst[dt][n] = max(worst[dt].get(n, 0), e)
        if not ok:
            fails += 1
        print(("ok  " if ok else "FAIL") + f" B={B} H={H}/{Hk} Lq={Lq} Lk={Lk} E={E} {str(dt)[6:]} causal={causal} p={p}"
              f" det={det} blhe={blhe} scale={scale} " + " ".join(f"{n}={e:.2e}" for n, e in errs.items())
              + ("" if lse_ok else " LSE-MISMATCH") + ("" if finite else " NONFINITE") + ("" if bits else " BITS-DIFFER"))
    print(f"check_bwd: {len(all_cases)} cases, {fails} failures; worst " +
          "; ".join(f"{str(d)[6:]} " + " ".join(f"{n}={e:.1e}" for n, e in w.items()) for d, w in worst.items()))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
