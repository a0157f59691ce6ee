"""Training-path correctness: the provider's forward (with dropout) and backward kernels against a float64 autograd
reference with dev.sdpa4j.Dropout's mask, over head dims 8..256, causal both alignments, GQA/MQA, ragged and unit
lengths, fully masked rows, [B,L,H,E] strides, custom scale, deterministic mode (bit-identical reruns), both dropout
resolutions (WORD: one Philox call per 4 keys; BYTE: per 16 keys, 8-bit compares), plus exact kept-set checks of every
backward kernel (the mask read back from dV and from the sign of dQ) and 10 deterministic BYTE reruns.
With a forward that takes no `byte` argument (or CHECK_BYTE_FWD=ref), BYTE cases feed the backward the float64
reference's O and LSE instead of the kernel forward's (the forward's BYTE mask is then not checked here).
Usage: python3 check_bwd.py [seed]"""
import inspect, math, os, random, sys
import torch
import trainlib as tl

BYTE_FWD = "byte" in inspect.signature(tl.forward).parameters and os.environ.get("CHECK_BYTE_FWD") != "ref"

dev = "cuda"
FLOOR = {torch.float16: 1.2e-2, torch.bfloat16: 6e-2}  # max |err| / max(1, max |ref|), per tensor


def reference(q, k, v, dout, causal, scale, ks, keep, dt=torch.float64):
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
    if keep is not None:
        pm = pm * keep * ks
    o = pm @ vv
    o.backward(dout.to(dt))
    return o.detach(), lse.detach(), qd.grad, kd.grad, vd.grad


