"""Training-path front end: the provider's packaged cubins (forward flash_fwd.cu, backward flash_bwd.cu) launched from
PyTorch tensors through the CUDA driver API, with the launch rules and parameter layouts of FlashDevice.java,
FlashPlan.java and FlashBackwardPlan.java - keep them in step. The cubins are read from the provider jar (the GPU
bundle's lib/) or from FLASH_FWD_CUBIN / FLASH_BWD_CUBIN."""
import ctypes, glob, math, os, statistics, struct, zipfile
import torch

LOG2E = 1.4426950408889634
_cuda = ctypes.CDLL("libcuda.so.1")

# FlashPlan.MAIN: (head dim, BM, BN, warps)
FWD_TRAITS = [(32, 128, 128, 4), (64, 128, 128, 4), (96, 128, 64, 4), (128, 128, 64, 4), (192, 128, 64, 8),
              (256, 64, 64, 4)]
# FlashBackwardPlan.MAIN: (head dim, BM, BN, dSplit, exact) and DQ: (head dim, BM, BN)
BWD_TRAITS = [(32, 64, 128, 1, False), (64, 64, 128, 1, True), (128, 64, 128, 1, True), (256, 32, 64, 2, False)]
# FlashBackwardPlan.MAIN_DROPOUT: the _drop kernels' tiles
BWD_TRAITS_DROP = [BWD_TRAITS[0], (64, 32, 128, 1, True), (128, 32, 128, 1, True), BWD_TRAITS[3]]
# FLASH_BWD_TRAITS_DROP (JSON list like BWD_TRAITS_DROP) checks an experimental FLASH_BWD_CUBIN's _drop tiles
if os.environ.get("FLASH_BWD_TRAITS_DROP"):
    import json
    BWD_TRAITS_DROP = [tuple(t) for t in json.loads(os.environ["FLASH_BWD_TRAITS_DROP"])]
DQ_TRAITS = [(32, 64, 64), (64, 64, 64), (128, 64, 64), (256, 64, 32)]
# FlashBackwardPlan.SM90 (flash_bwd_sm90.cu, Hopper wgmma): head dim -> (BM, BN, threads), fast mode, exact head dims;
# FLASH_BWD_SM90=0 runs the mma.sync kernels instead
SM90_TRAITS = {64: (64, 128, 256), 128: (64, 128, 256)}
SM90_ON = os.environ.get("FLASH_BWD_SM90", "1") != "0"


def _ck(r, what):
    if r:
        name = ctypes.c_char_p()
        _cuda.cuGetErrorName(r, ctypes.byref(name))
        raise RuntimeError(f"{what} failed: {name.value.decode() if name.value else r}")


def _cubin(env, resource):
    path = os.environ.get(env)
    if path:
        return open(path, "rb").read()
    here = os.path.dirname(os.path.abspath(__file__))
    jars = glob.glob(os.path.join(here, "../../.gpu-flash/lib/sdpa4j-provider-cuda-flash-*.jar"))
    jars = [j for j in jars if "-tests" not in j and "-sources" not in j]
    if not jars:
        raise FileNotFoundError(f"no {env} and no provider jar in .gpu-flash/lib")
    with zipfile.ZipFile(jars[0]) as z:
        return z.read(resource)


class Module:
    def __init__(self, image):
        torch.zeros(1, device="cuda")  # the primary context, current on this thread (as the provider's)
        self.image = ctypes.create_string_buffer(image, len(image))
        self.mod = ctypes.c_void_p()
        _ck(_cuda.cuModuleLoadData(ctypes.byref(self.mod), self.image), "cuModuleLoadData")
        self.fns = {}

    def launch(self, name, grid, block, smem, params, stream=None):
        f = self.fns.get(name)
        if f is None:
            f = ctypes.c_void_p()
            _ck(_cuda.cuModuleGetFunction(ctypes.byref(f), self.mod, name.encode()), f"cuModuleGetFunction({name})")
            self.fns[name] = f
        if smem > 48 * 1024:
            _ck(_cuda.cuFuncSetAttribute(f, 8, ctypes.c_int(smem)), f"cuFuncSetAttribute({name})")
        buf = ctypes.create_string_buffer(params, len(params))
        args = (ctypes.c_void_p * 1)(ctypes.cast(buf, ctypes.c_void_p))
        st = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream if stream is None else stream)
        g = list(grid) + [1] * (3 - len(grid))
        _ck(_cuda.cuLaunchKernel(f, g[0], g[1], g[2], block, 1, 1, smem, st, args, None), f"cuLaunchKernel({name})")


_mods = {}


