"""Decode plans forced on the same buffers: FlashPlan's rule against fixed split counts, the unpaced rule and an older
rule set, each against the best of PyTorch's cuDNN and flash backends, over several placements of K and V.

placement.py's method (everything freed, a spacer allocation of a seeded random size (0-2 GB), fresh q, k, v, o and LSE
per placement) with every variant, both torch backends and the bare read of K and V timed on the same buffers in a
shuffled order, the better of 2 rounds (bench.graph_time) each. Per shape it prints the median over placements of
best torch time / variant time (> 1 = the variant faster) for every variant, and best torch / read.

argv[1]: output folder (plans.json). Environment:
  PLAN_SHAPES    "B:Lk:E:H:dtype[:Lbuf],..." (Lq = 1; Lbuf: K and V views of Lk keys in buffers of Lbuf keys per head,
                 so that heads lie Lbuf keys apart)
  PLAN_VARIANTS  names from VARIANTS (default: all), each optionally with "+s" / "-s": the same with / without a
                 staggered start (flashlib.prepare's stagger); "old": the rule on FLASH_HARNESS_BASE's kernels
  PLAN_BASE_RULES flashlib's older rule set that "base" runs (default v18c)
  PLACEMENTS (2), PLAN_SEED (14)"""
import json, os, random, statistics, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from flashlib import BASE_LIB, SMS, kv_read, prepare
from placement import PAGE, best_of_rounds, fresh_buffers

# name -> flashlib.prepare's arguments: the rule, one split (unpaced), 2 / 3 / 4 splits merged in a cluster, 2 / 4 / 8
# merged through the workspace, work stealing, head dim 128's slim blocks in one split, the rule without pacing, the
# rule without head dim 128's short-tile blocks, an older rule set, the rule on another harness's kernels
VARIANTS = {"rule": {}, "one": dict(force_splits=1), "cl2": dict(force_splits=2), "cl3": dict(force_splits=3),
            "cl4": dict(force_splits=4), "ws2": dict(force_splits=2, cluster=False),
            "ws4": dict(force_splits=4, cluster=False), "ws8": dict(force_splits=8, cluster=False),
            "steal": dict(steal=True), "slim1": dict(force_splits=1, slim=True), "nopace": dict(paced=False),
            "noshort": dict(short_tiles=False), "base": dict(rules=os.environ.get("PLAN_BASE_RULES", "v18c")),
            "old": dict(lib=BASE_LIB)}


def variant_args(name):
    """prepare's arguments of variant `name` ("x", "x+s" or "x-s", see PLAN_VARIANTS)."""
    for sign, stagger in (("+s", True), ("-s", False)):
        if name.endswith(sign):
            return dict(VARIANTS[name[:-2]], stagger=stagger)
    return dict(VARIANTS[name])
BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}


def placement(B, Lk, E, H, dtype, spacer, rng, variants, Lbuf=None):
    """Times of every variant, backend and the K+V read on fresh buffers behind a spacer of `spacer` bytes."""
    sp, q, k, v, o, lse = fresh_buffers(B, H, Lk, E, dtype, spacer, Lbuf)
    fns, info = {}, {}
    for name in variants:
        fns[name] = prepare(q, k, v, o, lse, 0, **variant_args(name))
        info[name] = {a: str(b) for a, b in fns[name].info.items()}
    for name, be in BACKENDS.items():
        def sdpa(be=be):
            with sdpa_kernel([be]):
                F.scaled_dot_product_attention(q, k, v)
        fns[name] = sdpa
    fns["read"] = kv_read(k, v)
    t = best_of_rounds(fns, rng=rng)
    del fns, q, k, v, o, lse, sp
    torch.cuda.empty_cache()
    return t, info


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(int(os.environ.get("PLAN_SEED", 14)))
    n = int(os.environ.get("PLACEMENTS", 2))
    shapes = [(int(a), int(b), int(c), int(d), e, int(f[0]) if f else None)
              for a, b, c, d, e, *f in (s.split(":") for s in os.environ["PLAN_SHAPES"].split(","))]
    variants = os.environ["PLAN_VARIANTS"].split(",") if os.environ.get("PLAN_VARIANTS") \
        else [v for v in VARIANTS if v != "old" or BASE_LIB]
    rows = []
    print("E H B Lk[/Lbuf] dtype waves | rule's plan | " + " ".join(f"{v:>6}" for v in variants) + " | best torch / read")
    for B, Lk, E, H, dts, Lbuf in shapes:
        ps = [placement(B, Lk, E, H, getattr(torch, dts), rng.randrange(0, 1024) * PAGE, rng, variants, Lbuf)
              for _ in range(n)]
        best = [min(p[0][b] for b in BACKENDS) for p in ps]
        med = {v: statistics.median(bt / p[0][v] for bt, p in zip(best, ps)) for v in variants}
        info = ps[0][1][variants[0]]
        rows.append(dict(B=B, Lk=Lk, E=E, H=H, dtype=dts, Lbuf=Lbuf, times=[p[0] for p in ps], plans=ps[0][1],
                         median_vs_best_torch=med))
        plan = f"s{info.get('splits')}" + (" st" if info.get("steal") == "True" else "") \
            + (" cl" if info.get("cluster") == "True" else "") + (" paced" if info.get("pace_ps", "0") != "0" else "") \
            + (" stg" if info.get("stagger") == "True" else "")
        print(f"{E:>3} {H:>2} {B:>2} {Lk:>5}{'/' + str(Lbuf) if Lbuf else ''} {dts[:4]} {B * H / SMS:4.2f} | {plan:11s} | "
              + " ".join(f"{med[v]:6.3f}" for v in variants)
              + f" | {statistics.median(bt / p[0]['read'] for bt, p in zip(best, ps)):.3f}", flush=True)
    with open(os.path.join(out, "plans.json"), "w") as f:
        json.dump(dict(meta=dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, placements=n),
                       rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
