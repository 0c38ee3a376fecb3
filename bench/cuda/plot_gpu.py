#!/usr/bin/env python3
"""Plot bench_bcq_gemm's CSV: roofline fraction at batch 1 (per shape and p) and speedup vs fp16 by batch.

Usage: plot_gpu.py RESULTS.csv OUT.png [TITLE] [--no-published]
The published AnyBCQ GEMV times (H100, reference table in the project's baseline notes) are drawn for
comparison with its ~1.07 us output zeroing added; they are only comparable to runs on an H100, so
--no-published leaves them out (for runs on other cards).
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from h100_reference import PEAK, PUBLISHED, ZEROING_US  # noqa: E402


def roof_us(m, k, n, p):
    b = p * m * k / 8 + (p + 1) * (k / 128) * m * 2 + n * k * 2 + n * m * 2
    return 1e6 * b / PEAK


def main():
    args = [a for a in sys.argv[1:] if a != "--no-published"]
    published = "--no-published" not in sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    src, out = args[0], args[1]
    title = args[2] if len(args) > 2 else ""
    rows = list(csv.DictReader(open(src)))
    shapes = []
    for r in rows:
        s = (int(r["M"]), int(r["K"]))
        if s not in shapes:
            shapes.append(s)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 5.5))

    # Left: fraction of roofline at batch 1.
    width = 0.11
    xs = range(len(shapes))
    cub = []
    for s in shapes:
        rr = [r for r in rows if (int(r["M"]), int(r["K"])) == s and r["batch"] == "1" and r["path"] == "cublas_fp16"]
        cub.append(float(rr[0]["frac_roofline"]) if rr else 0)
    ax1.bar([x - 3 * width for x in xs], cub, width, label="cuBLAS fp16", color="#888888")
    colors = {2: "#1f77b4", 3: "#2ca02c", 4: "#d62728"}
    for i, p in enumerate((2, 3, 4)):
        ours, pub = [], []
        for s in shapes:
            rr = [r for r in rows if (int(r["M"]), int(r["K"])) == s and r["batch"] == "1" and r["p"] == str(p)]
            ours.append(float(rr[0]["frac_roofline"]) if rr else 0)
            t = PUBLISHED.get(s, (0, 0, 0))[p - 2]
            pub.append(roof_us(s[0], s[1], 1, p) / (t + ZEROING_US) if t else 0)
        ax1.bar([x + (2 * i - 2) * width for x in xs], ours, width, label=f"AnyBCQ Gemm p={p}", color=colors[p])
        if published:
            ax1.bar([x + (2 * i - 1) * width for x in xs], pub, width, label=f"published p={p} (H100)",
                    color=colors[p], alpha=0.35, hatch="//")
    ax1.set_xticks(list(xs))
    ax1.set_xticklabels([f"{m}x{k}" for m, k in shapes])
    ax1.axhline(0.85, color="k", ls=":", lw=1)
    ax1.set_ylabel("fraction of roofline (bytes / 3.10 TB/s)")
    ax1.set_title("batch 1 (cuda::Gemm, binary-mma path): fraction of roofline")
    ax1.legend(fontsize=7, ncol=2)

    # Right: speedup vs cuBLAS fp16 by batch, p = 2 (solid) and p = 4 (dashed).
    for s in shapes:
        for p, ls in ((2, "-"), (4, "--")):
            pts = sorted((int(r["batch"]), float(r["speedup_vs_fp16"])) for r in rows
                         if (int(r["M"]), int(r["K"])) == s and r["p"] == str(p))
            if pts:
                ax2.plot([b for b, _ in pts], [v for _, v in pts], ls, marker="o", ms=3,
                         label=f"{s[0]}x{s[1]} p={p}")
    ax2.set_xscale("log", base=2)
    ax2.axhline(1.0, color="k", lw=1)
    ax2.set_xlabel("batch (activation rows)")
    ax2.set_ylabel("speedup vs cuBLAS fp16 (>1 is faster)")
    ax2.set_title("speedup vs fp16 by batch")
    ax2.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
