"""Writes benchmarks/results/cuda-memeff-training-<date>.md, .json and .csv from the JSON that
`memeff_bwd_harness.py FWD BWD bench OUT.json` wrote on the GPU host.

usage: python3 report_train.py BENCH.json DATE COMMIT [NOTE]
NOTE is a Markdown paragraph about the run (the checks that ran in the same device call, kernel hashes).
"""
import csv, json, math, os, sys

VARIANTS = {("none", False, 0.0): "none", ("none", True, 0.0): "causal",
            ("keypad-bool", False, 0.0): "key padding [B,1,1,L]", ("none", False, 0.1): "dropout 0.1"}
ORDER = list(VARIANTS.values())


def variant(r):
    return VARIANTS[(r["mask"], bool(r["causal"]), float(r["dropout"]))]


def main(src, day, commit, note=""):
    data = json.load(open(src))
    rows = sorted(data["rows"], key=lambda r: (r["dtype"], r["E"], r["L"], ORDER.index(variant(r))))
    out = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "results", f"cuda-memeff-training-{day}")
    bar = [r for r in rows if r["L"] >= 1024]
    below = [r for r in bar if r["ratio"] < 1.0]
    geo = math.exp(sum(math.log(r["ratio"]) for r in bar) / len(bar))
    geo_det = math.exp(sum(math.log(r["ratio_deterministic"]) for r in bar) / len(bar))
    md = [f"# cuda-memeff training step (forward + backward) vs PyTorch {data['torch'].split('+')[0]} efficient SDPA "
          f"- {data['device']}, {day}", "",
          f"- **Card**: {data['device']}; PyTorch {data['torch']}. **Date**: {day}. **Commit**: `{commit}`.",
          "- **Ours**: forward kernel with LSE, then the backward (preprocess D, dK/dV kernel with dQ added atomically "
          "in fp32, dQ conversion; the provider's default for fp16/bf16 with head dims <= 128), launched by "
          "`provider-cuda-memeff/bench/memeff_bwd_harness.py` with the parameter blocks the Java provider builds "
          "(`MemeffLaunch`, `MemeffBackwardLaunch`); the zeroing of the dQ accumulator is inside the timing. "
          "\"ratio, deterministic\" times the deterministic path instead (separate dQ kernel, no atomics). "
          "**Peer** in the same process on the same tensors: `scaled_dot_product_attention` under "
          "`sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION)` followed by `torch.autograd.grad(out, (q, k, v), dOut)`.",
          "- **Shapes** (issue 8): B*L = 16k tokens, hidden 2048 (E = 64: H = 32; E = 128: H = 16), L = 1k..16k, "
          "fp16 and bf16; variants: no mask; causal (top-left); key padding, boolean `[B, 1, 1, L]`; dropout p = 0.1.",
          "- **Method**: 2 warm-ups, then the median of 8 (L <= 4096) or 5 runs timed with CUDA events. "
          "TFLOP/s = 3.5 x 4*B*H*L^2*E / time (halved for causal). Ratio = PyTorch's time / ours (> 1: we are "
          "faster); bold: below 1.0. Peak memory = `torch.cuda.max_memory_allocated()` over one step. "
          "\"grad rel. diff\" = max over dQ, dK, dV of |ours - torch| / |torch| (no dropout).", ""]
    if note:
        md += [note, ""]
    md += ["## Summary", "",
           f"{len(bar)} shapes with L >= 1k; geomean ratio {geo:.2f} (deterministic path {geo_det:.2f}). "
           "Ratios by variant (min-max over L):", "",
           "| dtype | E | " + " | ".join(ORDER) + " |", "| --- | --- | " + " | ".join("---" for _ in ORDER) + " |"]
    for dt in sorted({r["dtype"] for r in bar}):
        for e in sorted({r["E"] for r in bar}):
            cells = []
            for v in ORDER:
                xs = [r["ratio"] for r in bar if r["dtype"] == dt and r["E"] == e and variant(r) == v]
                cells.append(f"{min(xs):.2f}-{max(xs):.2f}" if xs else "-")
            md.append(f"| {dt} | {e} | " + " | ".join(cells) + " |")
    md.append("")
    if below:
        md.append(f"**Below the bar (1.0x) on {len(below)} of {len(bar)} shapes**: " + ", ".join(
            f"{r['dtype']} E = {r['E']} L = {r['L']} {variant(r)} ({r['ratio']:.3f})" for r in below) + ".")
    else:
        md.append(f"**At or above the bar (1.0x) on all {len(bar)} shapes** (lowest "
                  f"{min(r['ratio'] for r in bar):.3f}).")
    peaks = [(r["peak_mib_memeff"], r["peak_mib_torch"]) for r in rows]
    md += [f"Peak memory: {min(p[0] for p in peaks):.0f}-{max(p[0] for p in peaks):.0f} MiB vs PyTorch's "
           f"{min(p[1] for p in peaks):.0f}-{max(p[1] for p in peaks):.0f} MiB.", "", "## All shapes", "",
           "| dtype | E | H | B | L | variant | cuda-memeff TFLOP/s | torch efficient TFLOP/s | ratio | ratio, "
           "deterministic | peak MiB (ours / torch) | grad rel. diff vs torch |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] >= 1.0 else f"**{r['ratio']:.2f}**"
        err = "-" if r["dropout"] else f"{r['grad_rel_err_vs_torch']:.1e}"
        md.append(f"| {r['dtype']} | {r['E']} | {r['H']} | {r['B']} | {r['L']} | {variant(r)} | "
                  f"{r['tflops_memeff']:.1f} | {r['tflops_torch']:.1f} | {ratio} | {r['ratio_deterministic']:.2f} | "
                  f"{r['peak_mib_memeff']:.0f} / {r['peak_mib_torch']:.0f} | {err} |")
    open(out + ".md", "w").write("\n".join(md) + "\n")
    json.dump({"device": data["device"], "torch": data["torch"], "date": day, "commit": commit, "rows": rows},
              open(out + ".json", "w"), indent=1)
    with open(out + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(f"{out}.md: {len(rows)} rows, {len(below)} below 1.0 with L >= 1k, geomean {geo:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
