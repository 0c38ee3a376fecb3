#!/usr/bin/env python3
"""Tables (markdown) and a plot from bench_lut_gemm's JSON output (run with repetitions; medians used).

usage: plot_lut_gemm.py RESULT.json OUT.png > tables.md
"""
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SHAPES = ["4096x4096", "14336x4096", "4096x14336"]
# llama.cpp / ggml CPU dot products, AVX2 build, 2 threads, cold, µs (shared/reference/cpu-baseline.md)
LLAMA = {2: ("Q2_K", [155, 523, 772]), 3: ("Q3_K", [250, 866, 1068]), 4: ("Q4_K", [212, 715, 1171])}
GOAL = {2: 1.5, 3: 1.5, 4: 1.2}


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") not in ("median", "stddev", "cv"):
            continue
        base = b["run_name"]
        rows.setdefault(base, {})[b["aggregate_name"]] = b
    return data["context"], rows


def args(name):
    return {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", name)}


def us(b):
    t = b["real_time"]
    unit = b["time_unit"]
    return t * {"us": 1, "ms": 1e3, "ns": 1e-3, "s": 1e6}[unit]


def main():
    ctx, rows = load(sys.argv[1])
    out_png = sys.argv[2]
    lut = {}
    for name, agg in rows.items():
        if name.startswith("BM_Lut/"):
            a = args(name)
            lut[(a["shape"], a["p"], a["thr"], a["n"], a["cold"], a["isa"])] = agg
    bw1 = float(ctx.get("read_bw_1t_before", "nan"))
    bw2 = float(ctx.get("read_bw_2t_before", "nan"))
    print(f"Streaming read bandwidth measured before the run (512 MB, median of 5): "
          f"{bw1:.1f} GB/s (1 thread), {bw2:.1f} GB/s (2 threads).\n")

    def cell(key):
        agg = lut.get(key)
        if not agg:
            return None
        m = agg["median"]
        cv = agg.get("cv", {}).get("real_time", float("nan"))
        return us(m), m["GBps"], m["bw_frac"], cv

    print("### GEMV, cold, 2 threads (AVX-512), median µs, vs llama.cpp k-quants\n")
    print("llama.cpp µs: shared/reference/cpu-baseline.md, measured on this machine type when it was quiet; "
          "compare only if this run was quiet too (see the streaming-read bandwidth above).\n")
    print("| shape | p | AnyBCQ µs | GB/s | of read BW | llama.cpp | its µs | speed-up | goal (as measured) | run-to-run CV |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in range(3):
        for p in (2, 3, 4):
            c = cell((s, p, 2, 1, 1, 2))
            if not c:
                continue
            qn, qt = LLAMA[p]
            sp = qt[s] / c[0]
            print(f"| {SHAPES[s]} | {p} | {c[0]:.0f} | {c[1]:.1f} | {c[2]:.2f} | {qn} | {qt[s]} | "
                  f"{sp:.2f}× | ≥{GOAL[p]}× {'met' if sp >= GOAL[p] else 'NOT met'} | {100 * c[3]:.0f}% |")
    print()
    print("### Per core, hot: 1 thread, 4096×4096, CPU time of the calling thread (time-slicing by other "
          "processes removed), vs llama.cpp 1-thread hot (reference numbers)\n")
    print("| p | AnyBCQ CPU µs | llama.cpp type | its µs (1 thr, hot) | ratio |")
    print("|---|---|---|---|---|")
    hot1 = {2: ("Q2_K", 283), 3: ("Q3_K", 450), 4: ("Q4_K", 326)}
    for p in (2, 3, 4):
        agg = lut.get((0, p, 1, 1, 0, 2))
        if agg:
            m = agg["median"]
            cpu_us = m["cpu_time"] * {"us": 1, "ms": 1e3, "ns": 1e-3, "s": 1e6}[m["time_unit"]]
            print(f"| {p} | {cpu_us:.0f} | {hot1[p][0]} | {hot1[p][1]} | {hot1[p][1] / cpu_us:.2f}× |")
    print()
    print("### GEMV, every configuration (AVX-512), median µs / effective GB/s / fraction of read BW\n")
    print("| shape | p | 1 thr hot | 2 thr hot | 1 thr cold | 2 thr cold |")
    print("|---|---|---|---|---|---|")
    for s in range(3):
        for p in (2, 3, 4):
            cells = []
            for cold, thr in ((0, 1), (0, 2), (1, 1), (1, 2)):
                c = cell((s, p, thr, 1, cold, 2))
                cells.append(f"{c[0]:.0f} / {c[1]:.1f} / {c[2]:.2f}" if c else "–")
            print(f"| {SHAPES[s]} | {p} | " + " | ".join(cells) + " |")
    print()
    print("### Batch: 8 activation rows vs 1 (cold, 2 threads, AVX-512)\n")
    print("| shape | p | n=1 µs | n=8 µs | ratio (goal ≤ 3) |")
    print("|---|---|---|---|---|")
    for s in range(3):
        for p in (2, 3, 4):
            c1, c8 = cell((s, p, 2, 1, 1, 2)), cell((s, p, 2, 8, 1, 2))
            if c1 and c8:
                print(f"| {SHAPES[s]} | {p} | {c1[0]:.0f} | {c8[0]:.0f} | {c8[0] / c1[0]:.2f} |")
    print()
    print("Batch sweep, 4096×4096, p = 3, cold, 2 threads: " + ", ".join(
        f"n={n}: {cell((0, 3, 2, n, 1, 2))[0]:.0f} µs" for n in (1, 2, 4, 8, 16, 64) if cell((0, 3, 2, n, 1, 2))))
    print()
    mixed = [(n, a["median"]) for n, a in rows.items() if n.startswith("BM_LutMixed")]
    if mixed:
        print("Per-row precision in one call (8 rows at p = 2,2,3,3,3,4,4,4, cold, 2 threads): " + ", ".join(
            f"{SHAPES[args(n)['shape']]} {us(m):.0f} µs" for n, m in sorted(mixed)))
        print()
    print("### AVX2 path (same machine, forced), GEMV cold, 2 threads\n")
    print("| shape | p=2 µs | p=3 µs | p=4 µs |")
    print("|---|---|---|---|")
    for s in range(3):
        cs = [cell((s, p, 2, 1, 1, 1)) for p in (2, 3, 4)]
        print(f"| {SHAPES[s]} | " + " | ".join(f"{c[0]:.0f}" if c else "–" for c in cs) + " |")
    print()
    tabs = sorted((args(n)["K"], args(n)["thr"], us(a["median"])) for n, a in rows.items() if n.startswith("BM_Tables"))
    if tabs:
        print("Activation tables for one row (built once per input, shared by all threads and reusable across "
              "matrices): " + ", ".join(f"K={k} {t} thr {v:.1f} µs" for k, t, v in tabs))
        print()
    acc = sorted((args(n)["p"], args(n)["int16"], args(n)["act_block"], a["median"]["nmse"])
                 for n, a in rows.items() if n.startswith("BM_Accuracy"))
    if acc:
        print("### Accuracy: NMSE vs the float64 dequantized reference (1024×4096, 4 rows, 1% of channels ×30)\n")
        blocks = sorted({b for _, _, b, _ in acc})
        print("| p | tables | " + " | ".join(f"act_block {b}" for b in blocks) + " |")
        print("|---|---|" + "---|" * len(blocks))
        for p in sorted({p for p, _, _, _ in acc}):
            for wide in (0, 1):
                print(f"| {p} | {'int16' if wide else 'int8'} | " +
                      " | ".join(f"{v:.2e}" for q, w, b, v in acc if q == p and w == wide) + " |")
        print()
    # BM_LutInt16/shape/p[/isa]: runs from before the isa argument are AVX-512 (isa 2)
    i16 = {(args(n)["shape"], args(n)["p"], args(n).get("isa", 2)): us(a["median"])
           for n, a in rows.items() if n.startswith("BM_LutInt16")}
    for isa, name, base in ((2, "AVX-512", (2, 1, 1, 2)), (1, "AVX2", (2, 1, 1, 1))):
        if not any(k[2] == isa for k in i16):
            continue
        print(f"### int16 two-table variant, {name}, GEMV cold, 2 threads (µs; int8 tables, same ISA, for comparison)\n")
        print("| shape | p=2 | p=3 | p=4 |")
        print("|---|---|---|---|")
        for sh in range(3):
            cs = []
            for p in (2, 3, 4):
                c8 = cell((sh, p) + base)
                v = i16.get((sh, p, isa), float("nan"))
                cs.append(f"{v:.0f} ({c8[0]:.0f})" if c8 else f"{v:.0f}")
            print(f"| {SHAPES[sh]} | " + " | ".join(cs) + " |")
        print()
    print("### Baselines measured in the same run\n")
    print("| what | shape | µs | GB/s |")
    print("|---|---|---|---|")
    eig = {}
    for n, a in sorted(rows.items()):
        if n.startswith("BM_EigenGemv"):
            ar = args(n)
            m = a["median"]
            eig[(ar["shape"], ar["cold"])] = us(m)
            print(f"| Eigen fp32 GEMV, 1 thread, {'cold' if ar['cold'] else 'hot'} | {SHAPES[ar['shape']]} | "
                  f"{us(m):.0f} | {m['GBps']:.1f} |")
        if n.startswith("BM_DequantEigen"):
            m = a["median"]
            print(f"| dequantize + Eigen GEMV, 1 thread, p={args(n)['p']} | 4096x4096 | {us(m):.0f} | – |")
    print()

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.6))
    ps = [2, 3, 4]
    x = range(len(ps))
    w = 0.27
    for s, ax in enumerate(axes[0]):
        ours = [cell((s, p, 2, 1, 1, 2)) for p in ps]
        ours1 = [cell((s, p, 1, 1, 1, 2)) for p in ps]
        ax.bar([i - w for i in x], [LLAMA[p][1][s] for p in ps], w,
               label="llama.cpp Q2_K/Q3_K/Q4_K, 2 thr (reference, quiet machine)", color="#bbbbbb")
        ax.bar(list(x), [c[0] if c else 0 for c in ours1], w, label="AnyBCQ LUT, 1 thr (this run)", color="#7fa7d9")
        ax.bar([i + w for i in x], [c[0] if c else 0 for c in ours], w, label="AnyBCQ LUT, 2 thr (this run)",
               color="#1f5fa8")
        ax.set_xticks(list(x))
        ax.set_xticklabels([f"p={p}" for p in ps])
        ax.set_title(f"{SHAPES[s]} GEMV, cold: µs")
        ax.set_ylabel("µs (lower is better)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    for s, ax in enumerate(axes[1]):
        for k, (thr, col) in enumerate(((1, "#7fa7d9"), (2, "#1f5fa8"))):
            cs = [cell((s, p, thr, 1, 1, 2)) for p in ps]
            ax.bar([i + (k - 0.5) * w for i in x], [c[2] if c else 0 for c in cs], w, color=col,
                   label=f"{thr} thr, cold")
        ax.axhline(0.6, color="#c0392b", ls="--", lw=1)
        ax.text(-0.4, 0.62, "goal 0.6", color="#c0392b", fontsize=8)
        ax.set_xticks(list(x))
        ax.set_xticklabels([f"p={p}" for p in ps])
        ax.set_title(f"{SHAPES[s]}: ÷ read BW (same run)")
        ax.set_ylabel("effective GB/s ÷ streaming read GB/s")
    axes[1][0].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"AnyBCQ CPU LUT GEMV on the shared 2-core dev machine (read BW this run: {bw1:.0f} GB/s 1 thr, "
                 f"{bw2:.0f} GB/s 2 thr)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)


if __name__ == "__main__":
    main()
