"""ctypes front end of harness.cu: the provider's kernels with the same launch rules as FlashPlan.java / FlashDevice.java."""
import ctypes, math, os
import torch

LIB = ctypes.CDLL(os.environ.get("FLASH_HARNESS", os.path.join(os.path.dirname(__file__), "../../.devbuild-fwd/libflashharness.so")))

class FlashParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int64) for n in (
        "q k v o lse o_accum lse_accum q_batch_stride q_head_stride q_row_stride k_batch_stride k_head_stride "
        "k_row_stride v_batch_stride v_head_stride v_row_stride o_batch_stride o_head_stride o_row_stride "
        "lse_batch_stride lse_head_stride lse_row_stride batch heads kv_group seqlen_q seqlen_k head_dim causal "
        "causal_offset num_splits").split()] + [("scale", ctypes.c_float), ("scale_log2", ctypes.c_float)] + [
        (n, ctypes.c_int64) for n in "seed offset dropout_threshold".split()] + [("keep_scale", ctypes.c_float), ("pad_", ctypes.c_float),
        ("decode_pace_ps", ctypes.c_int64), ("decode_stagger", ctypes.c_int64)]

# head dim class -> (D, BM, BN, warps), decode traits (keys per warp tile, warps, stages); same tables as the .cu and
# FlashPlan.java (MAIN, DECODE)
TRAITS = [(32, 128, 128, 4), (64, 128, 128, 4), (96, 128, 64, 4), (128, 128, 64, 4), (192, 128, 64, 8), (256, 64, 64, 4)]
# FlashPlan.DECODE (devices with at least its shared memory per block) and FlashPlan.DECODE_COMPACT (the others)
DECODE = [(64, 4, 3), (64, 4, 2), (16, 4, 4), (32, 4, 2), (16, 4, 2), (16, 4, 2)]
# FlashPlan.DECODE before v14 (head dims 64 and 256 on 96 KB blocks), for a baseline harness (rules "v13")
DECODE_V13 = [(64, 4, 3), (32, 4, 3), (16, 4, 4), (32, 4, 2), (16, 4, 2), (16, 2, 3)]
DECODE_COMPACT = [(64, 4, 3), (32, 4, 3), (16, 4, 4), (16, 4, 3), (16, 4, 2), (16, 2, 3)]
# the committed v5 kernel's split-KV traits (BM, BN, warps), for a baseline harness built from it (legacy launch rules)
LEGACY_SPLIT = [(16, 128, 1), (16, 128, 1), (16, 64, 1), (16, 64, 1), (16, 64, 1), (16, 64, 1)]
# experimental fp16 tilings in harness.cu (bench only): (BM, BN, warps) per head-dim class
VARIANTS = {1: [(128, 64, 4), (128, 128, 8)], 3: [(128, 64, 8), (128, 32, 4)], 5: [(128, 64, 8), (64, 32, 4)]}
_props = torch.cuda.get_device_properties(0)
SMS = _props.multi_processor_count
SMEM_OPTIN = getattr(_props, "shared_memory_per_block_optin", 232448)   # cudaDevAttrMaxSharedMemoryPerBlockOptin
# FlashPlan.MAX_CLUSTER: split counts from 2 to this merge through distributed shared memory in one thread-block
# cluster (the _cl kernels) on devices of compute capability 9.0 and later
MAX_CLUSTER = 8
CLUSTERS = _props.major >= 9
# FlashPlan.CLUSTER_SPLIT_KEYS, TAIL_WAVES, TAIL_SPLIT_KEYS, TAIL_CLUSTER_KEYS (v8 split rules) and
# FlashDevice.SLAB_BYTES (merge slabs: merge counters up to this size kept zero by the kernel, no per-call memset)
CLUSTER_SPLIT_KEYS = 8192
TAIL_WAVES = 4
TAIL_SPLIT_KEYS = 2048
TAIL_CLUSTER_KEYS = 4096
SLAB_BYTES = 64 << 10
# FlashPlan.STEAL_SLOTS, STEAL_MIN_KEYS, STEAL_LONG_KEYS, STEAL_WAVE_EFFICIENCY: the work-stealing decode kernels
# (_ws) - partial slots per (m-block, batch, head), and where FlashPlan.of takes them when determinism is not asked for
STEAL_SLOTS = 8
STEAL_MIN_KEYS = 8192
STEAL_MIN_KEYS_HEAD_DIM_64 = 16384   # FlashPlan.STEAL_MIN_KEYS_HEAD_DIM_64 (v17b; rules "v17" and earlier: STEAL_MIN_KEYS)
STEAL_LONG_KEYS = 32768
# FlashPlan.STEAL_HELPER_KEYS: a grid below a wave that would split steals on the resident blocks (helpers from the start)
STEAL_HELPER_KEYS = 65536
# FlashPlan.UNSPLIT_MAX_KEYS, UNSPLIT_MIN_WAVES: short grids of at least a third of a wave run one split
UNSPLIT_MAX_KEYS = 4096
UNSPLIT_MIN_WAVES = 1 / 3
# FlashPlan.NARROW, NARROW_MAX_WAVES: head dim 128's 2-warp decode traits for one-split grids just over a wave
NARROW = (32, 2, 2)
NARROW_MAX_WAVES = 1.25
# FlashPlan.SHORT_TILES and its bounds: head dim 128's 16-key decode traits, one split, for grids just under a wave
SHORT_TILES = (16, 4, 2)
SHORT_TILES_MIN_WAVES, SHORT_TILES_MAX_WAVES, SHORT_TILES_MAX_KEYS = 0.7, 0.9, 8192
STEAL_WAVE_EFFICIENCY = 0.9

