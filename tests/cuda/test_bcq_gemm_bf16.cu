// CUDA GEMV/GEMM at run-time precision (bf16 activations), checked against the float64 CPU reference.
#include "cuda/gemm_test_common.cuh"

using namespace anybcq;
using namespace gemm_test;

TEST_CASE("bf16 fused small: GEMV and small batch match the reference at every p") { if (have_gpu()) fused_small<__nv_bfloat16>(); }
TEST_CASE("bf16 odd M, several K and group sizes, batch 1..64 (fused and dequantize+cuBLAS), p_min 1..p_max 5") { if (have_gpu()) fused_shapes<__nv_bfloat16>(); }
TEST_CASE("bf16 dequantize + cuBLAS: large batch matches the reference") { if (have_gpu()) dequant_cublas<__nv_bfloat16>(); }
TEST_CASE("bf16 warpgroup kernel (wgmma-dq): odd M, partial chunks, every group size, batch 1..257") { if (have_gpu()) wgmma_dequant<__nv_bfloat16>(); }
TEST_CASE("bf16 binary-mma kernel: batch 1..8, odd M, every group size >= 128, every K split, outlier channels") { if (have_gpu()) binary_mma<__nv_bfloat16>(); }
TEST_CASE("bf16 per-row precision: each row equals its single-precision result") { if (have_gpu()) per_row_precision<__nv_bfloat16>(); }
TEST_CASE("bf16 scales near and beyond the fast decode's range: the dispatcher and every path stay exact") { if (have_gpu()) large_scales<__nv_bfloat16>(); }
