"""Standalone harness for memeff_bwd.cu: runs the forward cubin (memeff_harness.launch, with LSE) and the backward
cubin's kernels through the driver API on torch tensors, checks dQ/dK/dV against float64 autograd (dropout through
memeff_harness's numpy Philox, identical to dev.sdpa4j.Philox4x32) on both backward paths, checks the bit-reproducibility
of the deterministic path, and times forward + backward against PyTorch's efficient SDPA backend (same tensors, same
mask, same process).

usage: python3 memeff_bwd_harness.py FWD_CUBIN BWD_CUBIN MODE [out.json]
  MODE check | quick   correctness suite (quick: small shapes, for compute-sanitizer)
       determinism     10 deterministic backward runs per case, bits compared
       parts           forward and each backward kernel timed alone (bf16, L = 4096)
       bench | qbench  the training-step grid of issue 8 (qbench: bf16, L from QB_L, default 1024,4096)
The launch table mirrors MemeffBackwardKernel.java; MEMEFF_BWD_D64 / MEMEFF_BWD_D128 ("KBM,KBN,KST,QBM,QBN,QST")
override the 16-bit tiles to time an edited copy of the kernel compiled with the same tiles; MEMEFF_FULL=0 launches the
bounds-tested kernels only (for cubins built before the `...f` kernels existed). See device_bwd_run.sh and
device_full_run.sh.
"""
import ctypes, json, math, os, struct, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memeff_harness as fw

LOG2E = 1.4426950408889634
DT = {torch.float16: "f16", torch.bfloat16: "bf16", torch.float32: "f32"}


def _cfg(env, default):
    return tuple(int(x) for x in os.environ.get(env, default).split(","))


# (DC, KBM, KBN, KST, QBM, QBN, QST) per padded head dim
CFG16 = {64: (64,) + _cfg("MEMEFF_BWD_D64", "32,64,2,64,64,2"), 128: (128,) + _cfg("MEMEFF_BWD_D128", "32,64,2,64,32,2"),
         256: (128, 32, 32, 1, 32, 32, 1), 512: (128, 16, 32, 1, 16, 32, 1)}
CFG32 = {64: (64, 32, 64, 2, 64, 32, 2), 128: (64, 32, 32, 1, 32, 32, 1), 256: (64, 16, 32, 1, 16, 32, 1),
         512: (64, 8, 16, 1, 16, 8, 1)}


def config(dtype, e, ev):
    m = max(e, ev)
    d = 64 if m <= 64 else 128 if m <= 128 else 256 if m <= 256 else 512
    dc, kbm, kbn, kst, qbm, qbn, qst = (CFG32 if dtype == torch.float32 else CFG16)[d]
    pad, esz = (4, 4) if dtype == torch.float32 else (8, 2)
    smem_kv = (2 * kbn + 2 * kst * kbm) * (d + pad) * esz + 2 * kst * kbm * 4
    smem_q = (2 * qbm + 2 * qst * qbn) * (d + pad) * esz
    return d, dc, kbm, kbn, kst, qbm, qbn, qst, smem_kv, smem_q


def aligned(t, vec):
    s = t.stride()
    return s[3] == 1 and all(x % vec == 0 for x in s[:3]) and t.data_ptr() % 16 == 0


def pair_ok(t):
    s = t.stride()
    return s[3] == 1 and all(x % 2 == 0 for x in s[:3]) and t.data_ptr() % (2 * t.element_size()) == 0


