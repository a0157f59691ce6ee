"""Correctness of the kernels against a float64 reference (random shapes, strides, masks); prints a summary."""
import math, random, sys, time
import torch
from flashlib import prepare, dclass, TRAITS, PACE_HEAD_DIMS

def reference(q, k, v, causal, scale, keep=None, keep_scale=1.0):
    """float64 O and LSE; keep (bool [B, Hq, Lq, Lk]): dropout on the normalised P, kept values times keep_scale."""
    B, H, Lq, E = q.shape
    Hk, Lk = k.shape[1], k.shape[2]
    G = H // Hk
    kq = k.double() if G == 1 else k.double().repeat_interleave(G, 1)
    vq = v.double() if G == 1 else v.double().repeat_interleave(G, 1)
    s = torch.matmul(q.double(), kq.transpose(-1, -2)) * scale
    if causal:
        i = torch.arange(Lq, device=q.device)[:, None]
        j = torch.arange(Lk, device=q.device)[None, :]
        off = 0 if causal == 1 else Lk - Lq
        s = s.masked_fill(j > i + off, float("-inf"))
    lse = torch.logsumexp(s, -1)
    pm = torch.exp(s - lse[..., None])
    pm = torch.nan_to_num(pm, nan=0.0)
    if keep is not None:
        pm = pm * keep.double() * keep_scale
    o = torch.matmul(pm, vq)
    return o, lse

def make(B, H, L, E, dtype, layout, gen):
    if layout == "bhle":
        return torch.randn(B, H, L, E, dtype=dtype, device="cuda", generator=gen)
    if layout == "blhe":
        return torch.randn(B, L, H, E, dtype=dtype, device="cuda", generator=gen).transpose(1, 2)
    # padded rows: row stride E + 8
    t = torch.randn(B, H, L, E + 8, dtype=dtype, device="cuda", generator=gen)
    return t[..., :E]

