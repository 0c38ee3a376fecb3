#!/usr/bin/env python3
"""Markdown tables (for docs/perf/gpu.md) from bench_bcq_gemm's CSV, with the goal checks.

Usage: summarize_gpu.py RESULTS.csv
Published AnyBCQ batch-1 times (H100) are the reference table's; 1.07 us of output zeroing is added,
as that kernel needs a zeroed output before every call.
"""
import csv
import sys

from h100_reference import PUBLISHED, ZEROING_US


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    get = {}
    for r in rows:
        get[(int(r["M"]), int(r["K"]), int(r["batch"]), int(r["p"]))] = r
    shapes = []
    for r in rows:
        s = (int(r["M"]), int(r["K"]))
        if s not in shapes:
            shapes.append(s)
    batches = sorted({int(r["batch"]) for r in rows})

    print("### Batch 1 (GEMV): µs per call, fraction of roofline, speedup over the published kernel (+zeroing)\n")
    print("| M×K | cuBLAS fp16 | p=2 | p=3 | p=4 | roofline p=2/3/4 | vs published p=2/3/4 |")
    print("|---|---|---|---|---|---|---|")
    for s in shapes:
        cub = get.get((s[0], s[1], 1, 16))
        cells, fr, sp = [], [], []
        for p in (2, 3, 4):
            r = get.get((s[0], s[1], 1, p))
            if not r:
                cells.append("–")
                continue
            t = float(r["us"])
            cells.append(f"{t:.2f}")
            fr.append(f"{float(r['frac_roofline']):.2f}")
            pub = PUBLISHED.get(s)
            sp.append(f"{(pub[p - 2] + ZEROING_US) / t:.2f}×" if pub else "–")
        print(f"| {s[0]}×{s[1]} | {float(cub['us']):.2f} | " + " | ".join(cells) + f" | {' / '.join(fr)} | "
              f"{' / '.join(sp)} |")

    print("\n### All batches: µs per call (speedup vs cuBLAS fp16 in parentheses; path: bmma = binary tensor-core kernel on activation bit planes, lut = lookup-table kernel, fused-dq = register-dequantizing kernel, wgmma-dq = the same dequantization feeding warpgroup mma, deq+cublas = dequantize + cuBLAS)\n")
    print("| M×K | batch | cuBLAS fp16 | p=2 | p=3 | p=4 | path |")
    print("|---|---|---|---|---|---|---|")
    for s in shapes:
        for n in batches:
            cub = get.get((s[0], s[1], n, 16))
            if not cub:
                continue
            cells, path = [], ""
            for p in (2, 3, 4):
                r = get.get((s[0], s[1], n, p))
                if r:
                    cells.append(f"{float(r['us']):.2f} ({float(r['speedup_vs_fp16']):.2f}×)")
                    path = r["path"]
                else:
                    cells.append("–")
            print(f"| {s[0]}×{s[1]} | {n} | {float(cub['us']):.2f} | " + " | ".join(cells) + f" | {path} |")

    print("\n### Goal checks\n")
    for s in shapes:
        for p in (2, 3, 4):
            r1, r8 = get.get((s[0], s[1], 1, p)), get.get((s[0], s[1], 8, p))
            if r1 and r8:
                print(f"- {s[0]}×{s[1]} p={p}: batch 8 / batch 1 time = {float(r8['us']) / float(r1['us']):.2f}")
    for s in shapes:
        for n in batches:
            r, cub = get.get((s[0], s[1], n, 2)), get.get((s[0], s[1], n, 16))
            if r and cub and n <= 16:
                print(f"- {s[0]}×{s[1]} p=2 batch {n}: speedup over cuBLAS fp16 {float(cub['us']) / float(r['us']):.2f}×")
    for s in shapes:
        for n in batches:
            if n < 256:
                continue
            cub = get.get((s[0], s[1], n, 16))
            worst = max((float(get[(s[0], s[1], n, p)]["us"]) for p in (2, 3, 4) if (s[0], s[1], n, p) in get),
                        default=None)
            if cub and worst:
                print(f"- {s[0]}×{s[1]} batch {n}: slowest p takes {worst / float(cub['us']):.2f}× cuBLAS fp16 time")


if __name__ == "__main__":
    main()
