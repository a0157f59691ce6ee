"""Standalone harness for memeff_fwd.cu: launches the cubin's kernels through the driver API (ctypes) on torch
tensors, checks them against a float64 reference (dropout through a numpy Philox4x32-10 identical to
dev.sdpa4j.Philox4x32), and times them against PyTorch's efficient SDPA backend on the same tensors.

usage: python3 memeff_harness.py CUBIN MODE [out.json]
  MODE check | quick        correctness suite (quick: small subset, for compute-sanitizer)
       check-direct | ...   the same with masks read directly (no shared-memory staging)
       bench | qbench       the issue's benchmark grid (qbench: fp16, L = 1k/4k) against PyTorch efficient
       fbench               the fp32 rows of the grid
The launch table (config) mirrors MemeffKernel.java; MEMEFF_Q64 / MEMEFF_Q128 (16-bit) and MEMEFF_F32_Q128 override tile shapes
(NW,MT,BN,STAGES) for experiments with edited copies of the kernel; MEMEFF_FULL=0 launches the bounds-tested kernels
only (cubins built before the 16-bit `..._q64_v64f` / `..._q128_v128f` kernels existed). See bench/device_run.sh.
"""
import ctypes, json, math, struct, sys, time
import numpy as np
import torch
import torch.nn.functional as F

LOG2E = 1.4426950408889634

# ---------------------------------------------------------------- driver
cu = ctypes.CDLL("libcuda.so.1")


def ck(r, what):
    if r != 0:
        s = ctypes.c_char_p()
        cu.cuGetErrorString(r, ctypes.byref(s))
        raise RuntimeError(f"{what}: {r} {s.value}")


class Module:
    def __init__(self, path):
        torch.zeros(1, device="cuda")
        self.data = open(path, "rb").read()
        self.mod = ctypes.c_void_p()
        ck(cu.cuModuleLoadData(ctypes.byref(self.mod), self.data), "cuModuleLoadData")
        self.funcs = {}

    def func(self, name, smem):
        if name not in self.funcs:
            f = ctypes.c_void_p()
            ck(cu.cuModuleGetFunction(ctypes.byref(f), self.mod, name.encode()), "cuModuleGetFunction " + name)
            ck(cu.cuFuncSetAttribute(f, 8, MAX_SMEM), "cuFuncSetAttribute")
            self.funcs[name] = f
        return self.funcs[name]


MAX_SMEM = 0
SMEM_MASK = True
DT = {torch.float16: "f16", torch.bfloat16: "bf16", torch.float32: "f32"}


import os
_q64 = tuple(int(x) for x in os.environ.get("MEMEFF_Q64", "4,1,64,2").split(","))
_q128 = tuple(int(x) for x in os.environ.get("MEMEFF_Q128", "4,1,64,2").split(","))
CFG16 = {(64, 64): _q64, (64, 128): _q64, (128, 64): _q128, (128, 128): _q128,
         (256, 64): (4, 1, 32, 2), (256, 128): (4, 1, 32, 2), (512, 64): (2, 1, 32, 1), (512, 128): (2, 1, 32, 1)}
_f128 = tuple(int(x) for x in os.environ.get("MEMEFF_F32_Q128", "8,1,16,2").split(","))
CFG32 = {(64, 64): (4, 1, 32, 2), (64, 128): (4, 1, 32, 2), (128, 64): _f128, (128, 128): _f128,
         (256, 64): (2, 1, 32, 1), (256, 128): (2, 1, 32, 1), (512, 64): (1, 1, 16, 1), (512, 128): (1, 1, 16, 1)}


def config(dtype, e, ev):
    hdq = 64 if e <= 64 else 128 if e <= 128 else 256 if e <= 256 else 512
    hdv = 64 if ev <= 64 else 128
    if dtype == torch.float32:
        nw, mt, bn, st = CFG32[(hdq, hdv)]
        pad, esz = 4, 4
    else:
        nw, mt, bn, st = CFG16[(hdq, hdv)]
        pad, esz = 8, 2
    bm = 16 * nw * mt
    smem = ((bm + st * bn) * (hdq + pad) + st * bn * (hdv + pad)) * esz
    # the kernel without bounds tests when E, Ev are the padded dims (16-bit q64/v64, q128/v128); MEMEFF_FULL=0 for
    # cubins built before it existed
    full = (dtype != torch.float32 and hdq == hdv <= 128 and e == hdq and ev == hdv
            and os.environ.get("MEMEFF_FULL", "1") != "0")
    return f"memeff_fwd_{DT[dtype]}_q{hdq}_v{hdv}{'f' if full else ''}", hdq, hdv, bm, bn, st, smem, nw