def one(cfg, gen, replays=1, zero_counters=None, compact=False, cluster=None, steal=None, paced=None,
        deterministic=False, stagger=None, sm90=None):
    B, H, G, Lq, Lk, E, dtype, causal, layout, scale, splits = cfg
    q = make(B, H, Lq, E, dtype, layout, gen)
    k = make(B, H // G, Lk, E, dtype, layout, gen)
    v = make(B, H // G, Lk, E, dtype, layout, gen)
    o = torch.full((B, H, Lq, E), float("nan"), dtype=dtype, device="cuda")
    if layout == "blhe":
        o = torch.full((B, Lq, H, E), float("nan"), dtype=dtype, device="cuda").transpose(1, 2)
    lse = torch.full((B, H, Lq), float("nan"), dtype=torch.float32, device="cuda")
    sc = scale if scale is not None else 1 / math.sqrt(E)
    run = prepare(q, k, v, o, lse, causal, sc, force_splits=splits, zero_counters=zero_counters, compact=compact,
                  cluster=cluster, steal=steal, paced=paced, deterministic=deterministic, stagger=stagger, sm90=sm90)
    run()
    torch.cuda.synchronize()
    if replays > 1:   # the same launch again (as a captured graph would): the decode counters must start over
        first_o, first_l = o.clone(), lse.clone()
        for _ in range(replays - 1):
            o.fill_(float("nan")); lse.fill_(float("nan"))
            run()
        torch.cuda.synchronize()
        # the _ws kernels' bits depend on which block computed which tile (the last replay is checked below)
        if not run.info["steal"] and not (torch.equal(o, first_o) and torch.equal(lse.nan_to_num(), first_l.nan_to_num())):
            return False, float("inf"), float("inf"), run.info
    ro, rl = reference(q, k, v, causal, sc)
    fin = torch.isfinite(rl)
    oerr = (o.double() - ro).abs().max().item()
    nan_o = torch.isnan(o).any().item()
    lerr = (lse.double()[fin] - rl[fin]).abs().max().item() if fin.any() else 0.0
    masked_ok = bool((lse[~fin] == float("-inf")).all().item()) and bool((o[~fin] == 0).all().item())
    tol = 4e-3 if dtype == torch.float16 else 3e-2
    # the workspace path leaves its merge counters at zero: FlashDevice's merge slabs rely on it
    ws_zero = run.counters is None or torch.count_nonzero(run.counters).item() == 0
    ok = (not nan_o) and oerr <= tol and lerr <= 2e-3 and masked_ok and ws_zero
    if not ws_zero:
        print("workspace not left at zero", run.info)
    return ok, oerr, lerr, run.info

def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else int(time.time())
    print("check seed", seed)
    rnd = random.Random(seed)
    gen = torch.Generator(device="cuda").manual_seed(seed)
    cfgs = []
    # fixed edge cases
    for E in (8, 32, 40, 64, 80, 96, 128, 160, 192, 200, 256):
        for dt in (torch.float16, torch.bfloat16):
            cfgs.append((2, 4, 1, 77, 131, E, dt, 0, "bhle", None, None))
            cfgs.append((1, 4, 2, 130, 65, E, dt, 1, "blhe", None, None))
            cfgs.append((1, 2, 1, 65, 130, E, dt, 2, "pad", 0.3, None))
    for Lq, Lk in ((1, 1), (1, 7), (7, 1), (1, 5000), (16, 3000), (3, 2), (200, 3)):
        for c in (0, 1, 2):
            cfgs.append((2, 4, 2, Lq, Lk, 64, torch.float16, c, "bhle", None, None))
            cfgs.append((1, 8, 4, Lq, Lk, 128, torch.bfloat16, c, "blhe", None, None))
    # forced split-KV on longer queries
    for s in (2, 5):
        cfgs.append((1, 4, 1, 300, 1000, 128, torch.float16, 1, "bhle", None, s))
        cfgs.append((2, 2, 2, 40, 777, 64, torch.bfloat16, 2, "blhe", None, s))
    # decode (the flash_decode kernels): issue-6 shapes scaled down, GQA packing, every head-dim class, one split
    for E in (32, 64, 96, 128, 192, 256, 72, 120):
        for dt in (torch.float16, torch.bfloat16):
            cfgs.append((1, 16, 1, 1, 4096, E, dt, 0, "bhle", None, None))
            cfgs.append((2, 8, 4, 1, 2049, E, dt, 2, "blhe", None, None))
            cfgs.append((3, 4, 1, 5, 1500, E, dt, 1, "pad", None, 1))
    for Lk in (1, 2, 17, 63, 65, 1000, 20000):
        cfgs.append((1, 32, 8, 1, Lk, 128, torch.float16, 0, "bhle", None, None))
        cfgs.append((1, 4, 1, 1, Lk, 128, torch.bfloat16, 0, "bhle", -0.3, 128 if Lk >= 128 else None))
    cfgs.append((64, 16, 1, 1, 700, 128, torch.float16, 0, "bhle", None, None))   # a full grid: one split
    # the v8 rules (FlashPlan.of on sm_90): B = 1 workspace splits at 4k / 16k keys, cluster splits from 8192 keys per
    # split; grids of TAIL_WAVES waves of blocks split into clusters of TAIL_SPLIT_KEYS keys (incl. GQA packing)
    for Lk in (4096, 16384, 65536):
        cfgs.append((1, 16, 1, 1, Lk, 128, torch.float16, 0, "bhle", None, None))
        cfgs.append((1, 16, 2, 1, Lk, 128, torch.bfloat16, 2, "blhe", None, None))
    cfgs.append((34, 16, 1, 1, 4100, 64, torch.float16, 0, "bhle", None, None))
    cfgs.append((34, 32, 2, 1, 8200, 64, torch.bfloat16, 0, "blhe", 0.2, None))
    # grids of TAIL_WAVES waves steal from STEAL_LONG_KEYS keys (v14; head dim 32: on two blocks per SM), or with
    # determinism split their tail through the workspace (the `deterministic` list below)
    tail_long = (34, 16, 1, 1, 33000, 32, torch.float16, 0, "bhle", None, None)
    cfgs.append(tail_long)
    # v14: head dim 128 over four waves steals on one block per SM from STEAL_LONG_KEYS keys (a padded head dim); the
    # 128 KB decode traits of head dims 256 (16 workspace splits at B = 1; two at B = 8 with a length inside a tile;
    # stealing with helpers at B = 4, 64k keys: in the unpaced list below) and 64 (one split, GQA-packed rows, padded
    # rows: paced since v15, and unpaced below)
    cfgs.append((33, 16, 1, 1, 32768, 104, torch.bfloat16, 0, "bhle", None, None))
    cfgs.append((1, 8, 1, 1, 4096, 256, torch.float16, 0, "bhle", None, None))
    cfgs.append((8, 8, 1, 1, 4100, 256, torch.bfloat16, 0, "blhe", -0.2, None))
    cfgs.append((16, 32, 4, 1, 16384, 64, torch.float16, 0, "pad", None, None))
    # the v12 paced plans (FlashPlan.of on sm_90, head dim 128, at most one wave): one split (B = 6, 8; a padded head
    # dim), workspace splits (B = 1-4; GQA-packed rows, causal bottom-right with one query, a length inside a tile),
    # the long-split pace (B = 5 at 64k); the v13 ones of more than a wave, one split on the NARROW blocks up to two
    # waves (B = 9-12; a padded head dim, GQA-packed rows) and the SLIM ones beyond (B = 18, 28; a padded head dim);
    # each call twice, the same bits both times
    paced = [(6, 16, 1, 1, 16384, 128, torch.float16, 0, "bhle", None, None),
             (8, 16, 1, 1, 4100, 120, torch.float16, 0, "bhle", -0.1, None),
             (2, 16, 1, 1, 16384, 128, torch.bfloat16, 0, "blhe", 0.2, None),
             (3, 16, 1, 1, 8200, 128, torch.float16, 0, "pad", None, None),
             (3, 32, 2, 1, 16384, 128, torch.bfloat16, 0, "bhle", None, None),
             (4, 16, 1, 1, 16384, 128, torch.float16, 2, "bhle", None, None),
             (1, 16, 1, 1, 65536, 128, torch.bfloat16, 0, "bhle", None, None),
             (5, 16, 1, 1, 65536, 128, torch.bfloat16, 0, "blhe", None, None),
             (9, 16, 1, 1, 4100, 128, torch.float16, 0, "bhle", None, None),
             (10, 16, 1, 1, 8192, 120, torch.bfloat16, 0, "blhe", 0.2, None),
             (12, 32, 2, 1, 4096, 128, torch.float16, 2, "bhle", None, None),
             (18, 16, 1, 1, 2050, 128, torch.bfloat16, 0, "pad", None, None),
             (28, 16, 1, 1, 4096, 104, torch.float16, 0, "bhle", -0.2, None),
             # v15: head dims 64 and 256 - one wave of workspace splits (E = 64 B = 1, 2; E = 256 B = 2, 4; a padded
             # head dim, GQA-packed rows, a length inside a tile), one split (E = 64 B = 4; E = 256 B = 16), and more
             # than a wave on head dim 64's narrow blocks (B = 5-8, a padded head dim) and 256's compact ones (B = 17,
             # 24; a padded head dim)
             (1, 32, 1, 1, 16384, 64, torch.float16, 0, "bhle", None, None),
             (2, 32, 1, 1, 65536, 64, torch.bfloat16, 0, "blhe", None, None),
             (2, 64, 2, 1, 16400, 56, torch.float16, 0, "pad", 0.1, None),
             (4, 32, 1, 1, 16384, 64, torch.bfloat16, 0, "bhle", None, None),
             (2, 8, 1, 1, 65536, 256, torch.float16, 0, "bhle", None, None),
             (4, 8, 1, 1, 16390, 248, torch.bfloat16, 0, "blhe", -0.1, None),
             (16, 8, 1, 1, 4096, 256, torch.float16, 0, "bhle", None, None),
             (5, 32, 1, 1, 3000, 64, torch.bfloat16, 0, "bhle", None, None),
             (8, 32, 1, 1, 4096, 48, torch.float16, 0, "pad", 0.2, None),
             (17, 8, 1, 1, 1000, 256, torch.bfloat16, 0, "bhle", None, None),
             (24, 8, 1, 1, 4096, 232, torch.float16, 0, "blhe", None, None),
             # v17: the slower paces (head dim 64's narrow blocks up to 4096 keys, B = 6 with a padded row stride; head
             # dim 256's compact blocks up to 1.1 waves, B = 17) and head dim 256's compact blocks beyond 1.5 GB (B = 20
             # at 16k, 2.7 GB)
             (6, 32, 1, 1, 4096, 64, torch.bfloat16, 0, "pad", None, None),
             (17, 8, 1, 1, 8192, 256, torch.float16, 0, "bhle", None, None),
             (20, 8, 1, 1, 16384, 256, torch.bfloat16, 0, "blhe", -0.1, None)]
    # the rules of devices where FlashPlan does not pace (run with paced=False below)
    unpaced = [
        # the v10 work-stealing rule (FlashPlan.of on sm_90 without determinism): one-split decode grids of 0.8 to
        # TAIL_WAVES waves from STEAL_MIN_KEYS keys (B = 7, 9, GQA-packed rows, a padded head dim), a full wave from
        # STEAL_LONG_KEYS keys
        (7, 16, 1, 1, 8192, 128, torch.float16, 0, "bhle", None, None),
        (9, 16, 1, 1, 8200, 128, torch.bfloat16, 0, "blhe", -0.1, None),
        (8, 16, 1, 1, 32768, 128, torch.float16, 0, "pad", None, None),
        (36, 32, 8, 1, 9000, 64, torch.bfloat16, 0, "bhle", None, None),
        (5, 32, 1, 1, 8192, 96, torch.float16, 0, "bhle", None, None),
        # the v11 rules (FlashPlan.of on sm_90): a grid below a wave that would split steals from STEAL_HELPER_KEYS
        # keys on one block per SM, the blocks beyond the units helping from the start (B = 2, 3; GQA-packed rows);
        # grids of a third of a wave or more with at most UNSPLIT_MAX_KEYS keys run one split; one-split grids of head
        # dim 128 just over a wave take the NARROW traits (B = 9, 10, a padded head dim, GQA packing, two m-blocks)
        (2, 16, 1, 1, 65536, 128, torch.float16, 0, "bhle", None, None),
        (3, 16, 1, 1, 65600, 128, torch.bfloat16, 0, "blhe", 0.1, None),
        (3, 32, 2, 1, 65536, 64, torch.float16, 0, "pad", None, None),
        (4, 16, 1, 1, 4096, 128, torch.float16, 0, "bhle", None, None),
        (9, 16, 1, 1, 4096, 128, torch.float16, 0, "bhle", None, None),
        (10, 16, 1, 1, 3000, 120, torch.bfloat16, 0, "blhe", -0.2, None),
        (9, 32, 2, 1, 5000, 128, torch.bfloat16, 0, "pad", None, None),
        (1, 70, 1, 20, 3000, 128, torch.float16, 2, "bhle", None, None),
        # and one-split grids of head dim 128 just under a wave the SHORT_TILES traits (B = 6, 7; a padded head dim,
        # GQA)
        (6, 16, 1, 1, 4096, 128, torch.float16, 0, "bhle", None, None),
        (7, 16, 1, 1, 8192, 128, torch.bfloat16, 0, "blhe", 0.3, None),
        (7, 16, 1, 1, 5000, 104, torch.float16, 0, "pad", None, None),
        (6, 32, 2, 1, 3333, 128, torch.bfloat16, 0, "bhle", None, None),
        # head dims 64 and 256 where they would pace since v15: stealing with helpers (E = 256, B = 4 at 64k), one
        # split with GQA-packed and padded rows (E = 64)
        (4, 8, 1, 1, 65536, 256, torch.bfloat16, 0, "bhle", None, None),
        (16, 32, 4, 1, 16384, 64, torch.float16, 0, "pad", None, None)
    ]
    cfgs += unpaced
    # random
    for _ in range(60):
        E = 8 * rnd.randint(1, 32)
        G = rnd.choice((1, 1, 2, 4))
        cfgs.append((rnd.randint(1, 3), G * rnd.randint(1, 3), G, rnd.randint(1, 400), rnd.randint(1, 600), E,
                     rnd.choice((torch.float16, torch.bfloat16)), rnd.randint(0, 2), rnd.choice(("bhle", "blhe", "pad")),
                     rnd.choice((None, 0.05, 1.0, -0.2)), None))
    # the Hopper wgmma main kernels (flash_fwd_sm90.cu, where FlashPlan picks them): grids large enough for the main
    # kernel, many key tiles (the stage ring wraps), ragged ends, causal both ways, GQA, strides, custom/negative scale,
    # Lq > Lk bottom-right (fully masked rows)
    # (v22: head dims 96 and 192, and the _pad kernels of head dims below a class: 80, 112, 160, 248)
    for E in (64, 96, 128, 192, 256, 80, 112, 160, 248):
        for dt in (torch.float16, torch.bfloat16):
            cfgs.append((2, 16, 1, 1000, 1000, E, dt, 1, "bhle", None, None))
            cfgs.append((1, 48, 4, 517, 1203, E, dt, 2, "blhe", -0.1, None))
            cfgs.append((3, 12, 3, 700, 333, E, dt, 2, "pad", None, None))
            cfgs.append((3, 16, 2, 640, 777, E, dt, 0, "bhle", 0.5, None))
    # head dim 64 takes the wgmma kernel from 8192 keys on (FlashPlan.HOPPER's minKeys)
    cfgs.append((2, 36, 2, 384, 8200, 64, torch.float16, 2, "blhe", None, None))
    cfgs.append((2, 36, 1, 300, 8193, 64, torch.bfloat16, 0, "pad", -0.2, None))
    cfgs.append((2, 36, 2, 384, 8200, 40, torch.float16, 2, "blhe", None, None))
    cfgs.append((1, 16, 1, 300, 8193, 56, torch.bfloat16, 1, "pad", 0.3, None))
    # v16: head dim 256's decode grids of many units on the main kernel (FlashPlan.mainDecode, where the device has
    # clusters): one query, four queries, GQA-packed rows under a bottom-right mask, a padded head dim, strides
    main_decode = [(28, 8, 1, 1, 1000, 256, torch.float16, 0, "bhle", None, None),
                   (56, 8, 1, 1, 2048, 256, torch.bfloat16, 0, "blhe", -0.2, None),
                   (64, 8, 1, 4, 2048, 256, torch.float16, 0, "bhle", None, None),
                   (28, 16, 2, 1, 777, 256, torch.float16, 2, "pad", None, None),
                   (56, 8, 1, 1, 300, 232, torch.bfloat16, 0, "bhle", 0.3, None)]
    cfgs += main_decode
    # v17: head dims 64 and 128 keep one split on grids of TAIL_WAVES waves up to UNSPLIT_MAX_KEYS keys
    # (FlashPlan.TAIL_UNSPLIT_HEAD_DIMS, where the device has clusters): a padded head dim, GQA-packed rows; head dim
    # 64's grids of one to four waves below STEAL_MIN_KEYS_HEAD_DIM_64 keys do not steal (B = 9, 13 at 8k)
    one_split = [(20, 32, 1, 1, 4096, 64, torch.float16, 0, "bhle", None, None),
                 (34, 16, 1, 1, 4000, 120, torch.bfloat16, 0, "blhe", None, None),
                 (24, 64, 2, 1, 3000, 64, torch.float16, 2, "pad", 0.2, None),
                 (9, 32, 1, 1, 8192, 64, torch.bfloat16, 0, "bhle", None, None),
                 (13, 32, 1, 1, 12000, 56, torch.float16, 0, "blhe", -0.2, None)]
    cfgs += one_split
    # v18: head dim 64's one-split grids of two to four waves whose last wave is 0.3-0.5 full split their keys in two,
    # merged in a cluster (FlashPlan.midTail, where the device has clusters): B = 14 (3.4 waves), 40 heads (B = 11, 3.3
    # waves) at an odd key count, a padded head dim (B = 10, 2.4 waves), GQA-packed rows under a bottom-right mask
    mid_tail = [(14, 32, 1, 1, 8192, 64, torch.float16, 0, "bhle", None, None),
                (11, 40, 1, 1, 6001, 64, torch.bfloat16, 0, "blhe", -0.2, None),
                (10, 32, 1, 1, 12000, 56, torch.float16, 0, "pad", 0.3, None),
                (28, 32, 2, 1, 7000, 64, torch.bfloat16, 2, "bhle", None, None)]
    cfgs += mid_tail
    # v19: decode grids whose streams are stack-aligned (FlashPlan.KvLayout.stackAligned: heads 5120 keys apart on an
    # H100's five stacks, or a head's splits 10240 keys apart) start each block at a hashed tile (FlashPlan.stagger) on
    # their usual plans: paced (head dims 64, 128, 256; one wave of splits; the narrow blocks of 64 and 128 just over a
    # wave; a padded head dim whose 4096 keys are 3 x 327,680 bytes apart), head dim 128's short-tile blocks, ...
    from flashlib import STACK_ALIGNMENT
    h100_stacks = STACK_ALIGNMENT == 5 << 16   # the stack rules' expectations hold on an H100's five stacks
    stack_paced = [(20, 16, 1, 1, 5120, 128, torch.float16, 0, "bhle", None, None),
                   (6, 32, 1, 1, 5120, 64, torch.bfloat16, 0, "bhle", None, None),
                   (4, 16, 1, 1, 20480, 128, torch.float16, 0, "bhle", None, None),
                   (20, 8, 1, 1, 5120, 256, torch.float16, 0, "bhle", None, None),
                   (9, 16, 1, 1, 5120, 128, torch.float16, 0, "bhle", None, None),
                   (5, 32, 1, 1, 10240, 64, torch.bfloat16, 0, "bhle", -0.3, None),
                   (6, 16, 1, 1, 5120, 128, torch.float16, 0, "bhle", None, None),
                   (7, 16, 1, 1, 4096, 120, torch.bfloat16, 0, "bhle", 0.2, None)]
    stack_short = [(6, 16, 1, 1, 1280, 128, torch.float16, 0, "bhle", None, None)]   # K + V below 2 x the L2: not paced
    # ... and the two cluster splits of grids of two to four waves of stack-aligned heads that would steal
    # (FlashPlan.stackAlignedSplits), staggered
    stack_split = {(20, 16, 1, 1, 10240, 128, torch.bfloat16, 0, "bhle", None, None): 2}
    # never staggered: power-of-two strides, the work-stealing kernels, grids of TAIL_WAVES waves (v19b; B = 17, 544
    # units, stack-aligned heads, two tail splits)
    unstaggered = [(8, 16, 1, 1, 16384, 128, torch.float16, 0, "bhle", None, None),
                   (8, 32, 1, 1, 4096, 64, torch.bfloat16, 0, "bhle", None, None),
                   (9, 16, 1, 1, 40960, 128, torch.float16, 0, "bhle", None, None),
                   (17, 32, 1, 1, 5120, 64, torch.float16, 0, "bhle", None, None)]
    cfgs += stack_paced + stack_short + list(stack_split) + unstaggered
    # v19b: head dims 96 and 192 (two 96 KB decode blocks per SM) split grids of up to 4096 keys below TAIL_WAVES waves
    # to fill the SMs, then the resident blocks, through the workspace (FlashPlan.pairedSplits, where the device has
    # clusters): 288 units in 8 splits, 64 in 2 (GQA-packed rows), a padded head dim 184 under a bottom-right mask
    paired = {(9, 32, 1, 1, 4096, 96, torch.float16, 0, "bhle", None, None): 8,
              (2, 64, 2, 1, 4096, 96, torch.bfloat16, 2, "blhe", -0.2, None): 2,
              (12, 16, 1, 1, 4000, 184, torch.bfloat16, 2, "pad", None, None): 4,
              # v20: longer keys too where they stole (FlashPlan.PAIRED_LONG: head dim 96 below TAIL_WAVES waves, 32
              # units in 4 splits at 64k keys, 192 in 4 at 16k; head dim 192 from half a wave to a wave, 128 units in
              # one at a padded head dim 184), and grids whose FA2 split count would put more blocks than SMs fill the
              # resident blocks instead (96 units: 8 splits, not FA2's 4)
              (1, 32, 1, 1, 65536, 96, torch.float16, 0, "bhle", None, None): 4,
              (6, 32, 1, 1, 16384, 96, torch.bfloat16, 0, "blhe", None, None): 4,
              (8, 16, 1, 1, 20000, 184, torch.float16, 2, "pad", None, None): 1,
              (6, 16, 1, 1, 4096, 192, torch.float16, 0, "bhle", None, None): 8,
              (3, 32, 1, 1, 40000, 96, torch.bfloat16, 0, "bhle", 0.2, None): 8}
    cfgs += list(paired)
    fails = 0
    worst = {}
    stealing = narrow = npaced = 0
    unpaced_set = set(unpaced)
    from flashlib import CLUSTERS
    main_set = set(main_decode)
    one_split_set = set(one_split)
    mid_tail_set = set(mid_tail)
    stack_paced_set, stack_short_set, unstaggered_set = set(stack_paced), set(stack_short), set(unstaggered)
    for cfg in cfgs:
        ok, oe, le, info = one(cfg, gen, paced=False if cfg in unpaced_set else None)
        if CLUSTERS and cfg in main_set and info["split"]:
            ok = False   # the main kernel should have run it
        if CLUSTERS and cfg in one_split_set and (int(info["splits"]) != 1 or info["steal"]):
            ok = False   # one split should have run it
        if CLUSTERS and cfg in mid_tail_set and (int(info["splits"]) != 2 or not info["cluster"]):
            ok = False   # two cluster splits should have run it
        if h100_stacks and (cfg in stack_paced_set or cfg in stack_short_set or cfg in stack_split) \
                and not info["stagger"]:
            ok = False   # an H100's stack rule: a staggered start should have run it
        if h100_stacks and (cfg in stack_paced_set and not info["pace_ps"]
                            or cfg in stack_short_set and not info["short_tiles"]):
            ok = False   # an H100's stack rule: its usual plan (paced, short tiles) should have run it
        if h100_stacks and cfg in stack_split and (int(info["splits"]) != stack_split[cfg] or not info["cluster"]):
            ok = False   # an H100's stack rule: these cluster splits should have run it
        if cfg in unstaggered_set and info["stagger"]:
            ok = False   # staggered where the streams are not stack-aligned, or where the kernel steals
        if CLUSTERS and cfg in paired and (int(info["splits"]) != paired[cfg] or info["cluster"] or info["steal"]):
            ok = False   # FlashPlan.pairedSplits' workspace splits should have run it
        stealing += bool(info["steal"])
        narrow += bool(info.get("narrow") or info.get("short_tiles"))
        npaced += bool(info["pace_ps"])
        key = str(cfg[6]).split(".")[-1]
        worst[key] = max(worst.get(key, 0), oe)
        if not ok:
            fails += 1
            print("FAIL", cfg[:6], cfg[6], "causal", cfg[7], cfg[8], "scale", cfg[9], "splits", cfg[10], "oerr %.2e lerr %.2e" % (oe, le), info)
    # the compact decode traits (FlashPlan.DECODE_COMPACT: devices with less shared memory per block)
    for cfg in ((1, 16, 1, 1, 4096, 128, torch.float16, 0, "bhle", None, None),
                (2, 8, 4, 1, 2049, 120, torch.bfloat16, 2, "blhe", None, None),
                (3, 4, 1, 5, 1500, 128, torch.float16, 1, "pad", 0.3, 1),
                (1, 4, 1, 1, 1000, 128, torch.bfloat16, 0, "bhle", -0.3, 128),
                (1, 2, 1, 300, 1000, 128, torch.float16, 1, "bhle", None, 5)):
        cfgs.append(cfg)
        ok, oe, le, info = one(cfg, gen, compact=True)
        if not ok:
            fails += 1
            print("FAIL compact", cfg[:6], cfg[6], "oerr %.2e lerr %.2e" % (oe, le), info)
    # deterministic calls never steal: a long grid of TAIL_WAVES waves splits its tail through the workspace
    ok, oe, le, info = one(tail_long, gen, deterministic=True)
    cfgs.append(tail_long)
    if not ok or info["steal"] or int(info["splits"]) != 8:
        fails += 1
        print("FAIL deterministic tail", tail_long[:6], "oerr %.2e lerr %.2e" % (oe, le), info)
    # replays of one prepared call: counters reset by the per-call memset, and by the kernel alone (graph replays)
    for zc in (True, False):
        for cfg in ((1, 16, 1, 1, 4096, 128, torch.float16, 0, "bhle", None, None),
                    (2, 8, 4, 1, 3000, 64, torch.bfloat16, 0, "bhle", None, None),
                    (1, 2, 1, 40, 777, 128, torch.float16, 1, "bhle", None, 5)):
            cfgs.append(cfg)
            ok, oe, le, info = one(cfg, gen, replays=3, zero_counters=zc)
            if not ok:
                fails += 1
                print("FAIL replay", cfg[:6], "zero_counters", zc, "oerr %.2e lerr %.2e" % (oe, le), info)
    # both merges of the decode splits on the same shapes: the cluster (DSMEM) kernels where the device has them (up
    # to the non-portable cluster size 16, mostly empty splits, replays) and the workspace + counter path
    merges = ((True, False) if CLUSTERS else (False,))
    for cl in merges:
        for cfg, compact, reps in (((1, 16, 1, 1, 4096, 128, torch.float16, 0, "bhle", None, 8), False, 1),
                                   ((1, 16, 1, 1, 4096, 128, torch.bfloat16, 0, "blhe", None, 8), True, 1),
                                   ((2, 8, 4, 1, 2049, 120, torch.float16, 2, "pad", 0.3, 6), False, 1),
                                   ((1, 4, 1, 3, 1500, 64, torch.bfloat16, 1, "bhle", -0.3, 7), False, 1),
                                   ((1, 2, 1, 16, 555, 96, torch.float16, 2, "blhe", None, 16), False, 1),
                                   ((1, 2, 1, 1, 20, 256, torch.float16, 0, "bhle", None, 16), False, 1),
                                   ((1, 4, 1, 1, 40000, 192, torch.bfloat16, 0, "bhle", None, 8), False, 1),
                                   ((1, 1, 1, 1, 1, 32, torch.float16, 0, "bhle", None, 2), False, 1),
                                   ((1, 16, 1, 1, 4096, 128, torch.float16, 0, "bhle", None, 8), False, 3)):
            cfgs.append(cfg)
            ok, oe, le, info = one(cfg, gen, replays=reps, compact=compact, cluster=cl)
            if not ok or info["cluster"] != cl:
                fails += 1
                print("FAIL merge", cfg[:6], cfg[6], "cluster", cl, "compact", compact, "oerr %.2e lerr %.2e" % (oe, le), info)
    for cfg in paced:
        cfgs.append(cfg)
        ok, oe, le, info = one(cfg, gen, replays=2)
        npaced += bool(info["pace_ps"])
        if not ok or (CLUSTERS and TRAITS[dclass(cfg[5])][0] in PACE_HEAD_DIMS and not info["pace_ps"]):
            fails += 1
            print("FAIL paced", cfg[:6], cfg[6], "oerr %.2e lerr %.2e" % (oe, le), info)
    # the staggered start (p.decode_stagger, forced): every decode kernel family that takes it - one split, workspace
    # and cluster merges (mostly empty splits, a split of one tile, replays), paced, the narrow / short-tile / compact
    # blocks, causal both ways, GQA-packed rows, padded head dims and strides, negative scale
    staggered = 0
    for cfg, kw in ((((1, 16, 1, 1, 4096, 128, torch.float16, 0, "bhle", None, 8), dict(cluster=True)),
                    ((1, 16, 1, 1, 4096, 128, torch.bfloat16, 0, "blhe", None, 8), dict(cluster=False)),
                    ((2, 8, 4, 1, 2049, 120, torch.float16, 2, "pad", 0.3, 6), dict(cluster=True)),
                    ((2, 8, 4, 1, 2049, 120, torch.bfloat16, 2, "pad", 0.3, 6), dict(cluster=False)),
                    ((1, 4, 1, 3, 1500, 64, torch.bfloat16, 1, "bhle", -0.3, 7), dict(cluster=False)),
                    ((1, 2, 1, 16, 555, 96, torch.float16, 2, "blhe", None, 16), dict(cluster=True)),
                    ((1, 2, 1, 1, 20, 256, torch.float16, 0, "bhle", None, 16), dict(cluster=True)),
                    ((1, 1, 1, 1, 1, 32, torch.float16, 0, "bhle", None, 2), dict(cluster=False)),
                    ((1, 4, 1, 1, 40000, 192, torch.bfloat16, 0, "bhle", None, 8), dict(cluster=True)),
                    ((3, 4, 1, 5, 1500, 128, torch.float16, 1, "pad", 0.3, 1), dict(compact=True)),
                    ((9, 16, 1, 1, 5120, 128, torch.float16, 0, "bhle", None, None), {}),
                    ((5, 32, 1, 1, 10240, 64, torch.bfloat16, 0, "bhle", -0.3, None), {}),
                    ((20, 16, 1, 1, 5120, 128, torch.float16, 0, "bhle", None, None), {}),
                    ((6, 16, 1, 1, 5120, 128, torch.float16, 0, "bhle", None, None), dict(paced=False)),
                    ((7, 16, 1, 1, 5000, 104, torch.float16, 0, "pad", None, None), {}),
                    ((10, 16, 1, 1, 6000, 128, torch.bfloat16, 0, "blhe", None, None), {}),
                    ((14, 32, 1, 1, 8192, 64, torch.float16, 0, "bhle", None, None), {}),
                    ((16, 32, 4, 1, 16384, 64, torch.float16, 0, "pad", None, None), dict(steal=False)))
                    + tuple((cfg, {}) for cfg in paced[:6])):
        cfgs.append(cfg)
        ok, oe, le, info = one(cfg, gen, replays=2, stagger=True, **kw)
        staggered += bool(info["stagger"])
        if not ok or not info["stagger"]:
            fails += 1
            print("FAIL staggered", cfg[:6], cfg[6], kw, "oerr %.2e lerr %.2e" % (oe, le), info)
    dfails, dcases = dropout_checks(gen, rnd)
    print(f"check: {len(cfgs) + dcases} cases ({dcases} with dropout, {stealing} by the work-stealing decode kernels, "
          f"{narrow} by the narrow or short-tile ones, {npaced} paced, {staggered} staggered), "
          f"{fails + dfails} failed; worst output error {worst}")
    return fails + dfails

def dropout_checks(gen, rnd):
    """The _drop kernels (flash_fwd.cu's mma.sync and flash_fwd_sm90.cu's wgmma) launched from the packaged cubins as
    FlashDevice does (trainlib.forward; FLASH_FWD_CUBIN / FLASH_FWD90_CUBIN or the bundle's jar), at both mask
    resolutions, against a float64 reference drawing dev.sdpa4j.Dropout's mask (trainlib.keep_mask). Probes first:
    Q = 0 (uniform P) and V = the identity (Lk <= E), so that O > 0 exactly where the mask keeps - bit for bit over
    rows, heads, batches and key tiles; then random data (head dims 8..256, causal both ways incl. Lq > Lk, GQA,
    [B,L,H,E] and padded strides, custom / negative scale). Returns (failures, cases)."""
    import trainlib as tl
    fails = cases = 0
    sm90_modes = (None, True, False) if torch.cuda.get_device_capability() == (9, 0) else (None,)
    for byte in (False, True):
        for E, dt, p in ((64, torch.float16, 0.1), (128, torch.bfloat16, 0.5), (256, torch.float16, 0.03),
                         (32, torch.bfloat16, 0.9), (96, torch.float16, 0.2), (192, torch.bfloat16, 0.3),
                         (80, torch.float16, 0.1)):
            for sm90 in sm90_modes:
                if sm90 is True and tl.fwd_class(E) not in tl.FWD_SM90:
                    continue
                B, H, Lq, Lk = 2, 3, 300, E
                seed, offset = (0x9E3779B97F4A7C15 ^ E) & ((1 << 64) - 1), 5 + E
                q = torch.zeros(B, H, Lq, E, dtype=dt, device="cuda")
                k = torch.randn(B, H, Lk, E, dtype=dt, device="cuda", generator=gen)
                v = torch.eye(E, dtype=dt, device="cuda")[:Lk].expand(B, H, Lk, E).contiguous()
                o = torch.full((B, H, Lq, E), float("nan"), dtype=dt, device="cuda")
                lse = torch.empty(B, H, Lq, dtype=torch.float32, device="cuda")
                tl.forward(q, k, v, o, lse, 0, None, p, seed, offset, byte=byte, sm90=sm90)
                torch.cuda.synchronize()
                keep = tl.keep_mask(B, H, Lq, Lk, p, seed, offset, "cuda", byte)
                scale = tl.dropout_fields(p, seed, offset, byte)[3]
                want = keep.double() * (scale / Lk)
                got = o[..., :Lk].double()
                ok = torch.equal(got > 0, keep) and bool(torch.isfinite(got).all()) and \
                    (got - want).abs().max().item() <= 8e-3 * want.max().item()
                cases += 1
                if not ok:
                    fails += 1
                    print("FAIL dropout probe", "byte" if byte else "word", E, dt, "p", p, "sm90", sm90,
                          "mismatched", int(((got > 0) != keep).sum().item()))
    cfgs = []
    for E in (8, 64, 80, 128, 200, 256):
        for dt in (torch.float16, torch.bfloat16):
            cfgs.append((2, 4, 1, 177, 231, E, dt, 0, "bhle", None, 0.1))
            cfgs.append((1, 4, 2, 130, 265, E, dt, 1, "blhe", None, 0.3))
            cfgs.append((1, 6, 3, 300, 200, E, dt, 2, "pad", -0.2, 0.1))
    for _ in range(16):
        E = rnd.choice((64, 128, 256, 8 * rnd.randint(1, 32)))
        G = rnd.choice((1, 2))
        cfgs.append((rnd.randint(1, 2), G * rnd.randint(1, 3), G, rnd.randint(1, 400), rnd.randint(1, 700), E,
                     rnd.choice((torch.float16, torch.bfloat16)), rnd.randint(0, 2), rnd.choice(("bhle", "blhe", "pad")),
                     rnd.choice((None, 0.3)), rnd.choice((0.05, 0.1, 0.5))))
    for byte in (False, True):
        for cfg in cfgs:
            B, H, G, Lq, Lk, E, dt, causal, layout, scale, p = cfg
            for sm90 in sm90_modes:
                if sm90 is True and tl.fwd_class(E) not in tl.FWD_SM90:
                    continue
                q = make(B, H, Lq, E, dt, layout, gen)
                k = make(B, H // G, Lk, E, dt, layout, gen)
                v = make(B, H // G, Lk, E, dt, layout, gen)
                o = torch.full((B, Lq, H, E), float("nan"), dtype=dt, device="cuda").transpose(1, 2) \
                    if layout == "blhe" else torch.full((B, H, Lq, E), float("nan"), dtype=dt, device="cuda")
                lse = torch.full((B, H, Lq), float("nan"), dtype=torch.float32, device="cuda")
                sc = scale if scale is not None else 1 / math.sqrt(E)
                seed, offset = rnd.getrandbits(64), rnd.getrandbits(32)
                tl.forward(q, k, v, o, lse, causal, sc, p, seed, offset, byte=byte, sm90=sm90)
                torch.cuda.synchronize()
                ro, rl = reference(q, k, v, causal, sc, tl.keep_mask(B, H, Lq, Lk, p, seed, offset, "cuda", byte),
                                   tl.dropout_fields(p, seed, offset, byte)[3])
                fin = torch.isfinite(rl)
                oerr = (o.double() - ro).abs().max().item()
                lerr = (lse.double()[fin] - rl[fin]).abs().max().item() if fin.any() else 0.0
                masked_ok = bool((lse[~fin] == float("-inf")).all().item()) and bool((o[~fin] == 0).all().item())
                # kept values are scaled by 1 / (1 - p): so are the outputs and their rounding
                tol = (4e-3 if dt == torch.float16 else 3e-2) * tl.dropout_fields(p, seed, offset, byte)[3]
                cases += 1
                if torch.isnan(o).any().item() or oerr > tol or lerr > 2e-3 or not masked_ok:
                    fails += 1
                    print("FAIL dropout", "byte" if byte else "word", cfg, "sm90", sm90, "oerr %.2e lerr %.2e" % (oerr, lerr))
    print(f"dropout: {cases} cases, {fails} failed")
    return fails, cases

if __name__ == "__main__":
    sys.exit(1 if main() else 0)