def resident_blocks(smem):
    """FlashPlan.residentBlocks: decode blocks of `smem` bytes resident at once (two 96 KB blocks per SM on an H100, one
    of 128 KB); stealing grids fill them, and only traits of one block per SM merge half a wave of splits in clusters."""
    return SMS * max(1, SMEM_OPTIN // smem)

# FlashPlan's fair-share pacing (paced plans): head dims, fewest keys per split, fractions of the DRAM peak (splits of
# fewer / at least PACE_LONG_SPLIT_KEYS keys), K + V bytes at least PACE_MIN_L2_MULTIPLE x the L2, at least
# PACE_MIN_WAVES of a wave, the least bandwidth that paces
PACE_HEAD_DIMS = (64, 128, 256)
PACE_MIN_SPLIT_KEYS = 4096
PACE_FRACTION, PACE_FRACTION_LONG, PACE_LONG_SPLIT_KEYS = 0.934, 0.941, 32768
PACE_MIN_L2_MULTIPLE = 2
PACE_MIN_WAVES = 0.5
MIN_PACE_BANDWIDTH = 1e11
# FlashPlan.SLIM, NARROW_64 and the paced grids of more than a wave: one split on the first of FlashPlan.PACED_WIDE of
# the head dim that serves the grid's waves, where its blocks per SM fit the shared memory and K + V take at most its
# bytes - (head dim, traits, blocks per SM, most waves, most bytes, FlashPlan.SlowerPace list (most waves, most keys,
# fraction; the first that serves), prepare's kind); PACED_WIDE_V16: v13-v16's (1.5 GB everywhere, no slower pace)
SLIM = (16, 2, 2)
NARROW_64 = (64, 2, 2)
PACE_NARROW_MAX_WAVES = 2
NARROW_BLOCKS_PER_SM, SLIM_BLOCKS_PER_SM, COMPACT_256_BLOCKS_PER_SM = 3, 4, 2
PACE_WIDE_MAX_BYTES, PACE_WIDE_MAX_BYTES_COMPACT_256 = 1_500_000_000, 3_000_000_000
NEAR_WAVE_256 = ((1.05, 1 << 62, 0.91), (1.1, 1 << 62, 0.92))
SHORT_NARROW_64 = ((PACE_NARROW_MAX_WAVES, 4096, 0.92),)
PACED_WIDE = [(64, NARROW_64, NARROW_BLOCKS_PER_SM, PACE_NARROW_MAX_WAVES, PACE_WIDE_MAX_BYTES, SHORT_NARROW_64, "narrow64"),
              (128, NARROW, NARROW_BLOCKS_PER_SM, PACE_NARROW_MAX_WAVES, PACE_WIDE_MAX_BYTES, (), "narrow"),
              (128, SLIM, SLIM_BLOCKS_PER_SM, SLIM_BLOCKS_PER_SM, PACE_WIDE_MAX_BYTES, (), "slim"),
              (256, DECODE_COMPACT[5], COMPACT_256_BLOCKS_PER_SM, PACE_NARROW_MAX_WAVES, PACE_WIDE_MAX_BYTES_COMPACT_256,
               NEAR_WAVE_256, "compact")]
PACED_WIDE_V16 = [w[:4] + (PACE_WIDE_MAX_BYTES, ()) + w[6:] for w in PACED_WIDE]
# FlashPlan.TAIL_UNSPLIT_HEAD_DIMS (v17): grids of TAIL_WAVES waves or more keep one split up to UNSPLIT_MAX_KEYS keys
TAIL_UNSPLIT_HEAD_DIMS = (64, 128)
# FlashPlan.MID_TAIL_* (v18): head dim 64's one-split grids of 2-4 waves, UNSPLIT_MAX_KEYS < keys <
# STEAL_MIN_KEYS_HEAD_DIM_64, whose last wave is 0.3-0.5 full split their keys in two, merged in a cluster
MID_TAIL_HEAD_DIM, MID_TAIL_MIN_WAVES, MID_TAIL_MIN_FILL, MID_TAIL_MAX_FILL, MID_TAIL_SPLITS = 64, 2, 0.3, 0.5, 2

# FlashPlan.PAIRED_LONG (v20): per paired head dim, the waves of units (more than, at most) of the grids of more than
# UNSPLIT_MAX_KEYS keys that take paired_splits rather than stealing; FlashPlan.PAIRED_HEAD_DIMS (its keys),
# PAIRED_SPLITS, PAIRED_MIN_EFFICIENCY (v19b): head dims whose 96 KB decode blocks pair up on an SM split grids below
# TAIL_WAVES waves to fill the SMs, then the resident blocks (v19b: grids of at most UNSPLIT_MAX_KEYS keys; v20: longer
# ones too, per PAIRED_LONG)
PAIRED_LONG = {96: (0, TAIL_WAVES), 192: (0.5, 1)}
PAIRED_HEAD_DIMS, PAIRED_SPLITS, PAIRED_MIN_EFFICIENCY = tuple(PAIRED_LONG), (1, 2, 4, 8), 0.9

def paired_splits(blocks, key_blocks, resident, one_per_sm=True):
    """FlashPlan.pairedSplits; one_per_sm=False: v19b's (FA2's split count up to a wave of units, even where its blocks
    exceed the SMs)."""
    if blocks <= SMS:
        per_sm = num_splits(blocks, key_blocks, SMS, min_eff=0.95)
        if blocks * per_sm <= SMS or not one_per_sm:
            return per_sm
    best, best_eff = 1, 0.0
    for s in PAIRED_SPLITS:
        if s > key_blocks:
            break
        waves = blocks * s / resident
        eff = waves / math.ceil(waves)
        if eff >= PAIRED_MIN_EFFICIENCY:
            return s
        if eff > best_eff:
            best, best_eff = s, eff
    return best

def mid_tail(head_dim, blocks, lk, resident):
    """FlashPlan.midTail."""
    if head_dim != MID_TAIL_HEAD_DIM or lk <= UNSPLIT_MAX_KEYS or lk >= STEAL_MIN_KEYS_HEAD_DIM_64:
        return False
    waves = blocks / resident
    fill = waves - math.floor(waves)
    return MID_TAIL_MIN_WAVES <= waves < TAIL_WAVES and MID_TAIL_MIN_FILL <= fill <= MID_TAIL_MAX_FILL

_CUDA_DRIVER = ctypes.CDLL("libcuda.so.1")

def _driver_attribute(attr):
    v = ctypes.c_int()
    assert _CUDA_DRIVER.cuDeviceGetAttribute(ctypes.byref(v), attr, torch.cuda.current_device()) == 0
    return v.value

# CudaDevice.memoryBandwidth (2 x memory clock x bus width, bytes/s) and l2CacheBytes, as the provider reads them
BANDWIDTH = 2 * _driver_attribute(36) * 1000 * _driver_attribute(37) // 8   # CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE (kHz), _BUS_WIDTH
L2_BYTES = _driver_attribute(38)   # CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE
# FlashPlan.Dram.of's stackAlignment (v18): the odd part of the HBM stack count (bus bits / 1024) x STACK_GRANULE, or 0
STACK_GRANULE = 1 << 16
_stacks = _driver_attribute(37) // 1024
_odd = _stacks // (_stacks & -_stacks) if _stacks else 0
STACK_ALIGNMENT = _odd * STACK_GRANULE if _odd > 1 else 0
# FlashPlan.STACK_ALIGNED_SPLIT_HEAD_DIMS: head dims whose stack-aligned grids take stack_aligned_splits; in v18c's
# rules also the head dims not paced where the grid's streams are stack-aligned (its STACK_ALIGNED_UNPACED_HEAD_DIMS)
STACK_ALIGNED_SPLIT_HEAD_DIMS = (64, 128)

# FlashPlan.STACK_ALIGNED_SHORT_SPLITS, STACK_ALIGNED_SPLITS (v18)
STACK_ALIGNED_SHORT_SPLITS, STACK_ALIGNED_SPLITS = 3, 2

def stack_aligned_splits(aligned_heads, blocks, lk, resident, stealing, only_stealing=True):
    """FlashPlan.stackAlignedSplits: the cluster splits of a grid whose heads are stack-aligned, or 0; only_stealing:
    v19's rule (only grids that would steal), else v18c's (one to two waves whatever their plan)."""
    if not aligned_heads or lk <= UNSPLIT_MAX_KEYS or lk >= STEAL_LONG_KEYS or only_stealing and not stealing:
        return 0
    if resident < blocks <= 2 * resident:
        return STACK_ALIGNED_SHORT_SPLITS
    return STACK_ALIGNED_SPLITS if stealing and 2 * resident < blocks < TAIL_WAVES * resident else 0

def stack_aligned(kv, splits, split_keys, alignment=None, either=False):
    """kv = (K head, K row, V head, V row) strides in bytes. v18c's KvLayout.stackAligned (either False): the heads with
    one split, the splits of a head with more; v19's FlashPlan.KvLayout.stackAligned (either True): the heads, or with
    more than one split the splits of a head."""
    alignment = STACK_ALIGNMENT if alignment is None else alignment
    if not alignment:
        return False
    heads = (kv[0], kv[2])
    starts = (split_keys * kv[1], split_keys * kv[3]) if splits > 1 else ()
    return any(x % alignment == 0 for x in (heads + starts if either else starts or heads))

def decode_smem(D, bn, w, st):
    return w * st * 2 * bn * D * 2

def pace_ps(grid_blocks, lk_per_split, e, traits, bandwidth=None, fraction=None):
    """FlashPlan's pace: picoseconds between a warp's key tiles for a paced grid of `grid_blocks` blocks of decode
    `traits` (keys per warp tile, warps, stages); fraction: a SlowerPace's, else FlashPlan's by the split's keys."""
    bandwidth = BANDWIDTH if bandwidth is None else bandwidth
    if fraction is None:
        fraction = PACE_FRACTION_LONG if lk_per_split >= PACE_LONG_SPLIT_KEYS else PACE_FRACTION
    bn, w, _ = traits
    return round(2 * bn * e * 2 * w * grid_blocks * 1e12 / (fraction * bandwidth))

def pace_plan(blocks, row_blocks, lk, e, dc, compact, sms=None, bandwidth=None, l2=None, one_wave=False,
              head_dims=PACE_HEAD_DIMS, wide_table=None, kv=None):
    """FlashPlan.of's paced plans: (splits, decode_pace_ps, traits) for a decode grid of `blocks` (batch x heads x row
    blocks), traits None (FlashPlan.DECODE's) or the kind of its PACED_WIDE entry ("narrow64", "narrow", "slim",
    "compact"); or None where it does not pace. one_wave: v12's rule (grids of at most one wave only); head_dims: the
    paced head dims (v12-v14: 128 only); wide_table: PACED_WIDE (None) or PACED_WIDE_V16; kv: K's and V's head and row
    strides in bytes (FlashPlan.KvLayout; None: before v18, no stack rule)."""
    wide_table = PACED_WIDE if wide_table is None else wide_table
    sms = SMS if sms is None else sms
    bandwidth = BANDWIDTH if bandwidth is None else bandwidth
    l2 = L2_BYTES if l2 is None else l2
    if not CLUSTERS or compact or TRAITS[dc][0] not in head_dims or bandwidth < MIN_PACE_BANDWIDTH or row_blocks != 1 \
            or blocks * lk * e * 4 < PACE_MIN_L2_MULTIPLE * l2:
        return None
    if blocks <= sms:
        splits = max(1, min(sms // blocks, lk // PACE_MIN_SPLIT_KEYS))
        if blocks * splits < PACE_MIN_WAVES * sms:
            return None
        bn = DECODE[dc][0]
        if kv is not None and TRAITS[dc][0] in STACK_ALIGNED_SPLIT_HEAD_DIMS \
                and stack_aligned(kv, splits, cdiv(cdiv(lk, bn), splits) * bn):
            return None
        return splits, pace_ps(blocks * splits, cdiv(lk, splits), e, DECODE[dc], bandwidth), None
    if one_wave:
        return None
    wide = [w for w in wide_table if w[0] == TRAITS[dc][0] and blocks <= w[3] * sms]
    if not wide or blocks * lk * e * 4 > wide[0][4] or wide[0][2] * decode_smem(wide[0][0], *wide[0][1]) > SMEM_OPTIN:
        return None
    _, traits, _, _, _, slower, kind = wide[0]
    if kv is not None and TRAITS[dc][0] in STACK_ALIGNED_SPLIT_HEAD_DIMS and stack_aligned(kv, 1, lk):
        return None
    fraction = next((f for w, keys, f in slower if blocks <= w * sms and lk <= keys), None)
    return 1, pace_ps(blocks, lk, e, traits, bandwidth, fraction), kind


# FlashPlan.MAIN_DECODE_HEAD_DIM, MAIN_DECODE_MAX_KEYS, MAIN_DECODE_WAVE_EFFICIENCY, MAIN_DECODE_MAX_WAVES (v16)
MAIN_DECODE_HEAD_DIM, MAIN_DECODE_MAX_KEYS, MAIN_DECODE_WAVE_EFFICIENCY, MAIN_DECODE_MAX_WAVES = 256, 8192, 0.8, 2

def main_decode(batch_heads, lq, lk, dc):
    """FlashPlan.mainDecode: whether a decode call (a device with clusters and FlashPlan.DECODE's traits) runs on the
    main kernel: head dim 256, at most 8192 keys, a main grid of at most two waves of its resident blocks (two per SM on
    an H100) whose last wave is at least 0.8 full."""
    D, BM, BN, _ = TRAITS[dc]
    if D != MAIN_DECODE_HEAD_DIM or lk > MAIN_DECODE_MAX_KEYS:
        return False
    waves = batch_heads * cdiv(lq, BM) / resident_blocks((BM + 2 * BN) * D * 2)
    return waves <= MAIN_DECODE_MAX_WAVES and waves / math.ceil(waves) >= MAIN_DECODE_WAVE_EFFICIENCY


def kv_read(k, v):
    """The floor of a decode call on k and v: a callable that reads both once, no attention, on the current stream
    (harness_stream_read: 264 blocks of 512 threads sweeping 64 KB chunks, the fastest plain read measured on the
    H100, KERNEL_NOTES.md v10)."""
    sink = torch.zeros(4, dtype=torch.int32, device=k.device)

    def read():
        r = LIB.harness_stream_read(ctypes.c_void_p(k.data_ptr()), ctypes.c_uint64(k.numel() * k.element_size()),
                                    ctypes.c_void_p(v.data_ptr()), ctypes.c_uint64(v.numel() * v.element_size()), 264,
                                    512, ctypes.c_uint64(64 << 10), ctypes.c_void_p(sink.data_ptr()),
                                    ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
        if r:
            raise RuntimeError(f"read failed: cuda error {r}")
    return read

def dclass(e):
    for i, t in enumerate(TRAITS):
        if e <= t[0]:
            return i
    raise ValueError(e)

def cdiv(a, b):
    return (a + b - 1) // b

def num_splits(work, n_blocks, slots, max_splits=128, min_eff=0.85):
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
        if elig(s) and effs[s - 1] >= min_eff * best:
            return s
    return 1

# optional second harness (FLASH_HARNESS_BASE: an earlier kernel version) timed in the same process by bench.py
BASE_LIB = ctypes.CDLL(os.environ["FLASH_HARNESS_BASE"]) if os.environ.get("FLASH_HARNESS_BASE") else None

# The Hopper wgmma main kernels (flash_fwd_sm90.cu through harness_sm90.cu, FLASH_SM90 or .dev-fwd/libflashsm90.so).
# FlashPlan's rule: compute capability 9.0, no split, no decode call, a head dim whose class (dclass) is one of SM90's
# and at least its minimum key count; then they replace the mma.sync main kernel. SM90: head-dim class -> (harness
# table index, kBlockN, kStages, minimum keys), FlashPlan.HOPPER's table; head dims below the class take the _pad row,
# SM90_PAD rows further on. SM90_VARIANTS: experimental traits of harness_sm90.cu (bench only), name -> (index, D,
# kBlockN, kStages).
_SM90_PATH = os.environ.get("FLASH_SM90", os.path.join(os.path.dirname(__file__), "../../.dev-fwd/libflashsm90.so"))
SM90_LIB = ctypes.CDLL(_SM90_PATH) if _props.major == 9 and os.path.exists(_SM90_PATH) else None
SM90 = {64: (0, 128, 2, 8192), 96: (1, 128, 2, 0), 128: (2, 128, 2, 0), 192: (3, 64, 2, 0), 256: (4, 64, 2, 0)}
SM90_PAD = 5
SM90_VARIANTS = {"d64_n128s3": (10, 64, 128, 3), "d128_n128s3": (11, 128, 128, 3), "d128_n64s3": (12, 128, 64, 3),
                 "d96_n128s3": (13, 96, 128, 3), "d96_n64s2": (14, 96, 64, 2), "d192_n64s3": (15, 192, 64, 3),
                 "d192_n96s2": (16, 192, 96, 2)}

def sm90_smem(D, bn, stages):
    return 128 * D * 2 + 2 * stages * bn * D * 2

# prepare's baseline rule sets that follow v8's, oldest first (the default, "v8", is FlashPlan's current rules)
BASE_RULES = ("v12", "v13", "v14", "v15", "v16", "v17", "v17b", "v18c", "v19", "v19b")

def rules_before(rules, version):
    """Whether baseline `rules` predate the rule change of `version` (one of BASE_RULES, or a later one: "v20"; v18's
    rules are gated as "v18c", the rule set they shipped in)."""
    return rules in (BASE_RULES[:BASE_RULES.index(version)] if version in BASE_RULES else BASE_RULES)

def prepare(q, k, v, o, lse, causal=0, scale=None, force_splits=None, variant=0, lib=None, compact=False,
            split_slots_mul=1, zero_counters=None, cluster=None, sm90=None, rules="v8", steal=None, deterministic=False,
            steal_blocks=None, narrow=None, short_tiles=None, paced=None, slim=False, stagger=None):
    """q,k,v,o: [B,H,L,E] views with unit last stride; lse [B,H,Lq] fp32 or None; causal 0 none, 1 top-left, 2 bottom-right.
    Returns a callable that launches on the current stream (workspace allocated once). lib=BASE_LIB runs the baseline
    harness (the committed kernel); one from before v6 with that kernel's launch rules. compact=True: the decode traits of devices with less shared
    memory per block (FlashPlan.DECODE_COMPACT), as if SMEM_OPTIN were below FlashPlan.DECODE's. Bench-only knobs:
    split_slots_mul (more splits), zero_counters=False (no per-call memset: the kernel leaves its counters at zero, so
    graph replays stay correct; None = FlashDevice's rule: a memset only where the counters exceed a merge slab,
    SLAB_BYTES - they are allocated zeroed and the kernel leaves them at zero, as FlashDevice's slabs).
    cluster: None = FlashPlan's rule, True / False forced (the counter path when False). rules: "v8" = FlashPlan.of
    (small grids: one wave of workspace splits, half a wave of cluster splits from CLUSTER_SPLIT_KEYS keys per split;
    grids of TAIL_WAVES waves: splits of TAIL_SPLIT_KEYS keys, in clusters up to TAIL_CLUSTER_KEYS keys per split; "v13" = v13's plans and decode traits), "v7" = the committed v7 rules (half a wave of
    splits wherever clusters merge, a memset on every workspace call) for a baseline harness, "v12" = "v8" pacing only
    grids of at most one wave (v12's plans, for a baseline harness of that kernel); "v14" / ... / "v17b": those
    versions' plans (v14: pacing at head dim 128 only; v15: no decode on the main kernel; v16: tail splits at every head
    dim, no slower pace, 1.5 GB paced grids at head dim 256; v17: head dim 64 steals from 8192 keys; v17b: no mid-tail
    split, pacing stack-aligned streams). sm90: None = FlashPlan's rule for the Hopper wgmma kernels, False = the mma.sync
    main kernel, or a name in SM90_VARIANTS (bench only). steal: None = FlashPlan's work-stealing rule for the decode
    kernel (the _ws kernels, only where not `deterministic`), True / False forced; steal_blocks overrides its grid.
    narrow, short_tiles: None = FlashPlan's rules for the NARROW and SHORT_TILES decode traits (head dim 128, one
    split), True / False forced; slim=True forces FlashPlan.SLIM (one split; the paced rule also picks it). paced: None
    = FlashPlan's fair-share pacing rule (its splits, traits and pace), False = never, True = the rule's pace for the
    grid as planned (with force_splits: that split count). stagger: None = FlashPlan's rule for the staggered start
    of the decode kernels that do not steal (p.decode_stagger), True / False forced."""
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
    kv_bytes = tuple(x * k.element_size() for x in (ks[1], ks[2], vs[1], vs[2]))   # FlashPlan.KvLayout
    p.batch, p.heads, p.kv_group, p.seqlen_q, p.seqlen_k, p.head_dim = B, heads, group, lq, Lk, E
    p.causal = 1 if cmode else 0
    p.causal_offset = (Lk - lq) if cmode == 2 else 0
    p.scale = scale
    p.scale_log2 = scale * 1.4426950408889634
    dc = dclass(E)
    D, BM, BN, W = TRAITS[dc]
    lib = LIB if lib is None else lib
    legacy = hasattr(lib, "harness_combine")   # a baseline built from a kernel before v6 (split + combine kernels)
    split = lq <= 16
    splits = 1
    plan_cluster = False   # FlashPlan.cluster() of the rule's split count
    narrow64 = False   # FlashPlan.NARROW_64: head dim 64's paced grids of one to two waves
    if legacy:   # the v5 rules: one-warp split kernels, 2 blocks per SM, separate combine kernel
        SBM, SBN, SW = LEGACY_SPLIT[dc]
        if force_splits is not None:
            split, splits = force_splits > 0, max(1, force_splits)
        else:
            if not split:
                split = num_splits(B * heads * cdiv(lq, BM), cdiv(Lk, BN), 2 * SMS) > 1
            if split:
                splits = num_splits(B * heads * cdiv(lq, SBM), cdiv(Lk, SBN), 2 * SMS)
        if split:
            BM, BN, W = SBM, SBN, SW
        smem = (BM + 2 * BN) * D * 2
        ws_extra = 0
    else:
        dbn, dw, dst = (DECODE_V13 if rules == "v13" else DECODE)[dc]
        if compact or decode_smem(D, dbn, dw, dst) > SMEM_OPTIN:
            compact = True
            dbn, dw, dst = DECODE_COMPACT[dc]
        dsmem = decode_smem(D, dbn, dw, dst)
        pace = 0
        if force_splits is not None:
            split, splits = force_splits > 0, max(1, force_splits)
        else:
            if not split:
                split = num_splits(B * heads * cdiv(lq, BM), cdiv(Lk, BN), 2 * SMS) > 1
            if split:   # FlashPlan.of: the fewest splits within 95% of the best wave efficiency
                can_cl = CLUSTERS and cluster is not False and hasattr(lib, "harness_launch_cluster")
                blocks, kblocks = B * heads * cdiv(lq, 16), cdiv(Lk, dbn * dw)
                if rules == "v7":   # one decode block per SM (per two SMs where clusters merge the splits)
                    splits = num_splits(blocks, kblocks, (SMS // 2 if can_cl else SMS) * split_slots_mul, min_eff=0.95)
                    plan_cluster = can_cl and 2 <= splits <= MAX_CLUSTER
                    if zero_counters is None:
                        zero_counters = True
                elif not rules_before(rules, "v16") and CLUSTERS and not compact \
                        and main_decode(B * heads, lq, Lk, dc):
                    split = False   # FlashPlan.mainDecode (v16): the main kernel, no split
                elif paced is not False and (paced_plan := pace_plan(
                        blocks, cdiv(lq, 16), Lk, E, dc, compact, one_wave=rules == "v12",
                        head_dims=(128,) if rules_before(rules, "v15") else PACE_HEAD_DIMS,
                        wide_table=PACED_WIDE_V16 if rules_before(rules, "v17") else PACED_WIDE,
                        kv=kv_bytes if rules == "v18c" else None)):
                    splits, pace, kind = paced_plan
                    steal = short_tiles = False
                    narrow, slim, narrow64 = kind == "narrow", kind == "slim", kind == "narrow64"
                    if kind == "compact":
                        compact = True
                        dbn, dw, dst = DECODE_COMPACT[dc]
                        dsmem = decode_smem(D, dbn, dw, dst)
                else:
                    # rules "v13": v13's plans (stealing grids of one block per SM, half-wave clusters for every
                    # traits, tail splits at any length), for a baseline harness
                    v13 = rules == "v13"
                    resident = SMS if v13 else resident_blocks(dsmem)
                    splits = num_splits(blocks, kblocks, SMS * split_slots_mul, min_eff=0.95)
                    plan_cluster = False
                    # FlashPlan.of's alignedHeads (v18)
                    aligned_heads = not rules_before(rules, "v18c") \
                        and TRAITS[dc][0] in STACK_ALIGNED_SPLIT_HEAD_DIMS and stack_aligned(kv_bytes, 1, Lk)
                    # FlashPlan.pairedSplits (v19b; v20: longer keys per PAIRED_LONG)
                    paired = can_cl and not rules_before(rules, "v19b") and TRAITS[dc][0] in PAIRED_HEAD_DIMS \
                        and resident >= 2 * SMS and blocks < TAIL_WAVES * SMS \
                        and (Lk <= UNSPLIT_MAX_KEYS or not rules_before(rules, "v20")
                             and PAIRED_LONG[TRAITS[dc][0]][0] * SMS < blocks <= PAIRED_LONG[TRAITS[dc][0]][1] * SMS)
                    if paired:
                        splits = paired_splits(blocks, kblocks, resident, one_per_sm=not rules_before(rules, "v20"))
                    elif can_cl and splits > 1 and Lk <= UNSPLIT_MAX_KEYS and blocks >= UNSPLIT_MIN_WAVES * SMS:
                        splits = 1
                    if short_tiles is None:   # (v18c: not where the heads are stack-aligned)
                        short_tiles = can_cl and not steal and dc == 3 and not compact and Lk <= SHORT_TILES_MAX_KEYS \
                            and not (aligned_heads and rules == "v18c") \
                            and SHORT_TILES_MIN_WAVES * SMS <= blocks < SHORT_TILES_MAX_WAVES * SMS \
                            and hasattr(lib, "harness_launch_d128")
                    if short_tiles:
                        splits, steal, narrow = 1, False, False
                    elif can_cl and not paired and splits > 1 and steal is None and not deterministic \
                            and Lk >= STEAL_HELPER_KEYS and blocks * STEAL_SLOTS >= SMS \
                            and hasattr(lib, "harness_launch_steal"):
                        steal, steal_blocks = True, steal_blocks or resident
                    elif can_cl and splits > 1:
                        half = num_splits(blocks, kblocks, max(1, SMS // 2) * split_slots_mul, min_eff=0.95)
                        if resident == SMS and 2 <= half <= MAX_CLUSTER and Lk >= CLUSTER_SPLIT_KEYS * half:
                            splits, plan_cluster = half, True
                    # (steal=False, forced: the tail splits a grid that may not steal takes)
                    elif can_cl and blocks >= TAIL_WAVES * SMS and (deterministic or Lk < STEAL_LONG_KEYS or v13
                                                                     or steal is False) \
                            and (rules_before(rules, "v17") or Lk > UNSPLIT_MAX_KEYS
                                 or TRAITS[dc][0] not in TAIL_UNSPLIT_HEAD_DIMS):
                        tail = min(MAX_CLUSTER, Lk // TAIL_SPLIT_KEYS, kblocks)
                        if tail >= 2:
                            splits, plan_cluster = tail, cdiv(Lk, tail) <= TAIL_CLUSTER_KEYS
                    elif can_cl and not paired and steal is None and not deterministic and Lk >= (
                            STEAL_MIN_KEYS_HEAD_DIM_64 if TRAITS[dc][0] == 64 and not rules_before(rules, "v17b")
                            else STEAL_MIN_KEYS) \
                            and hasattr(lib, "harness_launch_steal"):   # FlashPlan.of's work-stealing rule
                        waves = blocks / SMS
                        full = blocks <= SMS and waves / math.ceil(waves) >= STEAL_WAVE_EFFICIENCY
                        steal = not full or Lk >= STEAL_LONG_KEYS
                        if steal:
                            steal_blocks = steal_blocks or min(blocks, resident)
                    aligned = 0 if not can_cl or compact or cdiv(lq, 16) != 1 \
                        else stack_aligned_splits(aligned_heads, blocks, Lk, resident, bool(steal),
                                                  only_stealing=not rules_before(rules, "v19"))
                    if aligned:   # FlashPlan.stackAlignedSplits (v18)
                        splits, plan_cluster, steal = aligned, True, False
                    elif can_cl and not rules_before(rules, "v18c") and splits == 1 and not steal and not compact \
                            and mid_tail(TRAITS[dc][0], blocks, Lk, resident):   # FlashPlan.midTail (v18)
                        splits, plan_cluster = MID_TAIL_SPLITS, True
                    if narrow is None:
                        narrow = can_cl and splits == 1 and not steal and dc == 3 and not compact \
                            and SMS < blocks <= NARROW_MAX_WAVES * SMS \
                            and NARROW_BLOCKS_PER_SM * decode_smem(D, *NARROW) <= SMEM_OPTIN \
                            and hasattr(lib, "harness_launch_d128")
        short_tiles = bool(short_tiles and split)
        narrow = bool(narrow and split and not steal and not short_tiles)
        slim = bool(slim and split and not steal and not short_tiles and not narrow)
        if narrow or short_tiles or slim:
            assert dc == 3 and not compact and splits == 1
            dbn, dw, dst = NARROW if narrow else SHORT_TILES if short_tiles else SLIM
            dsmem = decode_smem(D, dbn, dw, dst)
        elif narrow64:
            assert dc == 1 and not compact and splits == 1 and split
            dbn, dw, dst = NARROW_64
            dsmem = decode_smem(D, dbn, dw, dst)
        if paced and split and not pace:
            pace = pace_ps(B * heads * cdiv(lq, 16) * splits, cdiv(Lk, splits), E, (dbn, dw, dst))
        if split:
            BM, BN, W = 16, dbn, dw
            smem = dsmem
        else:
            smem = (BM + 2 * BN) * D * 2
        ws_extra = B * heads * cdiv(lq, 16)   # the decode kernel's u32 merge counters
    if legacy or not hasattr(lib, "harness_launch_cluster"):
        cluster = False
    elif cluster is None:
        cluster = CLUSTERS and split and 2 <= splits <= MAX_CLUSTER and (force_splits is not None or plan_cluster)
    cluster = bool(cluster and split and splits > 1)
    steal = bool(steal)
    counters = None
    if steal:   # the _ws kernels: STEAL_SLOTS partial slots per unit (m-block, batch, head), 4 U + 2 counters
        assert split and not legacy
        cluster, splits, units = False, STEAL_SLOTS, B * heads * cdiv(lq, 16)
        ws_o = torch.empty(splits * B * heads * lq * (E + 1), dtype=torch.float32, device=q.device)
        ws_l = torch.zeros(4 * units + 2, dtype=torch.int32, device=q.device)
        counters = ws_l
        p.o_accum, p.lse_accum = ws_o.data_ptr(), ws_l.data_ptr()
        zero_counters = bool(zero_counters)
    elif split and (splits > 1 or legacy) and not cluster:
        if legacy:   # the v5 kernel: partial outputs; partial LSEs
            ws_o = torch.empty(splits * B * heads * lq * E, dtype=torch.float32, device=q.device)
            ws_l = torch.zeros(splits * B * heads * lq, dtype=torch.float32, device=q.device)
        elif hasattr(lib, "harness_workspace_layout"):   # v8: partial outputs then partial LSEs; the counters alone
            ws_o = torch.empty(splits * B * heads * lq * (E + 1), dtype=torch.float32, device=q.device)
            ws_l = torch.zeros(ws_extra, dtype=torch.float32, device=q.device)
            counters = ws_l
        else:   # a v6 / v7 baseline kernel: partial outputs; partial LSEs then the counters
            ws_o = torch.empty(splits * B * heads * lq * E, dtype=torch.float32, device=q.device)
            ws_l = torch.zeros(splits * B * heads * lq + ws_extra, dtype=torch.float32, device=q.device)
            counters = ws_l[splits * B * heads * lq:]
        p.o_accum, p.lse_accum = ws_o.data_ptr(), ws_l.data_ptr()
        if zero_counters is None:   # FlashDevice: a merge slab (no memset) where the counters fit one
            zero_counters = counters.numel() * 4 > SLAB_BYTES
    else:
        ws_o = ws_l = None
    p.num_splits = splits
    p.decode_pace_ps = pace if split and not legacy else 0
    if stagger is None:   # FlashPlan.stagger (v19): stack-aligned streams (v19b: of grids below TAIL_WAVES waves)
        stagger = CLUSTERS and not rules_before(rules, "v19") and rules != "v7" and not variant \
            and (rules_before(rules, "v19b") or B * heads * cdiv(lq, 16) < TAIL_WAVES * SMS) \
            and stack_aligned(kv_bytes, splits, cdiv(cdiv(Lk, BN), splits) * BN, either=True)
    p.decode_stagger = int(bool(stagger) and split and not steal and not legacy)
    grid = (cdiv(lq, BM), B * heads, splits)
    if steal:   # at most one block per SM (steal_blocks: a bench-only override)
        grid = (steal_blocks or min(SMS, B * heads * cdiv(lq, 16)), 1, 1)
    rows = B * heads * lq
    keep = (ws_o, ws_l, q, k, v, o, lse)
    pref = ctypes.byref(p)

    if variant:
        assert not split and not bf16 and dc in (1, 3, 5)
        BM, BN, W = VARIANTS[dc][variant - 1]
        smem = (BM + 2 * BN) * D * 2
        grid = (cdiv(lq, BM), B * heads, 1)
    compact = compact and split and not legacy
    sm90_index = None
    if isinstance(sm90, str):
        sm90_index, D, BN, S90 = SM90_VARIANTS[sm90]
        assert not split and E == D
    elif sm90 is None and SM90_LIB is not None and lib is LIB and not split and not variant and D in SM90 \
            and Lk >= SM90[D][3] and lq > 16:   # FlashPlan.hopper: never a decode call (no dropout here)
        sm90_index, BN, S90, _ = SM90[D]
        sm90_index += 0 if E == D else SM90_PAD
    if sm90_index is not None:
        BM, W, smem = 128, 8, sm90_smem(D, BN, S90)
        grid = (cdiv(lq, BM), B * heads, 1)

    def run():
        st = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        if counters is not None and zero_counters:
            # as FlashDevice: cuMemsetD8Async of the counters on every call (a memset node in a graph)
            r = lib.harness_memset(ctypes.c_void_p(counters.data_ptr()), ctypes.c_size_t(counters.numel() * 4), st)
            if r:
                raise RuntimeError(f"memset failed: cuda error {r}")
        if sm90_index is not None:
            r = SM90_LIB.harness_sm90_launch(pref, sm90_index, int(bf16), grid[0], grid[1], W * 32, smem, st)
        elif variant:
            r = lib.harness_variant(pref, dc, variant, grid[0], grid[1], W * 32, smem, st)
        elif steal:
            r = lib.harness_launch_steal(pref, dc, int(bf16), int(compact), grid[0], grid[1], W * 32, smem, st)
        elif narrow or short_tiles or slim:
            r = lib.harness_launch_d128(pref, 0 if narrow else 1 if short_tiles else 2, int(bf16), grid[0], grid[1],
                                        grid[2], W * 32, smem, st)
        elif narrow64:
            r = lib.harness_launch_d64_narrow(pref, int(bf16), grid[0], grid[1], grid[2], W * 32, smem, st)
        elif cluster:
            r = lib.harness_launch_cluster(pref, dc, int(bf16), int(compact), grid[0], grid[1], grid[2], W * 32, smem, st)
        elif compact:
            r = lib.harness_launch_compact(pref, dc, int(bf16), grid[0], grid[1], grid[2], W * 32, smem, st)
        else:
            r = lib.harness_launch(pref, dc, int(bf16), int(split), grid[0], grid[1], grid[2], W * 32, smem, st)
        if r:
            raise RuntimeError(f"launch failed: cuda error {r}")
        if split and legacy:
            r = lib.harness_combine(pref, int(bf16), ctypes.c_longlong(rows), st)
            if r:
                raise RuntimeError(f"combine failed: cuda error {r}")
    run.keep = keep
    run.params = p
    run.counters = counters   # the merge counters: zero after every completed launch
    run.info = dict(split=split, splits=splits, grid=grid, smem=smem, compact=compact, cluster=cluster, sm90=sm90_index, steal=steal, narrow=narrow, narrow64=narrow64, short_tiles=short_tiles, slim=slim,
                    pace_ps=p.decode_pace_ps, stagger=bool(p.decode_stagger),
                    memset=bool(counters is not None and zero_counters),
                    workspace_bytes=0 if ws_o is None else (ws_o.numel() + ws_l.numel()) * 4)
    return run
