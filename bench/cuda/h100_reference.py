"""The published AnyBCQ kernel's H100 numbers (shared/reference/h100-baseline.md), shared by
summarize_gpu.py and plot_gpu.py."""

PEAK = 3.10e12  # bytes/s: the H100 streaming-read ceiling the roofline fractions use
# Published AnyBCQ nqmv_bias, batch 1, H100, µs (p = 2, 3, 4), without the separate zeroing kernel.
PUBLISHED = {
    (4096, 4096): (7.26, 8.63, 10.85),
    (6144, 4096): (7.74, 9.21, 11.44),
    (14336, 4096): (11.12, 14.39, 17.65),
    (4096, 14336): (12.08, 14.62, 18.06),
    (28672, 4096): (19.70, 25.80, 33.11),
}
ZEROING_US = 1.07  # the output zeroing that kernel needs before every call