def launch_bwd(mod, q, k, v, o, lse, do, dq, dk, dv, mask=None, causal=0, scale=None, p=0.0, seed=0, offset=0,
               stat=None, only=("pre", "dkdv", "dq"), atomic=True, acc=None):
    B, Hq, Lq, E = q.shape
    Hkv, Lk, Ev = k.shape[1], k.shape[2], v.shape[3]
    d, dc, kbm, kbn, kst, qbm, qbn, qst, smem_kv, smem_q = config(q.dtype, E, Ev)
    vec = 4 if q.dtype == torch.float32 else 8
    flags = (1 if aligned(q, vec) and E % vec == 0 else 0) | (2 if aligned(k, vec) and E % vec == 0 else 0)
    flags |= (4 if aligned(v, vec) and Ev % vec == 0 else 0) | (8 if aligned(do, vec) and Ev % vec == 0 else 0)
    flags |= (16 if pair_ok(dq) else 0) | (32 if pair_ok(dk) else 0) | (64 if pair_ok(dv) else 0)
    mk, mstr, mptr = 0, [0, 0, 0, 0], 0
    if mask is not None:
        mstr = list(mask.expand(B, Hq, Lq, Lk).stride())
        mk = {torch.bool: 1, torch.float32: 2, torch.float16: 3, torch.bfloat16: 4}[mask.dtype]
        mptr = mask.data_ptr()
    sc = scale if scale is not None else 1.0 / math.sqrt(E)
    rows = B * Hq * Lq
    if stat is None:
        stat = torch.empty(2 * rows, device="cuda", dtype=torch.float32)
    atomic = atomic and q.dtype != torch.float32 and d <= 128
    if atomic:
        if acc is None:
            acc = torch.zeros(rows * E, device="cuda", dtype=torch.float32)
        else:
            acc.zero_()
    coff = 0 if causal != 2 else Lk - Lq
    thr = int(math.floor(p * 4294967296.0)) if p > 0 else 0
    s = torch.cuda.current_stream().cuda_stream

    def params(tiles, chunks):
        vals = [q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), do.data_ptr(), lse.data_ptr(), mptr,
                dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), stat.data_ptr()]
        vals += list(q.stride()) + list(k.stride()) + list(v.stride()) + list(o.stride()) + list(do.stride())
        vals += list(lse.stride()) + [0] + mstr + list(dq.stride()) + list(dk.stride()) + list(dv.stride())
        vals += [B, Hq, Hq // Hkv, Lq, Lk, E, Ev, mk, 1 if causal else 0, coff, flags, tiles, chunks]
        buf = struct.pack("<" + "q" * len(vals), *vals)
        buf += struct.pack("<dddqqqqq", sc * LOG2E, sc, 1.0 / (1.0 - p), 1 if p > 0 else 0, thr, seed, offset,
                           acc.data_ptr() if atomic else 0)
        assert len(buf) == 72 * 8, len(buf)
        return ctypes.create_string_buffer(buf, len(buf))

    def go(name, grid, threads, smem, pbuf):
        f = mod.func(name, smem)
        args = (ctypes.c_void_p * 1)(ctypes.cast(pbuf, ctypes.c_void_p))
        fw.ck(fw.cu.cuLaunchKernel(f, grid, 1, 1, threads, 1, 1, smem, ctypes.c_void_p(s), args, None),
              "cuLaunchKernel " + name)

    dn = DT[q.dtype]
    p0 = params(0, 0)
    if "pre" in only:
        go(f"memeff_bwd_pre_{dn}", (rows + 7) // 8, 256, 0, p0)
    kt = (Lk + kbn - 1) // kbn
    ch_kv = (max(E, Ev) + dc - 1) // dc
    p1 = params(kt, ch_kv)
    if atomic:
        smem_kv += kbn * (kbm + 8) * 2
        if "dkdv" in only:
            # the kernel without bounds tests in its products (MEMEFF_FULL=0: cubins built before it existed)
            full = "f" if E == d and Ev == d and os.environ.get("MEMEFF_FULL", "1") != "0" else ""
            go(f"memeff_bwd_dkdvq{full}_{dn}_d{d}", kt * B * Hkv * ch_kv, kbn // 16 * 32, smem_kv, p1)
        if "dq" in only:
            go(f"memeff_bwd_dqconv_{dn}", (rows + 7) // 8, 256, 0, p0)
        return (p0, p1, stat, acc)
    if "dkdv" in only:
        go(f"memeff_bwd_dkdv_{dn}_d{d}", kt * B * Hkv * ch_kv, kbn // 16 * 32, smem_kv, p1)
    qt = (Lq + qbm - 1) // qbm
    ch_q = (E + dc - 1) // dc
    p2 = params(qt, ch_q)
    if "dq" in only:
        go(f"memeff_bwd_dq_{dn}_d{d}", qt * B * Hq * ch_q, qbm // 16 * 32, smem_q, p2)
    return (p0, p1, p2, stat)  # keep the parameter buffers alive until the launches are queued


def reference_grads(q, k, v, do, mask, causal, scale, p, seed, offset):
    B, Hq, Lq, E = q.shape
    Hkv, Lk = k.shape[1], k.shape[2]
    qd, kd, vd = (x.detach().double().cpu().requires_grad_(True) for x in (q, k, v))
    kk = kd.repeat_interleave(Hq // Hkv, dim=1)
    vv = vd.repeat_interleave(Hq // Hkv, dim=1)
    sc = scale if scale is not None else 1.0 / math.sqrt(E)
    s = sc * (qd @ kk.transpose(-1, -2))
    if mask is not None:
        m = mask.cpu()
        s = s.masked_fill(~m.expand_as(s), float("-inf")) if m.dtype == torch.bool else s + m.double()
    if causal:
        off = 0 if causal == 1 else Lk - Lq
        i = torch.arange(Lq).view(-1, 1)
        j = torch.arange(Lk).view(1, -1)
        s = s.masked_fill(j > i + off, float("-inf"))
    mx = s.amax(-1, keepdim=True).detach()
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    ex = torch.exp(s - mx)
    den = ex.sum(-1, keepdim=True)
    pr = ex / torch.where(den > 0, den, torch.ones_like(den))
    if p > 0:
        pr = pr * fw.keep_mask(B, Hq, Lq, Lk, p, seed, offset).double() / (1 - p)
    out = pr @ vv
    out.backward(do.double().cpu())
    return qd.grad, kd.grad, vd.grad


TOL = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float32: 1e-4}


def check_one(fmod, bmod, name, dtype, B, Hq, Hkv, Lq, Lk, E, Ev, mask=None, causal=0, scale=None, p=0.0,
              layout="bhle", seed=0x1234_5678_9ABC_DEF0, offset=7):
    ok = True
    for atomic in ((False, True) if dtype != torch.float32 and max(E, Ev) <= 128 else (False,)):
        torch.manual_seed(hash(name) & 0xFFFF)
        ok = check_path(fmod, bmod, name + (" [atomic dQ]" if atomic else ""), dtype, B, Hq, Hkv, Lq, Lk, E, Ev, mask,
                        causal, scale, p, layout, seed, offset, atomic) and ok
    return ok


def check_path(fmod, bmod, name, dtype, B, Hq, Hkv, Lq, Lk, E, Ev, mask, causal, scale, p, layout, seed, offset,
               atomic):
    q = fw.rnd((B, Hq, Lq, E), dtype, layout)
    k = fw.rnd((B, Hkv, Lk, E), dtype, layout)
    v = fw.rnd((B, Hkv, Lk, Ev), dtype, layout)
    do = fw.rnd((B, Hq, Lq, Ev), dtype, layout)
    o = torch.empty((B, Hq, Lq, Ev), device="cuda", dtype=dtype)
    lse = torch.empty((B, Hq, Lq), device="cuda")
    m = mask(B, Hq, Lq, Lk, dtype) if mask is not None else None
    fw.launch(fmod, q, k, v, o, lse, m, causal, scale, p, seed, offset)
    dq = torch.full_like(q, float("nan"))
    dk = torch.full_like(k, float("nan"))
    dv = torch.full_like(v, float("nan"))
    keep = launch_bwd(bmod, q, k, v, o, lse, do, dq, dk, dv, m, causal, scale, p, seed, offset, atomic=atomic)
    torch.cuda.synchronize()
    del keep
    rq, rk, rv = reference_grads(q, k, v, do, m, causal, scale, p, seed, offset)
    ok = True
    errs = []
    for nm, x, r in (("dq", dq, rq), ("dk", dk, rk), ("dv", dv, rv)):
        xc = x.double().cpu()
        if torch.isnan(xc).any().item():
            errs.append(f"{nm} NaN")
            ok = False
            continue
        den = max(r.norm().item(), 0.1 * math.sqrt(r.numel()))  # gradients that cancel to ~0 (Lq = Lk = 1)
        e = ((xc - r).norm() / den).item()
        errs.append(f"{nm} {e:.1e}")
        ok = ok and e < TOL[dtype]
    print(f"{'ok  ' if ok else 'FAIL'} {name:52s} {str(dtype)[6:]:8s} " + " ".join(errs), flush=True)
    return ok


def kpad(B, H, Lq, Lk, dt):
    m = torch.rand(B, 1, 1, Lk, device="cuda") > 0.3
    if B > 1:
        m[0] = False  # batch 0: every key masked -> zero gradients
    return m


def bias_f32(B, H, Lq, Lk, dt):
    return torch.randn(1, H, Lq, Lk, device="cuda")


def bias_same(B, H, Lq, Lk, dt):
    b = torch.randn(Lq, Lk, device="cuda")
    b[3, :] = float("-inf")
    return b.to(dt)


def bool_odd(B, H, Lq, Lk, dt):
    return (torch.rand(B, H, Lq, Lk * 3, device="cuda") > 0.5)[..., ::3]


def suite(fmod, bmod, quick=False):
    cases = []
    for dt in (torch.float16, torch.bfloat16, torch.float32):
        cases += [
            ("plain E64", dt, 2, 4, 4, 200, 300, 64, 64, {}),
            ("plain E128", dt, 2, 2, 2, 130, 190, 128, 128, {}),
            ("key padding bool [B,1,1,Lk]", dt, 3, 4, 4, 130, 257, 64, 64, dict(mask=kpad)),
            ("additive fp32 bias [1,H,Lq,Lk]", dt, 2, 3, 3, 77, 150, 128, 128, dict(mask=bias_f32)),
            ("additive same-dtype [Lq,Lk] + -inf row", dt, 2, 2, 2, 64, 64, 64, 64, dict(mask=bias_same)),
            ("bool odd stride", dt, 1, 2, 2, 40, 33, 64, 64, dict(mask=bool_odd)),
            ("causal top-left Lq<Lk GQA 8/2", dt, 2, 8, 2, 100, 300, 64, 64, dict(causal=1)),
            ("causal bottom-right Lq>Lk", dt, 1, 2, 2, 300, 100, 128, 128, dict(causal=2)),
            ("E80 Ev48 scale -0.3", dt, 2, 2, 2, 65, 90, 80, 48, dict(scale=-0.3)),
            ("E512 Ev512 blhe", dt, 1, 2, 2, 70, 90, 512, 512, dict(layout="blhe")),
            ("E256 Ev200 causal GQA", dt, 1, 2, 1, 90, 90, 256, 200, dict(causal=1)),
            ("E64 Ev512", dt, 1, 2, 2, 50, 60, 64, 512, {}),
            ("strided head dim (scalar loads)", dt, 2, 2, 2, 50, 70, 64, 64, dict(layout="ebl")),
            ("dropout p=0.3", dt, 2, 2, 2, 70, 130, 64, 64, dict(p=0.3)),
            ("dropout p=0.5 + mask, E96 causal", dt, 1, 2, 2, 33, 61, 96, 96, dict(p=0.5, causal=2)),
            ("dropout p=0.2 E128 GQA", dt, 1, 4, 2, 150, 170, 128, 128, dict(p=0.2)),
            ("Lq=1 Lk=1", dt, 1, 1, 1, 1, 1, 64, 64, {}),
            ("small dims", dt, 1, 2, 2, 17, 19, 12 if dt != torch.float32 else 4, 20 if dt != torch.float32 else 12,
             {}),
        ]
    if quick:
        cases = [c for i, c in enumerate(cases) if i % 3 == 0 or "dropout" in c[0] or "E512" in c[0]]
        cases = [(n, dt, b, hq, hkv, min(lq, 70), min(lk, 70), e, ev, kw) for (n, dt, b, hq, hkv, lq, lk, e, ev, kw) in cases]
    fails = 0
    for (n, dt, b, hq, hkv, lq, lk, e, ev, kw) in cases:
        torch.manual_seed(hash(n) & 0xFFFF)
        try:
            if not check_one(fmod, bmod, n, dt, b, hq, hkv, lq, lk, e, ev, **kw):
                fails += 1
        except Exception as ex:
            print("FAIL", n, dt, repr(ex), flush=True)
            fails += 1
    print(f"checks: {len(cases) - fails}/{len(cases)} passed", flush=True)
    return fails


def determinism(fmod, bmod):
    fails = 0
    for dt, E, L, kw in ((torch.bfloat16, 128, 700, dict(causal=1)), (torch.float16, 64, 1000, dict(p=0.1)),
                         (torch.float32, 64, 300, {})):
        B, H = 2, 4
        q, k, v, do = (torch.randn(B, H, L, E, device="cuda", dtype=dt) for _ in range(4))
        o = torch.empty_like(q)
        lse = torch.empty(B, H, L, device="cuda")
        fw.launch(fmod, q, k, v, o, lse, None, kw.get("causal", 0), None, kw.get("p", 0.0), 5, 1)
        first = None
        same = True
        for _ in range(10):
            dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
            launch_bwd(bmod, q, k, v, o, lse, do, dq, dk, dv, None, kw.get("causal", 0), None, kw.get("p", 0.0), 5, 1,
                       atomic=False)
            torch.cuda.synchronize()
            bits = [x.view(torch.int16 if dt != torch.float32 else torch.int32).clone() for x in (dq, dk, dv)]
            if first is None:
                first = bits
            else:
                same = same and all(torch.equal(a, b) for a, b in zip(first, bits))
        print(f"{'ok  ' if same else 'FAIL'} determinism {DT[dt]} E{E} L{L} {kw}: 10 runs bit-identical={same}",
              flush=True)
        fails += 0 if same else 1
    return fails


def bench(fmod, bmod, out_json, quick=False):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    rows = []
    variants = (("none", 0, 0.0), ("none", 1, 0.0), ("keypad-bool", 0, 0.0), ("none", 0, 0.1))
    lengths = tuple(int(x) for x in os.environ.get("QB_L", "1024,4096").split(",")) if quick else (
        1024, 2048, 4096, 8192, 16384)
    for dt in ((torch.bfloat16,) if quick else (torch.bfloat16, torch.float16)):
        for E in (64, 128):
            H = 2048 // E
            for L in lengths:
                B = max(1, 16384 // L)
                for mk, causal, p in variants:
                    torch.cuda.empty_cache()
                    q, k, v, do = (torch.randn(B, H, L, E, device="cuda", dtype=dt) for _ in range(4))
                    mask = None
                    if mk == "keypad-bool":
                        lens = torch.randint(L // 2, L + 1, (B,), device="cuda")
                        mask = torch.arange(L, device="cuda").view(1, 1, 1, L) < lens.view(B, 1, 1, 1)
                    fl = 3.5 * 4.0 * B * H * L * L * E * (0.5 if causal else 1.0)
                    iters = 5 if L >= 8192 else 8
                    o = torch.empty_like(q)
                    lse = torch.empty(B, H, L, device="cuda")
                    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
                    stat = torch.empty(2 * B * H * L, device="cuda")

                    acc = torch.zeros(B * H * L * E, device="cuda")

                    def ours(atomic=True):
                        fw.launch(fmod, q, k, v, o, lse, mask, causal, None, p, 11, 3)
                        launch_bwd(bmod, q, k, v, o, lse, do, dq, dk, dv, mask, causal, None, p, 11, 3, stat,
                                   atomic=atomic, acc=acc)

                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    ours()
                    torch.cuda.synchronize()
                    peak_m = torch.cuda.max_memory_allocated()
                    t_m = fw.timeit(ours, iters)
                    t_det = fw.timeit(lambda: ours(False), iters)
                    qr, kr, vr = (x.detach().requires_grad_(True) for x in (q, k, v))
                    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                        def theirs():
                            out = F.scaled_dot_product_attention(qr, kr, vr, attn_mask=mask, dropout_p=p,
                                                                 is_causal=bool(causal))
                            return torch.autograd.grad(out, (qr, kr, vr), do)
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                        g = theirs()
                        torch.cuda.synchronize()
                        peak_t = torch.cuda.max_memory_allocated()
                        t_t = fw.timeit(theirs, iters)
                    err = float("nan")
                    if p == 0:
                        ours()
                        torch.cuda.synchronize()
                        err = max(((a.float() - b.float()).norm() / b.float().norm()).item()
                                  for a, b in zip((dq, dk, dv), g))
                    r = dict(dtype=DT[dt], E=E, H=H, B=B, L=L, mask=mk, causal=bool(causal), dropout=p,
                             ms_memeff=t_m, ms_memeff_deterministic=t_det, ms_torch=t_t, tflops_memeff=fl / t_m / 1e9, tflops_torch=fl / t_t / 1e9,
                             ratio=t_t / t_m, ratio_deterministic=t_t / t_det, peak_mib_memeff=peak_m / 2**20, peak_mib_torch=peak_t / 2**20,
                             grad_rel_err_vs_torch=err)
                    rows.append(r)
                    print(f"{r['dtype']:4s} E{E:3d} L{L:5d} {mk:11s} c{causal} p{p:.1f} memeff {r['tflops_memeff']:6.1f}"
                          f" torch {r['tflops_torch']:6.1f} TF/s x{r['ratio']:.2f} (det x{t_t / t_det:.2f}) peak {r['peak_mib_memeff']:.0f}/"
                          f"{r['peak_mib_torch']:.0f} MiB err {err:.1e}", flush=True)
                    del q, k, v, do, o, lse, dq, dk, dv, stat, mask, qr, kr, vr, g, acc
    if out_json:
        json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), open(out_json, "w"),
                  indent=1)
    return rows


def parts(fmod, bmod):
    """Times the forward and each backward kernel alone (bf16, L = 4096, B*L = 16k, hidden 2048)."""
    for E in (64, 128):
        for mk, causal, p in (("none", 0, 0.0), ("keypad-bool", 0, 0.0), ("none", 0, 0.1)):
            L, H = 4096, 2048 // E
            B = 16384 // L
            q, k, v, do = (torch.randn(B, H, L, E, device="cuda", dtype=torch.bfloat16) for _ in range(4))
            mask = None
            if mk == "keypad-bool":
                lens = torch.randint(L // 2, L + 1, (B,), device="cuda")
                mask = torch.arange(L, device="cuda").view(1, 1, 1, L) < lens.view(B, 1, 1, 1)
            o, lse = torch.empty_like(q), torch.empty(B, H, L, device="cuda")
            dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
            stat = torch.empty(2 * B * H * L, device="cuda")
            fl = 4.0 * B * H * L * L * E
            t_f = fw.timeit(lambda: fw.launch(fmod, q, k, v, o, lse, mask, causal, None, p, 1, 2), 10)
            ts = {}
            acc = torch.zeros(B * H * L * E, device="cuda")
            for part in ("pre", "dkdv", "dq"):
                ts[part] = fw.timeit(lambda: launch_bwd(bmod, q, k, v, o, lse, do, dq, dk, dv, mask, causal, None, p, 1,
                                                        2, stat, (part,), atomic=False), 10)
            ta = fw.timeit(lambda: launch_bwd(bmod, q, k, v, o, lse, do, dq, dk, dv, mask, causal, None, p, 1,
                                              2, stat, ("dkdv",), atomic=True, acc=acc), 10)
            tc = fw.timeit(lambda: launch_bwd(bmod, q, k, v, o, lse, do, dq, dk, dv, mask, causal, None, p, 1,
                                              2, stat, ("dq",), atomic=True, acc=acc), 10)
            print(f"parts E{E} {mk:11s} p{p}: fwd {t_f:.3f} ms ({fl / t_f / 1e9:.0f} TF/s)  pre {ts['pre']:.3f}  dkdv "
                  f"{ts['dkdv']:.3f} ({2 * fl / ts['dkdv'] / 1e9:.0f} TF/s of 4 GEMMs)  dq {ts['dq']:.3f} "
                  f"({1.5 * fl / ts['dq'] / 1e9:.0f} TF/s of 3 GEMMs)  atomic dkdvq {ta:.3f} (incl. zeroing) dqconv {tc:.3f}",
                  flush=True)


if __name__ == "__main__":
    fw.MAX_SMEM = torch.cuda.get_device_properties(0).shared_memory_per_block_optin
    fmod = fw.Module(sys.argv[1])
    bmod = fw.Module(sys.argv[2])
    what = sys.argv[3]
    fails = 0
    if what in ("check", "quick"):
        fails = suite(fmod, bmod, quick=what == "quick")
    if what == "determinism":
        fails = determinism(fmod, bmod)
    if what == "parts":
        parts(fmod, bmod)
    if what in ("bench", "qbench"):
        bench(fmod, bmod, sys.argv[4] if len(sys.argv) > 4 else None, quick=what == "qbench")
    sys.exit(1 if fails else 0)
