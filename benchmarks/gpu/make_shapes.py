#!/usr/bin/env python3
"""Writes shapes.json (the full GPU sweep) and shapes-quick.json (a short check of every part) in this folder.

Sets (run-gpu.sh runs one or more per call, each within a 10-minute command):
  inference        issue 6's forward shapes: B*L = 16k tokens, hidden 2048 (E=64: 32 heads, E=128: 16, E=256: 8),
                   L = 512..16k, fp16 and bf16, causal and not
  training-fp16,   issue 8's training steps (forward + backward): B*L = 16k, hidden 2048, E = 64 (32 heads) and
  training-bf16    128 (16 heads), L = 512..16k, causal and not, without and with dropout 0.1
  decode           one query against a long cache: Lq = 1, Lk = 4k..64k, B = 1..64 (B*Lk <= 1M), E = 128, H = 16, fp16
  figures          the post's standalone sweep, forward: B = 4, H = 16, E = 8..256, L = 256..4k, fp16
  figures-long     the same at L = 8k..32k (eager runs out of memory at 32k)
  figures-training the same, forward + backward, L = 256..4k
  figures-training-long                     forward + backward at L = 8k and 16k
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENS = 16384
HIDDEN = 2048


def shape(set_, b, h, l, e, causal=False, dtype="fp16", pass_="fwd", dropout=0.0, kv=None):
    s = {"set": set_, "batch": b, "heads": h, "seqLen": l}
    if kv is not None:
        s["kvLen"] = kv
    s.update({"headDim": e, "causal": causal, "dtype": dtype, "pass": pass_})
    if dropout:
        s["dropout"] = dropout
    return s


def tokens_shapes(set_, dims, lens, dtypes, pass_, dropouts):
    out = []
    for dtype in dtypes:
        for dropout in dropouts:
            for causal in (False, True):
                for e in dims:
                    for l in lens:
                        out.append(shape(set_, TOKENS // l, HIDDEN // e, l, e, causal, dtype, pass_, dropout))
    return out


def full():
    lens = [512, 1024, 2048, 4096, 8192, 16384]
    s = tokens_shapes("inference", [64, 128, 256], lens, ["fp16", "bf16"], "fwd", [0.0])
    for dtype in ("fp16", "bf16"):
        s += tokens_shapes("training-" + dtype, [64, 128], lens, [dtype], "fwd+bwd", [0.0, 0.1])
    for b in (1, 8, 64):
        for lk in (4096, 16384, 65536):
            if b * lk <= 1 << 20:
                s.append(shape("decode", b, 16, 1, 128, kv=lk))
    for e in (8, 16, 32, 64, 128, 256):
        for l in (256, 512, 1024, 2048, 4096, 8192, 16384, 32768):
            s.append(shape("figures" if l <= 4096 else "figures-long", 4, 16, l, e))
    for e in (8, 16, 32, 64, 128, 256):
        for l in (256, 512, 1024, 2048, 4096, 8192, 16384):
            s.append(shape("figures-training" if l <= 4096 else "figures-training-long", 4, 16, l, e,
                           pass_="fwd+bwd"))
    return s


def quick():
    return [
        shape("inference", 16, 32, 1024, 64),
        shape("inference", 4, 16, 4096, 128, causal=True),
        shape("inference", 4, 16, 4096, 128, dtype="bf16"),
        shape("training-fp16", 16, 32, 1024, 64, pass_="fwd+bwd"),
        shape("training-fp16", 16, 32, 1024, 64, pass_="fwd+bwd", dropout=0.1),
        shape("training-bf16", 4, 16, 4096, 128, causal=True, dtype="bf16", pass_="fwd+bwd"),
        shape("decode", 8, 16, 1, 128, kv=16384),
        shape("figures", 4, 16, 1024, 32),
        shape("figures", 4, 16, 2048, 32),
        shape("figures", 4, 16, 1024, 128),
        shape("figures", 4, 16, 2048, 128),
    ]


def write(name, shapes, description):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump({"description": description, "shapes": shapes}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    write("shapes.json", full(), "GPU shape list shared by BenchMain gpu and pytorch_peer.py, written by "
          "make_shapes.py (see its docstring for the sets).")
    write("shapes-quick.json", quick(), "A short check of every part of the GPU sweep (one or a few shapes of each "
          "set), written by make_shapes.py.")