def aligned(t, vec):
    esz = t.element_size()
    s = t.stride()
    return s[3] == 1 and all(x % vec == 0 for x in s[:3]) and t.data_ptr() % 16 == 0


def launch(mod, q, k, v, o, lse=None, mask=None, causal=0, scale=None, p=0.0, seed=0, offset=0, stream=None):
    B, Hq, Lq, E = q.shape
    Hkv, Lk, Ev = k.shape[1], k.shape[2], v.shape[3]
    name, hdq, hdv, bm, bn, st, smem, nw = config(q.dtype, E, Ev)
    f = mod.func(name, smem)
    vec = 4 if q.dtype == torch.float32 else 8
    flags = (1 if aligned(q, vec) else 0) | (2 if aligned(k, vec) else 0) | (4 if aligned(v, vec) else 0)
    os_ = o.stride()
    if os_[3] == 1 and all(x % 2 == 0 for x in os_[:3]) and o.data_ptr() % (o.element_size() * 2) == 0:
        flags |= 8
    mk = 0
    mstr = [0, 0, 0, 0]
    mptr = 0
    if mask is not None:
        mstr = list(mask.expand(B, Hq, Lq, Lk).stride())
        mk = {torch.bool: 1, torch.float32: 2, torch.float16: 3, torch.bfloat16: 4}[mask.dtype]
        mptr = mask.data_ptr()
        esz = mask.element_size()
        if mstr[3] == 1 and all(x % 2 == 0 for x in mstr[:3]) and mptr % (2 * esz) == 0:
            flags |= 16
        if SMEM_MASK and mstr[3] == 1 and mptr % 16 == 0 and all((x * esz) % 16 == 0 for x in mstr[:3]):
            rows = 1 if mstr[2] == 0 else bm
            extra = st * rows * (bn * esz + 16)
            if smem + extra <= MAX_SMEM:
                flags |= 32 if rows == 1 else 64
                smem += extra
                if rows > 1 and mstr[0] == 0 and B > 1:
                    flags |= 128
    sc = scale if scale is not None else 1.0 / math.sqrt(E)
    qt = (Lq + bm - 1) // bm
    chunks = (Ev + hdv - 1) // hdv
    coff = 0 if causal != 2 else Lk - Lq
    lstr = list(lse.stride()) + [0] if lse is not None else [0, 0, 0, 0]
    vals = [q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), lse.data_ptr() if lse is not None else 0, mptr]
    vals += list(q.stride()) + list(k.stride()) + list(v.stride()) + list(o.stride()) + lstr + mstr
    vals += [B, Hq, Hq // Hkv, Lq, Lk, E, Ev, mk, 1 if causal else 0, coff, flags, qt, chunks]
    buf = struct.pack("<" + "q" * len(vals), *vals)
    thr = int(math.floor(p * 4294967296.0)) if p > 0 else 0
    buf += struct.pack("<ddqqqq", sc * LOG2E, 1.0 / (1.0 - p), 1 if p > 0 else 0, thr, seed, offset)
    assert len(buf) == 49 * 8
    pbuf = ctypes.create_string_buffer(buf, len(buf))
    args = (ctypes.c_void_p * 1)(ctypes.cast(pbuf, ctypes.c_void_p))
    grid = qt * B * Hq * chunks
    s = stream if stream is not None else torch.cuda.current_stream().cuda_stream
    ck(cu.cuLaunchKernel(f, grid, 1, 1, nw * 32, 1, 1, smem, ctypes.c_void_p(s), args, None), "cuLaunchKernel")


# ---------------------------------------------------------------- reference
M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85


def philox(c0, c1, c2, c3, k0, k1):
    c0, c1, c2, c3 = [np.asarray(x, dtype=np.uint64) & 0xFFFFFFFF for x in (c0, c1, c2, c3)]
    c0, c1, c2, c3 = np.broadcast_arrays(c0, c1, c2, c3)
    k0 = np.uint64(k0 & 0xFFFFFFFF)
    k1 = np.uint64(k1 & 0xFFFFFFFF)
    m = np.uint64(0xFFFFFFFF)
    for _ in range(10):
        p0 = np.uint64(M0) * c0
        p1 = np.uint64(M1) * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & m
        hi1, lo1 = p1 >> np.uint64(32), p1 & m
        c0, c1, c2, c3 = (hi1 ^ c1 ^ k0), lo1, (hi0 ^ c3 ^ k1), lo0
        k0 = (k0 + np.uint64(W0)) & m
        k1 = (k1 + np.uint64(W1)) & m
    return c0, c1, c2, c3


def keep_mask(B, Hq, Lq, Lk, p, seed, offset):
    thr = int(math.floor(p * 4294967296.0))
    b = np.arange(B).reshape(B, 1, 1, 1)
    h = np.arange(Hq).reshape(1, Hq, 1, 1)
    i = np.arange(Lq).reshape(1, 1, Lq, 1)
    j = np.arange(Lk).reshape(1, 1, 1, Lk)
    r = philox(j >> 2, i, b * Hq + h, offset, seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)
    r = np.stack(r, axis=0)
    sel = np.broadcast_to(j & 3, (B, Hq, Lq, Lk))
    u = np.take_along_axis(r, sel[None].astype(np.int64), axis=0)[0]
    return torch.from_numpy(u >= thr)


def reference(q, k, v, mask=None, causal=0, scale=None, p=0.0, seed=0, offset=0):
    q, k, v = q.double().cpu(), k.double().cpu(), v.double().cpu()
    B, Hq, Lq, E = q.shape
    Hkv, Lk = k.shape[1], k.shape[2]
    k = k.repeat_interleave(Hq // Hkv, dim=1)
    v = v.repeat_interleave(Hq // Hkv, dim=1)
    sc = scale if scale is not None else 1.0 / math.sqrt(E)
    s = sc * (q @ k.transpose(-1, -2))
    if mask is not None:
        m = mask.cpu()
        if m.dtype == torch.bool:
            s = s.masked_fill(~m.expand_as(s), float("-inf"))
        else:
            s = s + m.double()
    if causal:
        off = 0 if causal == 1 else Lk - Lq
        i = torch.arange(Lq).view(-1, 1)
        j = torch.arange(Lk).view(1, -1)
        s = s.masked_fill(j > i + off, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    pr = torch.exp(s - lse.unsqueeze(-1))
    pr = torch.nan_to_num(pr, nan=0.0)
    if p > 0:
        pr = pr * keep_mask(B, Hq, Lq, Lk, p, seed, offset).double() / (1 - p)
    return pr @ v, lse


# ---------------------------------------------------------------- checks
def rnd(shape, dtype, layout="bhle"):
    if layout == "blhe":
        b, h, l, e = shape
        return torch.randn(b, l, h, e, device="cuda").to(dtype).permute(0, 2, 1, 3)
    if layout == "ebl":  # non-unit head-dim stride
        b, h, l, e = shape
        return torch.randn(b, h, e, l, device="cuda").to(dtype).transpose(2, 3)
    return torch.randn(shape, device="cuda").to(dtype)


TOL = {torch.float16: 3e-3, torch.bfloat16: 2e-2, torch.float32: 2e-5}


def check_one(mod, name, dtype, B, Hq, Hkv, Lq, Lk, E, Ev, mask=None, causal=0, scale=None, p=0.0, layout="bhle",
              seed=0x1234_5678_9ABC_DEF0, offset=7, want_lse=True):
    q = rnd((B, Hq, Lq, E), dtype, layout)
    k = rnd((B, Hkv, Lk, E), dtype, layout)
    v = rnd((B, Hkv, Lk, Ev), dtype, layout)
    o = torch.full((B, Hq, Lq, Ev), float("nan"), device="cuda", dtype=dtype)
    lse = torch.full((B, Hq, Lq), float("nan"), device="cuda") if want_lse else None
    m = mask(B, Hq, Lq, Lk, dtype) if mask is not None else None
    launch(mod, q, k, v, o, lse, m, causal, scale, p, seed, offset)
    torch.cuda.synchronize()
    ro, rl = reference(q, k, v, m, causal, scale, p, seed, offset)
    oc = o.double().cpu()
    ok = not torch.isnan(oc).any().item()
    err = ((oc - ro).norm() / max(ro.norm().item(), 1e-30)).item() if ok else float("nan")
    maxabs = (oc - ro).abs().max().item() if ok else float("nan")
    ok = ok and err < TOL[dtype]
    lerr = 0.0
    if want_lse:
        lc = lse.double().cpu()
        fin = torch.isfinite(rl)
        same_inf = torch.equal(torch.isneginf(lc), torch.isneginf(rl))
        lerr = (lc[fin] - rl[fin]).abs().max().item() if fin.any() else 0.0
        ok = ok and same_inf and lerr < (1e-3 if dtype != torch.float32 else 1e-4) and not torch.isnan(lc).any().item()
    print(f"{'ok  ' if ok else 'FAIL'} {name:44s} {str(dtype)[6:]:8s} rel {err:.2e} maxabs {maxabs:.2e} lse {lerr:.1e}",
          flush=True)
    return ok


def kpad(B, H, Lq, Lk, dt):
    m = torch.rand(B, 1, 1, Lk, device="cuda") > 0.3
    if B > 1:
        m[0, :, :, :] = False  # batch 0: every key masked -> zeros, LSE -inf
    return m


def bias_f32(B, H, Lq, Lk, dt):
    return torch.randn(1, H, Lq, Lk, device="cuda")


def bias_same(B, H, Lq, Lk, dt):
    b = torch.randn(Lq, Lk, device="cuda")
    b[3, :] = float("-inf")
    return b.to(dt)


def bias_sliced(B, H, Lq, Lk, dt):
    return torch.randn(H, Lq, Lk + 14, device="cuda").to(dt)[:, :, :Lk]


def bool_odd(B, H, Lq, Lk, dt):
    base = torch.rand(B, H, Lq, Lk * 3, device="cuda") > 0.5
    return base[..., ::3]


def bool_rows(B, H, Lq, Lk, dt):
    return (torch.rand(1, H, Lq, 1, device="cuda") > 0.2).expand(1, H, Lq, Lk)


def suite(mod, quick=False):
    cases = []
    for dt in (torch.float16, torch.bfloat16, torch.float32):
        cases += [
            ("plain E64", dt, 2, 4, 4, 200, 300, 64, 64, {}),
            ("key padding bool [B,1,1,Lk]", dt, 3, 4, 4, 130, 257, 64, 64, dict(mask=kpad)),
            ("key padding bool Lk=320 (smem row)", dt, 3, 4, 4, 130, 320, 64, 64, dict(mask=kpad)),
            ("additive fp32 bias Lk=160 (smem tile)", dt, 2, 3, 3, 77, 160, 128, 128, dict(mask=bias_f32)),
            ("additive sliced bias Lk=130 (partial)", dt, 2, 2, 2, 100, 130, 64, 64, dict(mask=bias_sliced)),
            ("additive fp32 bias [1,H,Lq,Lk]", dt, 2, 3, 3, 77, 150, 128, 128, dict(mask=bias_f32)),
            ("additive same-dtype [Lq,Lk] + -inf row", dt, 2, 2, 2, 64, 64, 64, 64, dict(mask=bias_same)),
            ("causal top-left Lq<Lk GQA 8/2", dt, 2, 8, 2, 100, 300, 64, 64, dict(causal=1)),
            ("causal bottom-right Lq>Lk", dt, 1, 2, 2, 300, 100, 128, 128, dict(causal=2)),
            ("E80 Ev48 scale -0.3", dt, 2, 2, 2, 65, 90, 80, 48, dict(scale=-0.3)),
            ("E512 Ev512 blhe", dt, 1, 2, 2, 70, 90, 512, 512, dict(layout="blhe")),
            ("E256 Ev200 causal", dt, 1, 2, 1, 90, 90, 256, 200 if dt != torch.float32 else 196, dict(causal=1)),
            ("strided head dim (scalar loads)", dt, 2, 2, 2, 50, 70, 64, 64, dict(layout="ebl")),
            ("bool odd stride", dt, 1, 2, 2, 40, 33, 64, 64, dict(mask=bool_odd)),
            ("bool row broadcast [1,H,Lq,1]", dt, 2, 2, 2, 40, 80, 64, 64, dict(mask=bool_rows)),
            ("dropout p=0.3", dt, 2, 2, 2, 70, 130, 64, 64, dict(p=0.3)),
            ("dropout p=0.5 + mask, E96", dt, 1, 2, 2, 33, 61, 96, 96, dict(p=0.5, mask=kpad)),
            ("Lq=1 Lk=1", dt, 1, 1, 1, 1, 1, 64, 64, {}),
            ("Lq=1 Lk=1000 no lse", dt, 2, 2, 2, 1, 1000, 128, 128, dict(want_lse=False)),
            ("small dims", dt, 1, 2, 2, 17, 19, 8 if dt != torch.float32 else 4, 8 if dt != torch.float32 else 12, {}),
        ]
    if quick:
        cases = [c for i, c in enumerate(cases) if i % 3 == 0 or "dropout" in c[0] or "E512" in c[0]]
        cases = [(n, dt, b, hq, hkv, min(lq, 70), min(lk, 70), e, ev, kw) for (n, dt, b, hq, hkv, lq, lk, e, ev, kw) in cases]
    fails = 0
    for (n, dt, b, hq, hkv, lq, lk, e, ev, kw) in cases:
        torch.manual_seed(hash(n) & 0xFFFF)
        try:
            if not check_one(mod, n, dt, b, hq, hkv, lq, lk, e, ev, **kw):
                fails += 1
        except Exception as ex:
            print("FAIL", n, dt, ex, flush=True)
            fails += 1
    print(f"checks: {len(cases) - fails}/{len(cases)} passed", flush=True)
    return fails


# ---------------------------------------------------------------- bench
def timeit(fn, iters):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def bench_mask(kind, B, H, L, dt):
    """The benchmark's mask of `kind`: "keypad-bool" (boolean [B, 1, 1, L], random lengths in [L/2, L]), "bias"
    (additive [1, H, L, L] in dtype dt) or "none" (None)."""
    if kind == "keypad-bool":
        lens = torch.randint(L // 2, L + 1, (B,), device="cuda")
        return torch.arange(L, device="cuda").view(1, 1, 1, L) < lens.view(B, 1, 1, 1)
    if kind == "bias":
        return torch.randn(1, H, L, L, device="cuda", dtype=dt)
    return None


def bench(mod, out_json, quick=False, dtypes=None):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    rows = []
    for dt in (dtypes or ((torch.float16,) if quick else (torch.float16, torch.bfloat16, torch.float32))):
        for mk in (("none", "keypad-bool", "bias") if dt != torch.float32 else ("none",)):
            for E in (64, 128):
                H = 2048 // E
                for L in ((1024, 4096) if quick else (512, 1024, 2048, 4096, 8192)):
                    B = 16384 // L
                    torch.cuda.empty_cache()
                    q = torch.randn(B, H, L, E, device="cuda", dtype=dt)
                    k = torch.randn(B, H, L, E, device="cuda", dtype=dt)
                    v = torch.randn(B, H, L, E, device="cuda", dtype=dt)
                    mask = bench_mask(mk, B, H, L, dt)
                    iters = 10 if L >= 4096 or dt == torch.float32 else 20
                    flops = 4.0 * B * H * L * L * E
                    o = torch.empty_like(q)
                    f_m = lambda: launch(mod, q, k, v, o, None, mask)
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    f_m()
                    torch.cuda.synchronize()
                    peak_m = torch.cuda.max_memory_allocated()
                    t_m = timeit(f_m, iters)
                    del o
                    # pytorch efficient
                    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                        f_t = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                        f_t()
                        torch.cuda.synchronize()
                        peak_t = torch.cuda.max_memory_allocated()
                        t_t = timeit(f_t, iters)
                        ref = f_t()
                    o = torch.empty_like(q)
                    launch(mod, q, k, v, o, None, mask)
                    err = ((o.float() - ref.float()).norm() / ref.float().norm()).item()
                    r = dict(dtype=DT[dt], mask=mk, E=E, H=H, B=B, L=L, ms_memeff=t_m, ms_torch=t_t,
                             tflops_memeff=flops / t_m / 1e9, tflops_torch=flops / t_t / 1e9, ratio=t_t / t_m,
                             peak_mib_memeff=peak_m / 2**20, peak_mib_torch=peak_t / 2**20, rel_err_vs_torch=err)
                    rows.append(r)
                    print(f"{r['dtype']:4s} {mk:11s} E{E:3d} L{L:5d} memeff {r['tflops_memeff']:6.1f} torch "
                          f"{r['tflops_torch']:6.1f} TF/s  x{r['ratio']:.2f}  peak {r['peak_mib_memeff']:.0f}/"
                          f"{r['peak_mib_torch']:.0f} MiB err {err:.1e}", flush=True)
                    del q, k, v, o, mask, ref
    if out_json:
        json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), open(out_json, "w"),
                  indent=1)
    return rows


if __name__ == "__main__":
    MAX_SMEM = torch.cuda.get_device_properties(0).shared_memory_per_block_optin
    mod = Module(sys.argv[1])
    what = sys.argv[2]
    fails = 0
    if what.endswith("-direct"):
        SMEM_MASK = False
        what = what[:-7]
    if what in ("check", "quick"):
        fails = suite(mod, quick=what == "quick")
    if what == "fbench":
        bench(mod, sys.argv[3] if len(sys.argv) > 3 else None, dtypes=(torch.float32,))
    if what in ("bench", "qbench"):
        bench(mod, sys.argv[3] if len(sys.argv) > 3 else None, quick=what == "qbench")
    sys.exit(1 if fails else 0)
