"""The forward's _drop kernels (the mma.sync main kernel with dropout) of two cubins, shape by shape: trainlib.forward
on the same inputs, seed and offset; the best of 3 rounds of trainlib.timed (5 timings of 5 calls) each; O and the LSE
compared bit for bit.

NEW_CUBIN and OLD_CUBIN name the two flash_fwd.cu cubins (FLASH_FWD_CUBIN / FLASH_BWD_CUBIN as trainlib needs them);
SHAPES "B:L:E:H:dtype:causal:p:byte,..." (byte 1 = the BYTE mask resolution). Prints one line per shape (forward
v21's dropout table)."""
import os, random
import torch
import trainlib as tl


def main():
    rng = random.Random(3)
    cubins = {"new": {"fwd": os.environ["NEW_CUBIN"]}, "old": {"fwd": os.environ["OLD_CUBIN"]}}
    print("E H B L dtype causal p byte | new us | old us | old / new | bits")
    for s in os.environ["SHAPES"].split(","):
        B, L, E, H, dt, c, p, byte = s.split(":")
        B, L, E, H, c, p, byte = int(B), int(L), int(E), int(H), int(c), float(p), byte == "1"
        q = torch.randn(B, H, L, E, dtype=getattr(torch, dt), device="cuda")
        k, v = torch.randn_like(q), torch.randn_like(q)
        outs = {n: (torch.empty_like(q), torch.empty(B, H, L, dtype=torch.float32, device="cuda")) for n in cubins}
        fns = {n: (lambda var=var, o=outs[n]: tl.forward(q, k, v, *o, c, dropout_p=p, seed=7, offset=11, variant=var,
                                                          byte=byte, sm90=False))
               for n, var in cubins.items()}
        for f in fns.values():
            f()
        torch.cuda.synchronize()
        same = all(torch.equal(a, b) for a, b in zip(outs["new"], outs["old"]))
        t = {}   # placement.best_of_rounds's rounds, without its import of a harness library
        for _ in range(3):
            order = list(fns)
            rng.shuffle(order)
            for n in order:
                t[n] = min(t.get(n, float("inf")), tl.timed(fns[n], reps=5, calls=5)[0])
        print(f"{E:>3} {H:>2} {B:>2} {L:>5} {dt} {c} {p} {int(byte)} | {t['new'] * 1000:8.1f} | {t['old'] * 1000:8.1f} | "
              f"{t['old'] / t['new']:.3f} | {'same' if same else 'differ'}", flush=True)


if __name__ == "__main__":
    main()
