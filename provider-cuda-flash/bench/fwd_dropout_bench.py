"""The forward alone with dropout (issue 8's training shapes: B*L = 16k tokens, hidden 2048, E = 64 with 32 heads and
E = 128 with 16, E = 256 with 8, causal and not): our kernels at p = 0 and p = 0.1 with the WORD and the BYTE mask
resolution, both the mma.sync (flash_fwd.cu) and the Hopper wgmma (flash_fwd_sm90.cu) _drop kernels, a wgmma variant
(FWD90_VARIANT_CUBIN, kernels <name>_drop<FWD90_VARIANT_SUFFIX>, column "variant"), the committed forward
(FLASH_FWD_BASE_CUBIN, WORD only), and PyTorch flash's forward at p = 0 and 0.1, same process, same inputs. Timing as
bench_train.py (trainlib.timed: CALLS back-to-back calls between events, median of REPS). Writes fwd_dropout.json to
argv[1]; BENCH_LS, BENCH_DTYPES as bench_train.py."""
import json, os, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
import trainlib as tl

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
CALLS = int(os.environ.get("BENCH_CALLS", 5))
REPS = int(os.environ.get("BENCH_REPS", 5))
Ls = [int(x) for x in os.environ.get("BENCH_LS", "512,1024,2048,4096,8192,16384").split(",")]
DTYPES = [getattr(torch, x) for x in os.environ.get("BENCH_DTYPES", "bfloat16").split(",")]
VARIANT = os.environ.get("FWD90_VARIANT_CUBIN")
VARIANT_SUFFIX = os.environ.get("FWD90_VARIANT_SUFFIX", "")
DIMS = [(int(e), 2048 // int(e)) for e in os.environ.get("BENCH_DIMS", "64,128,256").split(",")]
BASE = os.environ.get("FLASH_FWD_BASE_CUBIN")


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for E, H in DIMS:
        for L in Ls:
            for causal in (False, True):
                for dt in DTYPES:
                    B = 16384 // L
                    q, k, v = (torch.randn(B, H, L, E, dtype=dt, device="cuda") for _ in range(3))
                    o = torch.empty_like(q)
                    lse = torch.empty(B, H, L, dtype=torch.float32, device="cuda")
                    c = 1 if causal else 0
                    flops = 4.0 * B * H * L * L * E * (0.5 if causal else 1.0)
                    row = dict(B=B, H=H, L=L, E=E, dtype=str(dt).split(".")[-1], causal=causal, flops=flops)
                    t = lambda fn: tl.timed(fn, REPS, CALLS)[0]
                    row["p0"] = t(lambda: tl.forward(q, k, v, o, lse, c, None, 0.0, 42, 0))
                    row["p0_mma"] = t(lambda: tl.forward(q, k, v, o, lse, c, None, 0.0, 42, 0, sm90=False))
                    for res, byte in (("word", False), ("byte", True)):
                        row[f"{res}_rule"] = t(lambda: tl.forward(q, k, v, o, lse, c, None, 0.1, 42, 0, byte=byte))
                        row[f"{res}_mma"] = t(lambda: tl.forward(q, k, v, o, lse, c, None, 0.1, 42, 0, byte=byte,
                                                                 sm90=False))
                        row[f"{res}_wgmma"] = t(lambda: tl.forward(q, k, v, o, lse, c, None, 0.1, 42, 0, byte=byte,
                                                                   sm90=True))
                        if VARIANT:
                            var = {"fwd90": VARIANT, "fwd90_suffix": VARIANT_SUFFIX}
                            row[f"{res}_variant"] = t(lambda: tl.forward(q, k, v, o, lse, c, None, 0.1, 42, 0, byte=byte,
                                                                       sm90=True, variant=var))
                    if BASE:
                        var = {"fwd": BASE, "sm90fwd": False}
                        row["word_base_mma"] = t(lambda: tl.forward(q, k, v, o, lse, c, None, 0.1, 42, 0, variant=var))
                    for p in (0.0, 0.1):
                        def torch_fwd():
                            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), torch.no_grad():
                                F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=p)
                        row[f"torch_p{p}"] = t(torch_fwd)
                    rows.append(row)
                    print(f"fwd E={E} L={L:5d} causal={c} {row['dtype']} " + " ".join(
                        f"{key} {row[key]:.3f}" for key in row if isinstance(row[key], float) and key != "flops"),
                        flush=True)
                    del q, k, v, o, lse
                    torch.cuda.empty_cache()
    meta = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, calls=CALLS, reps=REPS)
    with open(os.path.join(OUT, "fwd_dropout.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
