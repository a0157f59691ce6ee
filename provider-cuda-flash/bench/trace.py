"""Where a decode call spends its time, block by block: the timelines that flash_fwd.cu's decode blocks record when the
harness is built with -DFLASH_DECODE_TRACE (see bench/README.md), against the call's graph time, cuDNN's and the bare
read of K and V in the same process.

Per shape, after three warm-up calls, one call's blocks (µs from the first block's start): the last block's start,
the end of the warps' key tiles (min / median / p90 / max over every warp), the last output or partial written, the
last merge of the splits done; three calls each. The graph times (bench.graph_time) include the launch.

Environment: FLASH_HARNESS (a harness built with -DFLASH_DECODE_TRACE), TRACE_SHAPES "B:Lk:E:H:dtype,..." (Lq = 1),
TRACE_PREPARE (a JSON object of flashlib.prepare's keyword arguments for every shape, e.g. {"stagger": true};
default: FlashPlan's rule)."""
import ctypes, json, os, statistics
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from flashlib import LIB, kv_read, prepare
from placement import best_of_rounds, fresh_buffers

TRACE_BLOCKS = 8192   # flash_fwd.cu's kTraceBlocks
WORDS = TRACE_BLOCKS * 8


def timeline(fn, blocks, buf):
    """One call's block timeline (µs from its first block's start) after three warm-up calls."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    fn()
    torch.cuda.synchronize()
    r = LIB.harness_trace(buf, WORDS)
    if r:
        raise RuntimeError(f"harness_trace failed: cuda error {r}")
    rows = [buf[b * 8:b * 8 + 8] for b in range(min(blocks, TRACE_BLOCKS))]
    t0 = min(row[0] for row in rows)
    us = lambda t: (t - t0) / 1e3
    ends = sorted(us(t) for row in rows for t in row[1:5] if t)
    merged = [us(row[6]) for row in rows if row[6]]
    return dict(last_start=max(us(row[0]) for row in rows), warps_min=ends[0], warps_median=statistics.median(ends),
                warps_p90=ends[int(0.9 * (len(ends) - 1))], warps_max=ends[-1], written=max(us(row[5]) for row in rows),
                merged=max(merged) if merged else None, sms=len({row[7] for row in rows}))


def trace_shape(s, fn, q, k, v, buf):
    """Prints shape `s`'s graph times (ours, cuDNN's, the read's) and three of its call's timelines."""
    def cudnn():
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            F.scaled_dot_product_attention(q, k, v)
    t = best_of_rounds({"ours": fn, "cudnn": cudnn, "read": kv_read(k, v)})
    gx, gy, gz = fn.info["grid"]
    splits = int(fn.info["splits"])
    plan = ("one split" if splits == 1 else f"{splits} splits") + (" paced" if fn.info["pace_ps"] else "") \
        + (" staggered" if fn.info["stagger"] else "")
    for _ in range(3):
        x = timeline(fn, gx * gy * gz, buf)
        merged = f"{x['merged']:.1f}" if x["merged"] is not None else "-"
        print(f"{s} | {plan} | {t['ours'] * 1e3:.1f} | {t['cudnn'] * 1e3:.1f} | {t['read'] * 1e3:.1f} | "
              f"{x['last_start']:.2f} | {x['warps_min']:.1f} / {x['warps_median']:.1f} / {x['warps_p90']:.1f} / "
              f"{x['warps_max']:.1f} | {x['written']:.1f} | {merged} | {x['sms']}", flush=True)


def main():
    if not hasattr(LIB, "harness_trace"):
        raise SystemExit("FLASH_HARNESS was not built with -DFLASH_DECODE_TRACE")
    kwargs = json.loads(os.environ.get("TRACE_PREPARE", "{}"))
    buf = (ctypes.c_ulonglong * WORDS)()
    print("shape | plan | ours µs | cuDNN µs | read µs | last start | warps end min / median / p90 / max | written | "
          "merged | SMs")
    for s in os.environ["TRACE_SHAPES"].split(","):
        B, Lk, E, H, dts = s.split(":")
        B, Lk, E, H = int(B), int(Lk), int(E), int(H)
        sp, q, k, v, o, lse = fresh_buffers(B, H, Lk, E, getattr(torch, dts), 0)
        fn = prepare(q, k, v, o, lse, 0, **kwargs)
        if not fn.info["split"] or fn.info["steal"] or fn.info["cluster"]:
            print(f"{s} | not a flash_decode launch that traces (main kernel, stealing or cluster merge): {fn.info}")
        else:
            trace_shape(s, fn, q, k, v, buf)
        del fn, q, k, v, o, lse, sp
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