def modules(variant=None):
    """(forward, backward) modules: the provider's, or a variant's cubins (dict with optional fwd / bwd paths)."""
    if "fwd" not in _mods:  # the Hopper modules (module_fwd90, module_sm90) may have loaded first
        _mods["fwd"] = Module(_cubin("FLASH_FWD_CUBIN", "dev/sdpa4j/cuda/flash/sm_90a.cubin"))
        _mods["bwd"] = Module(_cubin("FLASH_BWD_CUBIN", "dev/sdpa4j/cuda/flash_bwd/sm_90a.cubin"))
    if not variant:
        return _mods["fwd"], _mods["bwd"]
    out = []
    for part in ("fwd", "bwd"):
        path = variant.get(part)
        if path and path not in _mods:
            _mods[path] = Module(open(path, "rb").read())
        out.append(_mods[path] if path else _mods[part])
    return tuple(out)


def module_sm90(variant=None):
    """The Hopper backward module (flash_bwd_sm90.cu): a variant's "bwd90" cubin, FLASH_BWD90_CUBIN, or the jar's."""
    path = (variant or {}).get("bwd90")
    if path:
        if path not in _mods:
            _mods[path] = Module(open(path, "rb").read())
        return _mods[path]
    if "bwd90" not in _mods:
        _mods["bwd90"] = Module(_cubin("FLASH_BWD90_CUBIN", "dev/sdpa4j/cuda/flash_bwd_sm90/sm_90a.cubin"))
    return _mods["bwd90"]


def _strides3(t):
    s = t.stride()
    return s[0], s[1], s[2]


def dropout_fields(p, seed, offset, byte=False):
    """(seed, offset, threshold, keep_scale, dropout_bytes) of the parameter blocks for dropout p at the WORD (default)
    or BYTE resolution (dev.sdpa4j.Dropout.Mask.of: BYTE t = min(255, round(p * 256)) with Java's round half up,
    keep scale 256 / (256 - t); WORD t = floor(p * 2^32), keep scale 1 / (1 - p))."""
    if p <= 0:
        return 0, 0, 0, 1.0, 0
    if byte:
        t = min(255, math.floor(p * 256 + 0.5))
        return seed, offset, t, 256.0 / (256 - t), 1
    return seed, offset, int(math.floor(p * 4294967296.0)), 1.0 / (1.0 - p), 0


def _i64(x):
    return x - (1 << 64) if x >= (1 << 63) else x


# FlashPlan.HOPPER (flash_fwd_sm90.cu, Hopper wgmma): head-dim class -> (kBlockN, stages, minimum keys without
# dropout, with dropout); head dims below a class run its _pad kernel; compute capability 9.0. FLASH_FWD_SM90=0 runs
# the mma.sync kernels instead.
FWD_SM90 = {64: (128, 2, 8192, 0), 96: (128, 2, 0, 0), 128: (128, 2, 0, 0), 192: (64, 2, 0, 0), 256: (64, 2, 0, 0)}
FWD_SM90_ON = os.environ.get("FLASH_FWD_SM90", "1") != "0"


def module_fwd90(variant=None):
    """The Hopper forward module (flash_fwd_sm90.cu): a variant's "fwd90" cubin, FLASH_FWD90_CUBIN, or the jar's."""
    path = (variant or {}).get("fwd90")
    if path:
        if path not in _mods:
            _mods[path] = Module(open(path, "rb").read())
        return _mods[path]
    if "fwd90" not in _mods:
        _mods["fwd90"] = Module(_cubin("FLASH_FWD90_CUBIN", "dev/sdpa4j/cuda/flash_sm90/sm_90a.cubin"))
    return _mods["fwd90"]


def fwd_class(E):
    """The forward's head-dim class of E (FlashPlan.headDimClass): the smallest specialisation at least E."""
    return next(t[0] for t in FWD_TRAITS if E <= t[0])


def forward_uses_sm90(E, Lk, dropout_p, device=None, variant=None, sm90=None):
    """FlashPlan.hopper's rule: the wgmma kernel for a head dim whose class is one of FWD_SM90's, from its minimum key
    count (sm90=None), or forced on (True) / off (False)."""
    if sm90 is False or not FWD_SM90_ON or not (variant or {}).get("sm90fwd", True) or fwd_class(E) not in FWD_SM90 \
            or torch.cuda.get_device_capability(device) != (9, 0):
        return False
    return sm90 is True or Lk >= FWD_SM90[fwd_class(E)][3 if dropout_p > 0 else 2]