def d_rounding(q, k, v, dout, causal, scale, ks, keep, dt):
    """(dQ, dK) change in float64 when D = rowsum(dO o O) takes O rounded to dt, as the backward's preprocess (and
    FlashAttention-2's) computes it from the stored output: dS changes by P (D_exact - D_rounded). Where the exact dS
    cancels (Lk = 1: dK is 0) this is the whole of the kernel's error, which the eager reference (D from P o dP) lacks."""
    B, H, Lq, E = q.shape
    Hk, Lk = k.shape[1], k.shape[2]
    qd, kd, vd, dod = (x.detach().double() for x in (q, k, v, dout))
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
    pd = pm * keep * ks if keep is not None else pm
    o = pd @ vv
    dd = (dod * (o - o.to(dt).double())).sum(-1, keepdim=True)  # D_exact - D_rounded
    dds = pm * dd
    ddq = scale * dds @ kk
    ddk = (scale * dds.transpose(-1, -2) @ qd).view(B, Hk, H // Hk, Lk, E).sum(2)
    return ddq, ddk


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
    B, H, Hk, Lq, Lk, E, dt, causal, p, det, blhe, scale, byte = c
    torch.manual_seed(random.getrandbits(31))
    q = make((B, H, Lq, E), dt, blhe)
    k = make((B, Hk, Lk, E), dt, blhe)
    v = make((B, Hk, Lk, E), dt, blhe)
    dout = make((B, H, Lq, E), dt, blhe)
    o = empty_like_layout(q)
    lse = torch.full((B, H, Lq), float("nan"), device=dev)
    seed, offset = random.getrandbits(64), random.getrandbits(32)
    keep = tl.keep_mask(B, H, Lq, Lk, p, seed, offset, dev, byte) if p > 0 else None
    ks = tl.dropout_fields(p, seed, offset, byte)[3]
    sc = 1.0 / math.sqrt(E) if scale is None else scale
    ro, rlse, rq, rk, rv = reference(q, k, v, dout, causal, sc, ks, keep)
    lo = reference(q, k, v, dout, causal, sc, ks, keep, dt)
    if byte and not BYTE_FWD:
        o.copy_(ro)
        lse.copy_(rlse)
    elif byte:
        tl.forward(q, k, v, o, lse, causal, scale, p, seed, offset, byte=True)
    else:
        tl.forward(q, k, v, o, lse, causal, scale, p, seed, offset)
    dq, dk, dv = empty_like_layout(q), empty_like_layout(k), empty_like_layout(v)
    run = tl.Backward(q, k, v, o, lse, dout, dq, dk, dv, causal, scale, p, seed, offset, det, byte=byte)
    run()
    torch.cuda.synchronize()
    errs = dict(o=rel(o, ro), dq=rel(dq, rq), dk=rel(dk, rk), dv=rel(dv, rv))
    # tolerance: the floor, or 3x the error of the eager algorithm run in the input's precision
    tols = {n: max(FLOOR[dt], 3 * rel(x, r)) for n, x, r in zip(("o", "dq", "dk", "dv"), (lo[0], lo[2], lo[3], lo[4]),
                                                                  (ro, rq, rk, rv))}
    # plus 3x the dQ / dK change from D's rounded O (the kernels' formulation; see d_rounding)
    ddq, ddk = d_rounding(q, k, v, dout, causal, sc, ks, keep, dt)
    tols["dq"] = max(tols["dq"], 3 * rel(rq + ddq, rq))
    tols["dk"] = max(tols["dk"], 3 * rel(rk + ddk, rk))
    lse_ok = torch.equal(torch.isinf(lse), torch.isinf(rlse)) and (
        (lse - rlse).abs()[torch.isfinite(rlse)].max().item() < 2e-3 if torch.isfinite(rlse).any() else True)
    finite = all(torch.isfinite(x).all().item() for x in (o, dq, dk, dv))
    bits = True
    if det:
        dq2, dk2, dv2 = empty_like_layout(q), empty_like_layout(k), empty_like_layout(v)
        tl.Backward(q, k, v, o, lse, dout, dq2, dk2, dv2, causal, scale, p, seed, offset, det, byte=byte)()
        torch.cuda.synchronize()
        bits = all(torch.equal(a.view(torch.int16), b.view(torch.int16)) for a, b in ((dq, dq2), (dk, dk2), (dv, dv2)))
    ok = finite and lse_ok and bits and all(errs[n] <= tols[n] for n in errs)
    return ok, errs, lse_ok, finite, bits


def cases(seed):
    rnd = random.Random(seed)
    out = []
    fixed = [
        (1, 2, 2, 1, 1, 64, torch.float16, 0, 0.0, False, False, None, False),
        (1, 2, 1, 1, 300, 128, torch.bfloat16, 2, 0.1, False, False, None, False),
        (1, 4, 2, 300, 1, 64, torch.float16, 1, 0.0, True, False, None, False),
        (2, 4, 4, 200, 77, 128, torch.float16, 2, 0.0, False, False, None, False),    # fully masked rows
        (2, 4, 4, 200, 77, 128, torch.bfloat16, 2, 0.2, True, False, None, False),
        (1, 8, 1, 257, 513, 64, torch.bfloat16, 1, 0.0, False, True, 0.3, False),     # MQA, [B,L,H,E], custom scale
        (1, 2, 2, 130, 190, 256, torch.float16, 0, 0.1, False, False, None, False),
        (1, 2, 2, 130, 190, 256, torch.bfloat16, 1, 0.0, True, False, None, False),
        (1, 3, 3, 100, 100, 8, torch.float16, 1, 0.0, False, False, -0.5, False),    # negative scale
        (1, 2, 2, 64, 64, 32, torch.bfloat16, 0, 0.5, False, False, None, False),
        (1, 6, 2, 333, 444, 96, torch.float16, 2, 0.0, False, True, None, False),
        (1, 2, 2, 129, 1000, 200, torch.bfloat16, 0, 0.0, False, False, None, False),
        (1, 2, 1, 1000, 129, 80, torch.float16, 1, 0.1, True, False, None, False),
        (2, 16, 16, 1024, 1024, 128, torch.bfloat16, 1, 0.0, False, False, None, False),
        (2, 16, 16, 1024, 1024, 64, torch.float16, 0, 0.1, False, False, None, False),
        # BYTE resolution: every backward kernel (sm90 wgmma at E = 64 / 128 fast mode, mma.sync exact and _pad,
        # deterministic main + dq kernels), causal both ways, GQA / MQA, ragged lengths, [B,L,H,E], scale
        (1, 2, 1, 1, 300, 128, torch.bfloat16, 2, 0.1, False, False, None, True),
        (2, 4, 4, 200, 77, 128, torch.bfloat16, 2, 0.2, True, False, None, True),
        (1, 8, 2, 257, 513, 64, torch.float16, 1, 0.1, False, True, 0.3, True),
        (1, 2, 2, 130, 190, 256, torch.float16, 0, 0.1, False, False, None, True),
        (1, 2, 2, 130, 190, 256, torch.bfloat16, 1, 0.3, True, False, None, True),
        (1, 2, 2, 64, 64, 32, torch.bfloat16, 0, 0.5, False, False, None, True),
        (1, 2, 2, 64, 64, 32, torch.float16, 2, 0.5, True, False, None, True),
        (1, 6, 2, 333, 444, 96, torch.float16, 2, 0.1, False, True, None, True),
        (1, 2, 1, 1000, 129, 80, torch.float16, 1, 0.1, True, False, None, True),
        (1, 4, 2, 300, 1, 64, torch.float16, 1, 0.1, True, False, None, True),
        (2, 16, 16, 1024, 1024, 64, torch.float16, 0, 0.1, False, False, None, True),
        (2, 8, 4, 1024, 1024, 128, torch.bfloat16, 1, 0.1, False, False, None, True),
        (1, 8, 8, 700, 900, 128, torch.bfloat16, 0, 0.1, True, False, None, True),
        (1, 4, 2, 500, 333, 64, torch.float16, 2, 0.15, True, True, None, True),
    ]
    out += fixed
    for _ in range(40):
        E = rnd.choice([8, 16, 24, 32, 40, 64, 64, 72, 96, 120, 128, 128, 136, 160, 192, 248, 256])
        Hk = rnd.choice([1, 2, 3])
        G = rnd.choice([1, 1, 2, 4])
        out.append((rnd.choice([1, 2]), Hk * G, Hk, rnd.choice([1, 5, 63, 64, 65, 127, 200, 383]),
                    rnd.choice([1, 7, 64, 128, 129, 300, 511]), E, rnd.choice([torch.float16, torch.bfloat16]),
                    rnd.choice([0, 1, 2]), rnd.choice([0.0, 0.0, 0.15]), rnd.choice([False, True]),
                    rnd.choice([False, True]), rnd.choice([None, None, 0.7]), rnd.choice([False, True])))
    return out


def kept_set(B, H, Hk, Lq, Lk, E, dt, p, det, byte, sm90):
    """The kernels' kept set, exactly: with Q = 0 every score is 0 (P = 1/Lk, LSE = log Lk). (a) dO rows = unit
    vectors (Lq <= E): dV[j, i] = P_drop[i, j], so dV != 0 iff (i, j) is kept (H = Hk); (b) K rows = unit vectors
    (Lk <= E), V = 1/2, dO = 1: dQ[i, j] = scale * dS[i, j] = scale * P * (keep * ks * E / 2 - D_i) with D_i =
    E/2 * ks * (kept keys of row i) / Lk, negative iff (i, j) is dropped. Returns the number of wrong elements of (a)
    (-1 when not applicable) and (b)."""
    seed, offset = random.getrandbits(64), random.getrandbits(32)
    keep = tl.keep_mask(B, H, Lq, Lk, p, seed, offset, dev, byte)
    ks = tl.dropout_fields(p, seed, offset, byte)[3]
    variant = {"sm90": sm90}
    q = torch.zeros(B, H, Lq, E, dtype=dt, device=dev)
    lse = torch.full((B, H, Lq), math.log(Lk), device=dev)
    bad_v = -1
    if H == Hk and Lq <= E:
        k = torch.randn(B, Hk, Lk, E, device=dev).to(dt)
        v = torch.randn(B, Hk, Lk, E, device=dev).to(dt)
        dout = torch.eye(Lq, E, device=dev).to(dt).expand(B, H, Lq, E).contiguous()
        o = ((keep.double() * ks / Lk) @ v.double()).to(dt)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        tl.Backward(q, k, v, o, lse, dout, dq, dk, dv, 0, None, p, seed, offset, det, variant, byte)()
        torch.cuda.synchronize()
        bad_v = int(((dv[..., :Lq].transpose(-1, -2) != 0) != keep).sum().item())
    bad_q = -1
    if Lk <= E:
        k = torch.eye(Lk, E, device=dev).to(dt).expand(B, Hk, Lk, E).contiguous()
        v = torch.full((B, Hk, Lk, E), 0.5, dtype=dt, device=dev)
        dout = torch.ones(B, H, Lq, E, dtype=dt, device=dev)
        o = ((keep.double() * ks / Lk).sum(-1, keepdim=True) * 0.5).expand(B, H, Lq, E).to(dt).contiguous()
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        tl.Backward(q, k, v, o, lse, dout, dq, dk, dv, 0, None, p, seed, offset, det, variant, byte)()
        torch.cuda.synchronize()
        nk = keep.sum(-1, keepdim=True)
        rows = ((nk > 0) & (nk < Lk)).expand_as(keep)  # rows where both signs are defined
        bad_q = int((((dq[..., :Lk] < 0) != ~keep) & rows).sum().item())
    return bad_v, bad_q


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1234
    random.seed(seed)
    print(f"check_bwd seed {seed}")
    fails = 0
    worst = {torch.float16: {}, torch.bfloat16: {}}
    all_cases = cases(seed)
    for c in all_cases:
        ok, errs, lse_ok, finite, bits = run_case(c)
        B, H, Hk, Lq, Lk, E, dt, causal, p, det, blhe, scale, byte = c
        for n, e in errs.items():
            worst[dt][n] = max(worst[dt].get(n, 0), e)
        if not ok:
            fails += 1
        print(("ok  " if ok else "FAIL") + f" B={B} H={H}/{Hk} Lq={Lq} Lk={Lk} E={E} {str(dt)[6:]} causal={causal} p={p}"
              f" det={det} blhe={blhe} scale={scale} {'BYTE' if byte and p > 0 else 'WORD'} " + " ".join(f"{n}={e:.2e}" for n, e in errs.items())
              + ("" if lse_ok else " LSE-MISMATCH") + ("" if finite else " NONFINITE") + ("" if bits else " BITS-DIFFER"))
    # exact kept sets: the Hopper wgmma kernel (sm90, E = 64 / 128 fast mode), the mma.sync main kernels (exact and
    # _pad head dims) and the deterministic main + dq kernels, both resolutions
    nmask = 0
    for byte in (False, True):
        for E, Lq, Lk, H, Hk, dt, p in ((128, 128, 120, 2, 2, torch.bfloat16, 0.1), (64, 64, 60, 3, 3, torch.float16, 0.3),
                                       (96, 96, 90, 2, 2, torch.float16, 0.1), (128, 300, 127, 4, 2, torch.float16, 0.2),
                                       (256, 200, 250, 2, 2, torch.bfloat16, 0.1), (32, 32, 31, 2, 1, torch.bfloat16, 0.5)):
            for sm90, det in ((True, False), (False, False), (False, True)):
                if sm90 and E not in tl.SM90_TRAITS:
                    continue
                bad_v, bad_q = kept_set(2, H, Hk, Lq, Lk, E, dt, p, det, byte, sm90)
                ok = bad_v <= 0 and bad_q <= 0
                nmask += 1
                fails += 0 if ok else 1
                print(("ok  " if ok else "FAIL") + f" kept set {'BYTE' if byte else 'WORD'} E={E} Lq={Lq} Lk={Lk} H={H}/{Hk}"
                      f" {str(dt)[6:]} p={p} sm90={sm90} det={det}: wrong dV {bad_v}, wrong dQ signs {bad_q}")
    # deterministic mode, BYTE: 10 runs bit-identical
    ndet = 0
    for B, H, Hk, L, E, dt, causal in ((2, 8, 2, 1024, 128, torch.bfloat16, 1), (1, 16, 16, 1536, 64, torch.float16, 0),
                                       (1, 4, 4, 700, 96, torch.bfloat16, 2)):
        q, k, v, dout = (torch.randn(B, h, L, E, device=dev).to(dt) for h in (H, Hk, Hk, H))
        o, lse = torch.empty_like(q), torch.empty(B, H, L, device=dev)
        seed, offset = random.getrandbits(64), random.getrandbits(32)
        if BYTE_FWD:
            tl.forward(q, k, v, o, lse, causal, None, 0.1, seed, offset, byte=True)
        else:
            tl.forward(q, k, v, o, lse, causal, None, 0.0, 0, 0)  # any O and LSE do for a bitwise comparison
        outs = []
        for _ in range(10):
            g = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
            tl.Backward(q, k, v, o, lse, dout, *g, causal, None, 0.1, seed, offset, True, byte=True)()
            outs.append(torch.cat([x.reshape(-1).view(torch.int16) for x in g]))
        torch.cuda.synchronize()
        same = all(torch.equal(outs[0], x) for x in outs[1:])
        ndet += 1
        fails += 0 if same else 1
        print(("ok  " if same else "FAIL") + f" deterministic BYTE x10 B={B} H={H}/{Hk} L={L} E={E} {str(dt)[6:]} "
              f"causal={causal}: " + ("bit-identical" if same else "BITS DIFFER"))
    print(f"check_bwd: {len(all_cases)} cases + {nmask} kept-set checks + {ndet} deterministic x10, {fails} failures"
          f" (BYTE forward: {'kernel' if BYTE_FWD else 'float64 reference O/LSE'}); worst " +
          "; ".join(f"{str(d)[6:]} " + " ".join(f"{n}={e:.1e}" for n, e in w.items()) for d, w in worst.items()))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
