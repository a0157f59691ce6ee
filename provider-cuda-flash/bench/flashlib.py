"""ctypes front end of harness.cu: the provider's kernels with the same launch rules as FlashKernels.java."""
import ctypes, math, os
import torch

LIB = ctypes.CDLL(os.environ.get("FLASH_HARNESS", os.path.join(os.path.dirname(__file__), "../../.devbuild/libflashharness.so")))

class FlashParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int64) for n in (
        "q k v o lse o_accum lse_accum q_batch_stride q_head_stride q_row_stride k_batch_stride k_head_stride "
        "k_row_stride v_batch_stride v_head_stride v_row_stride o_batch_stride o_head_stride o_row_stride "
        "lse_batch_stride lse_head_stride lse_row_stride batch heads kv_group seqlen_q seqlen_k head_dim causal "
        "causal_offset num_splits").split()] + [("scale", ctypes.c_float), ("scale_log2", ctypes.c_float)]

# head dim class -> (D, BM, BN, warps), split traits (BM, BN, warps); same table as the .cu and FlashKernels.java
TRAITS = [(32, 128, 128, 4), (64, 128, 128, 4), (96, 128, 64, 4), (128, 128, 64, 4), (192, 128, 64, 8), (256, 64, 64, 4)]
SPLIT = [(16, 128, 1), (16, 128, 1), (16, 64, 1), (16, 64, 1), (16, 64, 1), (16, 64, 1)]
# experimental fp16 tilings in harness.cu (bench only): (BM, BN, warps) per head-dim class
VARIANTS = {1: [(128, 64, 4), (128, 128, 8)], 3: [(128, 64, 8), (128, 32, 4)], 5: [(128, 64, 8), (64, 32, 4)]}
SMS = torch.cuda.get_device_properties(0).multi_processor_count

def dclass(e):
    for i, t in enumerate(TRAITS):
        if e <= t[0]:
            return i
    raise ValueError(e)

def cdiv(a, b):
    return (a + b - 1) // b

def num_splits(work, n_blocks, slots, max_splits=128):
    if work >= 0.8 * slots:
        return 1
    max_splits = min(max_splits, slots, n_blocks)
    elig = lambda s: s == 1 or cdiv(n_blocks, s) != cdiv(n_blocks, s - 1)
    effs = []
    for s in range(1, max_splits + 1):
        if not elig(s):
            effs.append(0.0)
            continue
        w = work * s / slots
        effs.append(w / math.ceil(w))
    best = max(effs)
    for s in range(1, max_splits + 1):
        if elig(s) and effs[s - 1] >= 0.85 * best:
            return s
    return 1

# optional second harness (FLASH_HARNESS_BASE: an earlier kernel version) timed in the same process by bench.py
BASE_LIB = ctypes.CDLL(os.environ["FLASH_HARNESS_BASE"]) if os.environ.get("FLASH_HARNESS_BASE") else None

def prepare(q, k, v, o, lse, causal=0, scale=None, force_splits=None, variant=0, lib=None):
    """q,k,v,o: [B,H,L,E] views with unit last stride; lse [B,H,Lq] fp32 or None; causal 0 none, 1 top-left, 2 bottom-right.
    Returns a callable that launches on the current stream (workspace allocated once)."""
    B, H, Lq, E = q.shape
    Hk, Lk = k.shape[1], k.shape[2]
    G = H // Hk
    bf16 = q.dtype == torch.bfloat16
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    p = FlashParams()
    p.q, p.k, p.v, p.o = q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr()
    p.lse = lse.data_ptr() if lse is not None else 0
    qs, ks, vs, os_ = q.stride(), k.stride(), v.stride(), o.stride()
    ls = lse.stride() if lse is not None else (0, 0, 0)
    heads, group, lq, cmode = H, G, Lq, causal
    if Lq == 1 and G > 1 and causal != 1:   # decode with GQA: the group's query heads become rows
        heads, group, lq, cmode = Hk, 1, G, 0
        qs = (qs[0], qs[1] * G, qs[1]); os_ = (os_[0], os_[1] * G, os_[1]); ls = (ls[0], ls[1] * G, ls[1])
    elif Lq == 1 and causal == 2:
        cmode = 0
    p.q_batch_stride, p.q_head_stride, p.q_row_stride = qs[0], qs[1], qs[2]
    p.k_batch_stride, p.k_head_stride, p.k_row_stride = ks[0], ks[1], ks[2]
    p.v_batch_stride, p.v_head_stride, p.v_row_stride = vs[0], vs[1], vs[2]
    p.o_batch_stride, p.o_head_stride, p.o_row_stride = os_[0], os_[1], os_[2]
    p.lse_batch_stride, p.lse_head_stride, p.lse_row_stride = ls[0], ls[1], ls[2]
    p.batch, p.heads, p.kv_group, p.seqlen_q, p.seqlen_k, p.head_dim = B, heads, group, lq, Lk, E
    p.causal = 1 if cmode else 0
    p.causal_offset = (Lk - lq) if cmode == 2 else 0
    p.scale = scale
    p.scale_log2 = scale * 1.4426950408889634
    dc = dclass(E)
    D, BM, BN, W = TRAITS[dc]
    SBM, SBN, SW = SPLIT[dc]
    split = lq <= 16
    splits = 1
    if force_splits is not None:
        split, splits = force_splits > 0, max(1, force_splits)
    else:
        if not split:
            s = num_splits(B * heads * cdiv(lq, BM), cdiv(Lk, BN), 2 * SMS)
            split = s > 1
        if split:
            splits = num_splits(B * heads * cdiv(lq, SBM), cdiv(Lk, SBN), 2 * SMS)
    if split:
        BM, BN, W = SBM, SBN, SW
        ws_o = torch.empty(splits * B * heads * lq * E, dtype=torch.float32, device=q.device)
        ws_l = torch.empty(splits * B * heads * lq, dtype=torch.float32, device=q.device)
        p.o_accum, p.lse_accum = ws_o.data_ptr(), ws_l.data_ptr()
    else:
        ws_o = ws_l = None
    p.num_splits = splits
    smem = (BM + 2 * BN) * D * 2
    grid = (cdiv(lq, BM), B * heads, splits)
    rows = B * heads * lq
    keep = (ws_o, ws_l, q, k, v, o, lse)
    pref = ctypes.byref(p)

    if variant:
        assert not split and not bf16 and dc in (1, 3, 5)
        BM, BN, W = VARIANTS[dc][variant - 1]
        smem = (BM + 2 * BN) * D * 2
        grid = (cdiv(lq, BM), B * heads, 1)

    lib = LIB if lib is None else lib

    def run():
        st = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        if variant:
            r = lib.harness_variant(pref, dc, variant, grid[0], grid[1], W * 32, smem, st)
        else:
            r = lib.harness_launch(pref, dc, int(bf16), int(split), grid[0], grid[1], grid[2], W * 32, smem, st)
        if r:
            raise RuntimeError(f"launch failed: cuda error {r}")
        if split:
            r = lib.harness_combine(pref, int(bf16), ctypes.c_longlong(rows), st)
            if r:
                raise RuntimeError(f"combine failed: cuda error {r}")
    run.keep = keep
    run.params = p
    run.info = dict(split=split, splits=splits, grid=grid, smem=smem,
                    workspace_bytes=0 if ws_o is None else (ws_o.numel() + ws_l.numel()) * 4)
    return run
