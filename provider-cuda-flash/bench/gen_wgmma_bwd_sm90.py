"""Prints the wgmma.mma_async wrappers of src/main/cuda/flash_bwd_sm90.cu (its "generated" section, verbatim):
wgmma_ss_n<N><kBf16, kTA, kTB> (A and B from shared memory through descriptors, kTA / kTB the M- / N-major transpose
bits) and wgmma_rs_n<N><kBf16, kTB> (A from registers, the m64k16 fragment) for N = 32, 64, 128; fp32 accumulators,
one "+f" operand each (N / 2 per thread), scale-d as a run-time predicate. Usage: python3 gen_wgmma_bwd_sm90.py"""


def regs(n):
    chunks = [", ".join(f"%{i}" for i in range(s, min(n, s + 16))) for s in range(0, n, 16)]
    return ', "\n                 "'.join(chunks)


def operands(nr):
    parts = [f'"+f"(d[{i}])' for i in range(nr)]
    return ",\n                   ".join(", ".join(parts[i:i + 8]) for i in range(0, nr, 8))


def wrappers(n):
    nr = n // 2
    out = [f"// D[64 x {n}] (+)= A B, A and B from shared memory (descriptors); kTA / kTB: 1 = M- / N-major",
           "template <bool kBf16, int kTA, int kTB>",
           f"DEVI void wgmma_ss_n{n}(float (&d)[{nr}], u64 da, u64 db, int accumulate) {{"]
    for i, (cond, ty) in enumerate((("kBf16", "bf16"), ("!kBf16", "f16"))):
        out += [f"  if ({cond}) {{" if i == 0 else "  } else {",
                f'    asm volatile("{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{nr + 2}, 0;\\n"',
                f'                 "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ty}.{ty} "',
                f'                 "{{{regs(nr)}}}, "',
                f'                 "%{nr}, %{nr + 1}, p, 1, 1, %{nr + 3}, %{nr + 4};\\n}}\\n"',
                f"                 : {operands(nr)}",
                '                 : "l"(da), "l"(db), "r"(accumulate), "n"(kTA), "n"(kTB));']
    out += ["  }", "}",
            f"// D[64 x {n}] (+)= A B, A from registers (the m64k16 fragment), B from shared memory",
            "template <bool kBf16, int kTB>",
            f"DEVI void wgmma_rs_n{n}(float (&d)[{nr}], const u32 (&a)[4], u64 db, int accumulate) {{"]
    for i, (cond, ty) in enumerate((("kBf16", "bf16"), ("!kBf16", "f16"))):
        out += [f"  if ({cond}) {{" if i == 0 else "  } else {",
                f'    asm volatile("{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{nr + 5}, 0;\\n"',
                f'                 "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ty}.{ty} "',
                f'                 "{{{regs(nr)}}}, "',
                f'                 "{{%{nr}, %{nr + 1}, %{nr + 2}, %{nr + 3}}}, %{nr + 4}, p, 1, 1, %{nr + 6};\\n}}\\n"',
                f"                 : {operands(nr)}",
                '                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate), "n"(kTB));']
    out += ["  }", "}"]
    return out


if __name__ == "__main__":
    print("\n".join(line for n in (32, 64, 128) for line in wrappers(n)))
