"""Cost of the dropout mask in the backward (issue 8's dropout bound): backward-only times of the shipped kernels with
p = 0 (the plain kernel), p = 0.1 (the _drop kernel) and p = 0.1 with a variant _drop cubin whose Philox call is
replaced by a cheap hash (FLASH_BWD_NOPHILOX_CUBIN, or FLASH_BWD90_NOPHILOX_CUBIN for the Hopper wgmma kernel that
trainlib runs on an H100: same tiles, same mask traffic, no Philox rounds), the deterministic mode's backward at p = 0
(mma.sync _det kernel + flash_bwd_dq_*), p = 0.1 at the BYTE resolution (p0.1-byte: one Philox call per 16
elements), plus the forward with p = 0 and 0.1; and the raw Philox4x32-10 rate of the
card (PHILOX_PROBE_CUBIN: probe_rate, one call per 4 elements with the kept-bit compares). bf16, B*L = 16k, hidden
2048. Usage: python3 dropout_cost.py"""
import os, ctypes
import torch
import trainlib as tl

REPS, CALLS = 5, 5


def timed(fn):
    return tl.timed(fn, REPS, CALLS)[0]


def main():
    nophilox = os.environ.get("FLASH_BWD_NOPHILOX_CUBIN")
    nophilox90 = os.environ.get("FLASH_BWD90_NOPHILOX_CUBIN")
    var = {"bwd90": nophilox90} if nophilox90 else {"bwd": nophilox} if nophilox else None
    print("dropout cost (bf16, backward only unless named; ms; calls = Philox4x32-10 calls the backward draws)")
    for E, H in ((64, 32), (128, 16)):
        for L in (4096, 16384):
            for causal in (0, 1):
                B = 16384 // L
                q, k, v, dout = (torch.randn(B, H, L, E, dtype=torch.bfloat16, device="cuda") for _ in range(4))
                o = torch.empty_like(q)
                lse = torch.empty(B, H, L, dtype=torch.float32, device="cuda")
                dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
                row = {}
                for label, p, vr, det in (("p0", 0.0, None, False), ("p0.1", 0.1, None, False),
                                          ("p0.1-nophilox", 0.1, var, False), ("p0-det", 0.0, None, True),
                                          ("p0.1-byte", 0.1, None, False)):
                    if label.endswith("nophilox") and not vr:
                        continue
                    tl.forward(q, k, v, o, lse, causal, None, p, 42, 0)
                    bwd = tl.Backward(q, k, v, o, lse, dout, dq, dk, dv, causal, None, p, 42, 0, det, variant=vr,
                                      byte=label.endswith("byte"))
                    row[label] = timed(bwd)
                    if label == "p0.1":
                        main, BM = bwd.main, (64 if "sm90" in bwd.main else tl.BWD_TRAITS_DROP[1 if E == 64 else 2][1])
                    del bwd
                for p in (0.0, 0.1):
                    row[f"fwd p{p}"] = timed(lambda: tl.forward(q, k, v, o, lse, causal, None, p, 42, 0))
                # the backward's _drop kernel visits whole key tiles (128) x query tiles (BM): calls = visited elements / 4
                BN = 128
                nb = L // BN
                visited = sum(L - (n * BN // BM) * BM for n in range(nb)) if causal else nb * L
                calls = B * H * visited * BN / 4
                extra = row["p0.1"] - row.get("p0.1-nophilox", float("nan"))
                print(f"E={E:3d} L={L:5d} causal={causal} {main} " + " ".join(f"{k} {v:.3f}" for k, v in row.items())
                      + f" | calls {calls:.3e}, Philox share of the _drop backward {extra:.3f} ms"
                      f" = {extra / row['p0.1'] * 100:.0f}%, {calls / (extra * 1e-3) / 1e12 if extra > 0 else float('nan'):.3f} Tcalls/s",
                      flush=True)
                del q, k, v, dout, o, lse, dq, dk, dv
                torch.cuda.empty_cache()
    probe = os.environ.get("PHILOX_PROBE_CUBIN")
    if probe:
        m = tl.Module(open(probe, "rb").read())
        sms = torch.cuda.get_device_properties(0).multi_processor_count
        blocks, threads, n = sms * 8, 256, 4096
        out = torch.empty(blocks * threads, dtype=torch.int32, device="cuda")
        import struct
        params = struct.pack("<IIIIQ", n, 429496729, 42, 0, out.data_ptr())
        fn = lambda: m.launch("probe_rate", (blocks,), threads, 0, params)
        ms = timed(fn)
        calls = blocks * threads * n
        print(f"probe_rate: {calls:.3e} Philox4x32-10 calls (+ 4 compares each) in {ms:.3f} ms = "
              f"{calls / (ms * 1e-3) / 1e12:.3f} Tcalls/s on {sms} SMs, {calls * 4 / (ms * 1e-3) / 1e12:.2f} T elements/s")


if __name__ == "__main__":
    main()