def forward(q, k, v, o, lse, causal=0, scale=None, dropout_p=0.0, seed=0, offset=0, variant=None, byte=False, sm90=None):
    """Main (non-split) forward kernel, as FlashDevice.run with dropout (or a full grid): q,k,v,o [B,H,L,E] with unit
    last stride, lse [B,H,Lq] fp32; causal 0 none, 1 top-left, 2 bottom-right; byte: the BYTE mask resolution. On
    Hopper the wgmma kernel where forward_uses_sm90 says so (a variant's "fwd90_suffix" names its _drop kernels)."""
    B, H, Lq, E = q.shape
    Hk, Lk = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    dt = "bf16" if q.dtype == torch.bfloat16 else "f16"
    sd, off, thr, ks, nb = dropout_fields(dropout_p, seed, offset, byte)
    vals = [q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), lse.data_ptr(), 0, 0]
    for t in (q, k, v, o):
        vals += _strides3(t)
    vals += list(lse.stride())
    vals += [B, H, H // Hk, Lq, Lk, E, 1 if causal else 0, (Lk - Lq) if causal == 2 else 0, 1]
    params = struct.pack("<31q2f3qfI", *vals, scale, scale * LOG2E, _i64(sd), off, thr, ks, nb)
    drop = dropout_p > 0
    if forward_uses_sm90(E, Lk, dropout_p, q.device, variant, sm90):
        D = fwd_class(E)
        BN, stages = FWD_SM90[D][:2]
        name = f"flash_fwd_sm90_{dt}_d{D}" + ("" if E == D else "_pad") + \
            ("_drop" + (variant or {}).get("fwd90_suffix", "") if drop else "")
        module_fwd90(variant).launch(name, (math.ceil(Lq / 128), B * H), 256, 128 * D * 2 + 2 * stages * BN * D * 2,
                                     params)
        return
    fwd, _ = modules(variant)
    dc = next(i for i, t in enumerate(FWD_TRAITS) if E <= t[0])
    D, BM, BN, W = FWD_TRAITS[dc]
    name = f"flash_fwd_{dt}_d{D}" + ("" if E == D else "_pad") + ("_drop" if drop else "")
    fwd.launch(name, (math.ceil(Lq / BM), B * H), W * 32, (BM + 2 * BN) * D * 2, params)


class Backward:
    """One backward call's launches and workspace (allocated once, as DeviceScratch does per call)."""

    def __init__(self, q, k, v, o, lse, dout, dq, dk, dv, causal=0, scale=None, dropout_p=0.0, seed=0, offset=0,
                 deterministic=False, variant=None, byte=False):
        _, self.mod = modules(variant)
        B, H, Lq, E = q.shape
        Hk, Lk = k.shape[1], k.shape[2]
        scale = 1.0 / math.sqrt(E) if scale is None else scale
        dc = next(i for i, t in enumerate(BWD_TRAITS) if E <= t[0])
        D, BM, BN, DS, exact = (variant or {}).get("traits", {}).get(dc, (BWD_TRAITS_DROP if dropout_p > 0 else BWD_TRAITS)[dc])
        QD, QBM, QBN = DQ_TRAITS[dc]
        dt = "bf16" if q.dtype == torch.bfloat16 else "f16"
        drop = dropout_p > 0
        self.dsum = torch.empty(B * H * Lq, dtype=torch.float32, device=q.device)
        self.acc = None if deterministic else torch.empty(B * H * Lq * E, dtype=torch.float32, device=q.device)
        sd, off, thr, ks, nb = dropout_fields(dropout_p, seed, offset, byte)
        ts = (q, k, v, o, dout, lse, dq, dk, dv)
        vals = [t.data_ptr() for t in ts] + [0 if self.acc is None else self.acc.data_ptr(), self.dsum.data_ptr()]
        for t in ts:
            vals += _strides3(t)
        vals += [B, H, H // Hk, Lq, Lk, E, 1 if causal else 0, (Lk - Lq) if causal == 2 else 0, _i64(sd), off, thr]
        self.params = struct.pack("<49q3fI", *vals, scale, scale * LOG2E, ks, nb)
        assert len(self.params) == 408
        self.dt = dt
        self.rows = B * H * Lq
        self.main = f"flash_bwd_{dt}_d{D}" + ("" if exact and E == D else "_pad") + ("_drop" if drop else "") + (
            "_det" if deterministic else "")
        self.main_grid = (math.ceil(Lk / BN), B * Hk)
        self.main_threads = BN // 16 * DS * 32
        # K, V, two Q, two dO, two dS^T (16-bit), LSE and D (fp32, two each); the dropout bits (two buffers) only for
        # the _drop kernels, as FlashBackwardPlan.Traits.sharedBytes
        mask = drop or (variant or {}).get("mask_smem_always", False)
        self.main_smem = (2 * BN * D + 4 * BM * D + 2 * BN * BM) * 2 + 4 * BM * 4 + (2 * BM * BN // 4 if mask else 0)
        # Hopper: the wgmma main kernel for exact head dims 64 and 128 in fast mode (FlashBackwardPlan.of)
        self.main_mod = self.mod
        if SM90_ON and (variant or {}).get("sm90", True) and E in SM90_TRAITS and not deterministic \
                and torch.cuda.get_device_capability(q.device) == (9, 0):
            BM, BN, threads = SM90_TRAITS[E]
            self.main_mod = module_sm90(variant)
            self.main = f"flash_bwd_sm90_{dt}_d{E}" + ("_drop" if drop else "")
            self.main_grid = (math.ceil(Lk / BN), B * Hk)
            self.main_threads = threads
            # K, V, two Q, two dO, one dS^T (16-bit), LSE and D (two each), kept bits (two buffers) with dropout
            self.main_smem = (2 * BN * E + 4 * BM * E + BN * BM) * 2 + 4 * BM * 4 + (2 * BM * BN // 4 if drop else 0)
        self.dq = f"flash_bwd_dq_{dt}_d{QD}" + ("_drop" if drop else "") if deterministic else None
        self.dq_grid = (math.ceil(Lq / QBM), B * H)
        self.dq_threads = QBM // 16 * 32
        self.dq_smem = (2 * QBM + 2 * QBN) * QD * 2
        self.keep = ts

    def __call__(self):
        m = self.mod
        rb = (self.rows + 3) // 4
        m.launch(f"flash_bwd_preprocess_{self.dt}", (rb,), 128, 0, self.params)
        self.main_mod.launch(self.main, self.main_grid, self.main_threads, self.main_smem, self.params)
        if self.dq:
            m.launch(self.dq, self.dq_grid, self.dq_threads, self.dq_smem, self.params)
        else:
            m.launch(f"flash_bwd_convert_{self.dt}", (rb,), 128, 0, self.params)


# ---- dev.sdpa4j.Dropout's mask in torch (Philox4x32-10 on int64 tensors, 16-bit halves for the products) ----
M32 = 0xFFFFFFFF


def _mul(a, c):
    """(hi, lo) 32-bit words of a * c for int64 tensors a in [0, 2^32) and a constant c < 2^32."""
    ch, cl = c >> 16, c & 0xFFFF
    x = a * cl
    y = a * ch
    hi = (y + (x >> 16)) >> 16
    lo = ((y & 0xFFFF) << 16) + x
    return hi & M32, lo & M32


def philox(c0, c1, c2, c3, k0, k1):
    k0, k1 = k0 & M32, k1 & M32
    for _ in range(10):
        hi0, lo0 = _mul(c0, 0xD2511F53)
        hi1, lo1 = _mul(c2, 0xCD9E8D57)
        c0, c1, c2, c3 = (hi1 ^ c1 ^ k0), lo1, (hi0 ^ c3 ^ k1), lo0
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


def keep_mask(B, H, Lq, Lk, p, seed, offset, device, byte=False):
    """bool [B, H, Lq, Lk] (dev.sdpa4j.Dropout): WORD kept iff r[j & 3] >= floor(p * 2^32) for counter
    (j >> 2, i, b * H + h, offset); BYTE kept iff byte j & 3 of r[(j >> 2) & 3] >= min(255, round(p * 256)) for counter
    (j >> 4, i, b * H + h, offset)."""
    thr = dropout_fields(p, seed, offset, byte)[2]
    b = torch.arange(B, device=device).view(B, 1, 1, 1)
    h = torch.arange(H, device=device).view(1, H, 1, 1)
    i = torch.arange(Lq, device=device).view(1, 1, Lq, 1)
    j = torch.arange(Lk, device=device).view(1, 1, 1, Lk)
    z = torch.zeros(B, H, Lq, Lk, dtype=torch.int64, device=device)
    r = philox(z + (j >> (4 if byte else 2)), z + i, z + (b * H + h), z + offset, seed & M32, (seed >> 32) & M32)
    w = (j >> 2) & 3 if byte else j & 3
    sel = torch.where(w == 0, r[0], torch.where(w == 1, r[1], torch.where(w == 2, r[2], r[3])))
    if byte:
        sel = (sel >> (8 * (j & 3))) & 0xFF
    return sel >= thr


def timed(fn, reps=5, calls=5):
    """(median, min, max) ms per call of `fn` over `reps` timings of `calls` back-to-back calls between two CUDA events,
    after two warm-up calls."""
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(calls):
            fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / calls)
    return statistics.median(ts), min(ts), max(ts)
