// AnyBCQ — y = x·Ŵ_pᵀ on the GPU at a run-time precision p (per call or per activation row).
//
// Paths (the dispatcher picks one; Arguments::path can force one):
//  * binary mma (uniform precision, batch ≤ Tuning::kMaxBmmaBatch, or ≤ kMaxBmmaBatchTall when M > K or
//    the weights are large, Gemm::bmma_up_to_tall, or ≤ 8 at p = 2 when M ≥ 3K, Gemm::bmma_tile_wins;
//    group ≥ 128): a small kernel turns the activations
//    into 16 bit planes of 16-bit fixed point per 128 columns; each weight plane is counted against them
//    with m16n8k128 AND + POPC mma (16 rows × 128 columns × 8 activation planes per instruction), the
//    counts folded as Σ_n ±2^n·popc in integers, then scaled by α and the activation scale (batch 5–8:
//    one 8-row batch tile as the mma's N, one mma per activation plane, a Horner fold). Planes and
//    scale runs stream through a cp.async ring; both kernels use programmatic dependent launch so that a
//    call's weight stream overlaps the call before.
//  * LUT (forced only; uniform precision, batch ≤ 2, group ≥ 128): CUDA cores. Each
//    warp streams one 16-row tile's p planes over a slice of K; the warps of a slice share per-chunk tables
//    of the 16 signed sums ±x0±x1±x2±x3 of every 4 inputs in shared memory; a weight nibble costs one
//    PRMT, one LDS and one FADD. The fragment-ordered bits are re-sorted per lane (delta swap and one
//    exchange with the neighbouring lane) into 32 consecutive columns of one row per word.
//  * fused, register-dequantizing (uniform precision, batch ≤ Tuning::kMaxFusedBatch; per-row precision at
//    any batch where p_max ≤ 4, in 8-row batch tiles with the planes as operands): each warp streams
//    the p planes of one 16-row tile over a slice of K, rebuilds Ŵ_p of every 16×16 tensor-core step in
//    registers (per two weights and plane: one LOP3, one exact subtraction, one FMA with 2α_i, starting
//    from β − Σα_i) and runs one m16n8k16 mma per 8 activation rows with fp32 accumulation; the K slices
//    of a tile are added in shared memory in a fixed order.
//  * fused, bit-serial (per-row precision where p_max > 4, any batch): one kernel reads
//    every needed bit plane once for up to 32 activation rows (streamed through a per-warp cp.async
//    ring in shared memory together with the chunk's scales), turns bits into tensor-core operands with
//    one LOP3 per two weights, runs m16n8k16 mma with fp32 accumulation per plane, folds the per-group
//    scales in fp32,
//    splits K over the warps of a block and reduces in shared memory in a fixed order (deterministic,
//    no atomics, every output written once).
//  * warpgroup, register-dequantizing (uniform precision, batch kMaxFusedBatch + 1 … kMaxWgmmaBatch, from
//    kWgmmaEarlyBatch + 1 when M ≥ kWgmmaMinRows; sm_90a builds only): the same register dequantization
//    feeds the A operand of wgmma (64 weight rows per warpgroup) against activation tiles packed into
//    128-byte-swizzled shared-memory tiles of 128 or 256 batch rows; where the grid would be small, K is
//    split over up to Tuning::kWgMaxSplits blocks per output tile, whose fp32 partials a second kernel
//    adds in slice order. From batch Tuning::kWsMinBatch on, a warp-specialized kernel takes over: in
//    each block one warpgroup rebuilds Ŵ_p of 128 weight rows into shared memory (stmatrix) while two
//    others run wgmma with both operands in shared memory against 256-row activation tiles brought in by
//    bulk copies; the warpgroups meet through mbarriers over a ring of 64-column stages.
//  * dequantize + cuBLAS (uniform precision, larger batches): Ŵ_p is written to the
//    workspace in the activation type (the same register dequantization), then one cublasGemmEx with
//    fp32 compute.
//  * precision splits (per-row precision above the per-row kernels' batches): one kernel sorts the rows by
//    precision on the device, then the register-dequantizing kernel (split-dq) or, in sm_90a builds, the
//    warpgroup kernel (split-wg; each precision's rows packed into 128-row tiles of their own) runs once
//    per precision on its rows; or Ŵ_p of every precision and one batched cuBLAS GEMM (split-cublas).
//
// Operand trick of the bit-serial path: with a bit b at mantissa position j of a 16-bit float whose other
// bits encode 2^e (e chosen so that position j weighs 1), the register value is exactly c + b with
// c ∈ {16, 8, 4, 2}. Per plane the mma then gives C = Σ (c_q + b_q)·x_q; one extra mma per step with
// constant operands gives E = Σ (c_q + ½)·x_q and S = Σ x_q, so Σ (2b_q − 1)·x_q = 2(C − E) exactly up
// to fp32 rounding, and y += Σ_i 2α_i(C_i − E) + β·S per group.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

#include "anybcq/core/weights.hpp"
#include "anybcq/cuda/common.cuh"
#include "anybcq/cuda/lut_gemv.cuh"
#include "anybcq/layout/mma_tiled.hpp"
#include "anybcq/layout/scales.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cuda {

//! Tuning constants of the GEMM kernels (a tag type: pass another one with the same members to retune).
struct DefaultTuning {
  static constexpr int kWarps = 8;            //!< warps per block of the bit-serial kernel (they split K)
  static constexpr int kMaxTilesN = 4;        //!< 8-row batch tiles per bit-serial block (≤ 32 rows)
  static constexpr int kDqWarps = 8;          //!< warps per block of the register-dequantizing kernel
  static constexpr int kDqSerialTallTiles = 12;  //!< … with the planes as operands: at most 4 K slices from this many row tiles per SM
  static constexpr int kMaxFusedBatch = 64;   //!< uniform precision: register-dequantizing kernel up to here
  static constexpr int kMaxLutBatch = 2;      //!< forced LUT path: batch up to here
  static constexpr int kMaxBmmaBatch = 2;     //!< uniform precision, group ≥ 128: binary-mma kernel up to here
  static constexpr int kMaxBmmaBatchTall = 4;  //!< … and up to here when M > K, or M·K ≥ kBmmaLargeWeights
  static constexpr index_t kBmmaLargeWeights = index_t(1) << 25;  //!< … (33.5 M weights, 2048×16384 and up)
  static constexpr index_t kBmmaLargeMinRows = 2048;              //!< … with M ≥ this
  static constexpr int kBmmaRowsMaxBatch = 4;  //!< binary-mma kernel: each row its own mma columns up to here, an 8-row batch tile above
  static constexpr int kBmmaTileBits = 2;      //!< … that tile taken by the dispatcher (batch ≤ 8) only at this precision,
  static constexpr int kBmmaTileRowsPerCol = 3;  //!< … where M ≥ this · K and M ≥ kBmmaLargeMinRows
  static constexpr int kMaxWgmmaBatch = 256;  //!< sm_90a builds: warpgroup kernel above kMaxFusedBatch up to here
  static constexpr int kWgmmaMinRows = 4096;  //!< … and from batch kWgmmaEarlyBatch + 1 when M ≥ this
  static constexpr int kWgmmaEarlyBatch = 32;
  static constexpr int kWsMinBatch = 129;    //!< warpgroup path: the warp-specialized kernel (256-row batch tiles) from here
  static constexpr int kWsTargetBlocks = 132;  //!< … split K until its grid has this many blocks (one per multiprocessor)
  static constexpr int kWgTargetBlocks = 264;  //!< warpgroup kernel: split K until the grid has this many blocks
  static constexpr int kWgMaxSplits = 8;       //!< … into at most this many slices
  static constexpr int kWgMinSplitChunks = 2;  //!< … of at least this many 256-column chunks each
  static constexpr int kDequantWarps = 8;     //!< warps per block of the dequantize kernel
  static constexpr int kMaxRowBitsBmmaBatch = 2;  //!< per-row precision: the binary-mma kernel up to here (where Gemm::bmma_per_row)
  static constexpr int kMaxRowBitsDqBatch = 16;  //!< … then the register-dequantizing kernel's per-row mode up to here
  static constexpr int kMinSplitCublasBatch = 256;  //!< … the precision split through cuBLAS from here
  //! sm_90a builds: the precision split on the warpgroup kernel at batch kMinSplitWgBatch … kMaxSplitWgBatch
  //! (kMaxSplitWgBatchTall where M ≥ 2K) where M·K ≥ kSplitWgLargeWeights, else at kMinSplitWgBatchSmall …
  //! kMaxSplitWgBatchSmall
  static constexpr int kMinSplitWgBatch = 96;
  static constexpr int kMaxSplitWgBatch = 768;
  static constexpr int kMaxSplitWgBatchTall = 1536;
  static constexpr index_t kSplitWgLargeWeights = index_t(1) << 25;
  static constexpr int kMinSplitWgBatchSmall = 128;
  static constexpr int kMaxSplitWgBatchSmall = 256;
  //! … its launches let the next precision's launch start from their blocks' start above this batch, else
  //! once a block's main loop is done
  static constexpr int kSplitWgEarlyTriggerBatch = 256;
  static constexpr std::size_t kCublasWorkspace = std::size_t(32) << 20;  //!< bytes handed to cuBLAS
};

//! Which implementation a call takes (kAuto: the dispatcher picks; the others force one path).
enum class GemmPath {
  kAuto,
  kFusedBitSerial,  //!< tensor cores on bit planes, one mma per plane; any batch, per-row precision
  kFusedDequant,    //!< Ŵ_p rebuilt in registers, one mma per step (batch ≤ 8, p ≤ 4: the planes as operands, p + 1 mma); per-row where p_max ≤ 4
  kDequantCublas,   //!< Ŵ_p written to the workspace, then cublasGemmEx; uniform precision
  kLut,             //!< CUDA cores, activation lookup tables; uniform precision, batch ≤ 2, group ≥ 128
  kWgmmaDequant,    //!< Ŵ_p rebuilt in registers, warpgroup mma (sm_90a builds only); uniform precision
  kBinaryMma,       //!< activations as 16 bit planes, binary (AND + POPC) mma; batch ≤ 8, group ≥ 128 (per-row: Gemm::bmma_per_row)
  kSplitDequant,    //!< per-row precision: rows sorted by precision on the device, then fused-dq once per precision
  kSplitCublas,     //!< per-row precision: rows sorted by precision, Ŵ_p of every precision, one batched cuBLAS GEMM
  kSplitWgmma,      //!< per-row precision: rows sorted by precision, the warpgroup kernel once per precision (sm_90a builds only)
};

//! Whether this build has the warpgroup (wgmma) kernel: define ANYBCQ_CUDA_SM90A when the device code is
//! compiled for sm_90a (CMake does when CMAKE_CUDA_ARCHITECTURES contains 90a, the default). Such a
//! build's CUDA code runs on compute capability 9.0 devices (H100, H200) only.
#if defined(ANYBCQ_CUDA_SM90A)
inline constexpr bool kHaveWgmma = true;
#else
inline constexpr bool kHaveWgmma = false;
#endif

inline const char* to_string(GemmPath p) {
  switch (p) {
    case GemmPath::kAuto: return "auto";
    case GemmPath::kFusedBitSerial: return "bitserial";
    case GemmPath::kFusedDequant: return "fused-dq";
    case GemmPath::kDequantCublas: return "deq+cublas";
    case GemmPath::kLut: return "lut";
    case GemmPath::kWgmmaDequant: return "wgmma-dq";
    case GemmPath::kBinaryMma: return "bmma";
    case GemmPath::kSplitDequant: return "split-dq";
    case GemmPath::kSplitCublas: return "split-cublas";
    case GemmPath::kSplitWgmma: return "split-wg";
  }
  return "?";
}

namespace detail {

//! Kernel parameters of the fused path (trivially copyable, passed by value).
template <class Scale>
struct FusedParams {
  const uint4* planes = nullptr;  //!< MmaTiled words as 16-byte vectors
  const Scale* alpha = nullptr;
  const Scale* beta = nullptr;  //!< nullptr when symmetric
  layout::ScaleLayout scales{};
  index_t M = 0, K = 0, group = 0;
  index_t row_tiles = 0, chunks = 0;
  const void* x = nullptr;
  void* y = nullptr;
  index_t batch = 0;
  int bits = 0;                  //!< uniform precision (row_bits == nullptr)
  const int* row_bits = nullptr;  //!< per-row precision (device), or nullptr
  unsigned row_mask = 0;  //!< per-row precision: the precisions rows may ask for (Arguments::row_bits_mask), 0: any
  //! Precision split (uniform kernels): this launch takes sorted positions seg[0] … seg[0] + seg[1] − 1, the
  //! row at sorted position i being row_index[i] of x and y (device arrays written by split_rows_kernel); or nullptr.
  const int* seg = nullptr;
  const int* row_index = nullptr;
  bool early_trigger = false;  //!< precision split on the warpgroup kernel: let the next launch start at block start
  int fold_blocks = 4;            //!< 64-column blocks per scale fold (1: g = 64, 2: g = 128, 4: else)
  //! log2(fold_blocks): words per group are 1 << fold_shift() within a chunk.
  ANYBCQ_HOST_DEVICE int fold_shift() const { return fold_blocks == 1 ? 0 : fold_blocks == 2 ? 1 : 2; }
  index_t batch_blocks = 1;       //!< blocks along the batch (each NT·8 rows)
  int tm = 1, ks = 1;             //!< register-dequantizing kernel: row tiles × K slices per block
  bool aligned_scales = false;    //!< M % 16 == 0 and 16-byte aligned scale tables (copy_scale_windows)
  //! 16-byte pieces of the aligned scale runs (α^p_i for i < p, β^p) of one 256-column chunk and 16-row tile.
  ANYBCQ_HOST_DEVICE int chunk_scale_pieces(int p) const {
    return (4 >> fold_shift()) * (p + (beta ? 1 : 0)) * int(sizeof(Scale));
  }
};

template <class E>
struct OperandBits;
//! fp16: bit at mantissa position 6 + r weighs 1 when the exponent encodes c_r = 2^(4 − r).
template <>
struct OperandBits<__half> {
  static constexpr int kPos = 6;
  //! Both halves = c_r (16, 8, 4, 2).
  __device__ static constexpr std::uint32_t base(int r) {
    return r == 0 ? 0x4C004C00u : r == 1 ? 0x48004800u : r == 2 ? 0x44004400u : 0x40004000u;
  }
  //! Both halves = c_r + ½ (16.5, 8.5, 4.5, 2.5).
  __device__ static constexpr std::uint32_t half_plus(int r) {
    return r == 0 ? 0x4C204C20u : r == 1 ? 0x48404840u : r == 2 ? 0x44804480u : 0x41004100u;
  }
  static constexpr std::uint32_t kOne = 0x3C003C00u;
};
//! bf16: bit at mantissa position 3 + r weighs 1 when the exponent encodes c_r = 2^(4 − r).
template <>
struct OperandBits<__nv_bfloat16> {
  static constexpr int kPos = 3;
  __device__ static constexpr std::uint32_t base(int r) {
    return r == 0 ? 0x41804180u : r == 1 ? 0x41004100u : r == 2 ? 0x40804080u : 0x40004000u;
  }
  __device__ static constexpr std::uint32_t half_plus(int r) {
    return r == 0 ? 0x41844184u : r == 1 ? 0x41084108u : r == 2 ? 0x40904090u : 0x40204020u;
  }
  static constexpr std::uint32_t kOne = 0x3F803F80u;
};

template <class E>
__device__ __forceinline__ void mma16816(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                         std::uint32_t b1) {
  if constexpr (std::is_same_v<E, __half>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

//! d = A·B (no accumulator input): mma16816 with C = 0.
template <class E>
__device__ __forceinline__ void mma16816_first(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  if constexpr (std::is_same_v<E, __half>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%10,%10,%10};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.0f));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%10,%10,%10};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.0f));
  }
}

//! 16-byte load that skips L1 (weights are read once per call).
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ void cp_async16(uint4* smem, const uint4* gmem) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr), "l"(gmem));
}
//! Copies `bytes` (0..16) and zero-fills the rest of the 16-byte destination.
__device__ __forceinline__ void cp_async16_zfill(uint4* smem, const void* gmem, int bytes) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p)); }
__device__ __forceinline__ void prefetch_l1(const void* p) { asm volatile("prefetch.global.L1 [%0];\n" ::"l"(p)); }
//! Programmatic dependent launch (sm_90): lets the next kernel in the stream start launching now (it must
//! still wait for this grid before reading its output), and waits until the grids this one depends on
//! have completed and their writes are visible. Both are no-ops for a kernel launched without the attribute.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

//! f(std::integral_constant<int, P>) with P = p clamped into 1 … kMax: a kernel's loop built for the number of
//! planes a warp reads at run time (warp-uniform p), without a run-time branch per plane.
template <int kMax, class F>
__device__ __forceinline__ void with_planes_up_to(int p, F&& f) {
  if constexpr (kMax > 1) {
    if (p < kMax) {
      with_planes_up_to<kMax - 1>(p, f);
      return;
    }
  }
  f(std::integral_constant<int, kMax>{});
}

//! Whether the register-dequantizing kernel gives the planes to the tensor cores as they are instead of
//! rebuilding Ŵ_p (dqmma_kernel's kSerial): at most one 8-row batch tile per block and p ≤ 4.
__host__ __device__ constexpr bool dq_planes_as_operands(index_t batch_rows, int planes) {
  return batch_rows <= 8 && planes <= 4;
}
//! Pipeline depth (chunks in flight per warp) for a kernel reading up to kPlanes planes.
__host__ __device__ constexpr int stages_for(int planes) { return planes <= 2 ? 6 : planes <= 4 ? 4 : 2; }
//! Blocks per multiprocessor the register-dequantizing kernel is built for (≤ 128 registers; its ring
//! takes stages_for(planes) chunks per warp). Three blocks with a shallower ring measured slower.
constexpr int kDqBlocksPerSm = 2;
//! 16-byte pieces that cover a 16-row run of scales at any 2-byte offset.
template <class Scale>
__host__ __device__ constexpr int scale_window() { return (16 * int(sizeof(Scale)) + 15) / 16 + 1; }
//! 16-byte pieces per ring stage: planes (32 per plane) and up to 4 groups × (p + 1) scale windows.
template <class Scale>
__host__ __device__ constexpr int stage_u4(int planes) { return planes * 32 + 4 * (planes + 1) * scale_window<Scale>(); }

//! (a & b) | c in one LOP3.
__device__ __forceinline__ std::uint32_t and_or(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
  std::uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
//! A value the compiler must keep in a register (not fold into an immediate).
__device__ __forceinline__ std::uint32_t opaque(std::uint32_t v) {
  asm volatile("mov.b32 %0, %0;\n" : "+r"(v));
  return v;
}

__device__ __forceinline__ std::uint32_t component(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

//! Word of bits shifted so that step s's bits sit at positions kPos..kPos+3 (and +16).
template <int kPos>
__device__ __forceinline__ std::uint32_t align_step(std::uint32_t w, int s) {
  const int sh = kPos - 4 * s;
  return sh >= 0 ? (w << sh) : (w >> (-sh));
}

//! Uniform-precision scales of one 16-row tile: entry (grp, b) is the 16-row run of α^p_b (b < p) or
//! β^p (b == p) starting at row 16·rt.
template <class Scale>
struct TileScaleRuns {
  const Scale* a_run0;
  const Scale* b_run0;
  const Scale* a_end;
  const Scale* b_end;
  int bits, M;
  bool aligned;  //!< every run starts on 16 bytes and lies inside its table (FusedParams::aligned_scales)
  __device__ __forceinline__ TileScaleRuns(const FusedParams<Scale>& prm, index_t rt, int p)
      : bits(p), M(int(prm.M)), aligned(prm.aligned_scales) {
    const int pu = max(p, 1);
    a_run0 = prm.alpha + prm.scales.alpha_base(pu) + rt * 16;
    b_run0 = prm.beta ? prm.beta + prm.scales.beta_base(pu) + rt * 16 : prm.alpha;
    a_end = prm.alpha + prm.scales.alpha_size();
    b_end = prm.beta ? prm.beta + prm.scales.beta_size() : prm.alpha;
  }
  __device__ __forceinline__ const Scale* run(int grp, int b) const {
    return b < bits ? a_run0 + (grp * bits + b) * M : b_run0 + grp * M;
  }
  __device__ __forceinline__ const Scale* end(int b) const { return b < bits ? a_end : b_end; }
};

//! Issues cp.async copies of the 16-byte windows covering entries (grp0 + u, b), u < ng, b < nb, of a
//! tile's scale runs into `dst` (entry (u, b) at dst + (u·(kPlanes + 1) + b)·kWin); groups past G and
//! bytes past the end of a table become zeros. `any` is any valid global address (source of 0-byte copies).
//! Aligned runs (runs.aligned) take one cp.async per 16-byte piece of a run, into the first pieces of
//! the same windows, with no bounds arithmetic.
template <int kPlanes, class Scale>
__device__ __forceinline__ void copy_scale_windows(uint4* dst, const TileScaleRuns<Scale>& runs, int grp0, int ng, int nb,
                                                   int G, const void* any, int lane) {
  constexpr int kWin = scale_window<Scale>();
  if (runs.aligned) {
    constexpr int kRun = int(sizeof(Scale));  // 16-byte pieces per 16-row run
    constexpr int kPerGroup = (kPlanes + 1) * kRun;
    for (int L = lane; L < ng * kPerGroup; L += 32) {
      const int u = L / kPerGroup, rem = L - u * kPerGroup;
      const int b = rem / kRun, j = rem - b * kRun;
      const bool ok = grp0 + u < G && b < nb;
      const void* src = ok ? static_cast<const void*>(reinterpret_cast<const uint4*>(runs.run(grp0 + u, b)) + j) : any;
      cp_async16_zfill(dst + (u * (kPlanes + 1) + b) * kWin + j, src, ok ? 16 : 0);
    }
    return;
  }
  for (int L = lane; L < nb * kWin; L += 32) {
    const int b = L / kWin, j = L % kWin;
    const Scale* end = runs.end(b);
    for (int u = 0; u < ng; ++u) {
      uint4* d = dst + (u * (kPlanes + 1) + b) * kWin + j;
      const int grp = grp0 + u;
      const char* src = static_cast<const char*>(any);
      int bytes = 0;
      if (grp < G) {
        src = reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(runs.run(grp, b)) & ~std::uintptr_t(15)) + 16 * j;
        const std::ptrdiff_t left = reinterpret_cast<const char*>(end) - src;
        bytes = left <= 0 ? 0 : left >= 16 ? 16 : int(left);
      }
      if (bytes == 16 || bytes == 0) {
        cp_async16_zfill(d, src, bytes);
      } else {  // the last piece of the array: copy only what exists (2-byte steps), zero the rest
        std::uint32_t w4[4] = {0u, 0u, 0u, 0u};
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (2 * e < bytes)
            w4[e >> 1] |= std::uint32_t(__ldg(reinterpret_cast<const unsigned short*>(src) + e)) << (16 * (e & 1));
        *d = make_uint4(w4[0], w4[1], w4[2], w4[3]);
      }
    }
  }
}

//! Entry (grp0 + u, b) for rows g and g + 8 of the tile, from windows copied by copy_scale_windows.
template <int kPlanes, class Scale>
__device__ __forceinline__ float2 window_scales(const uint4* src, const TileScaleRuns<Scale>& runs, int u, int grp, int b,
                                                int g) {
  constexpr int kWin = scale_window<Scale>();
  const int off = int(reinterpret_cast<std::uintptr_t>(runs.run(grp, b)) & 15u);
  const Scale* sp = reinterpret_cast<const Scale*>(reinterpret_cast<const char*>(src + (u * (kPlanes + 1) + b) * kWin) + off);
  return make_float2(scale_to_float(sp[g]), scale_to_float(sp[g + 8]));
}

//! Entry (grp0 + u, b) for rows g and g + 8 from windows of aligned runs (runs.aligned: each run starts its window).
template <int kPlanes, class Scale>
__device__ __forceinline__ float2 aligned_window_scales(const uint4* src, int u, int b, int g) {
  const Scale* sp = reinterpret_cast<const Scale*>(src + (u * (kPlanes + 1) + b) * scale_window<Scale>());
  return make_float2(scale_to_float(sp[g]), scale_to_float(sp[g + 8]));
}

//! Per-row precision: the 16-row scale runs (α^p_i for i < p, then β^p) of every precision p that a
//! tile's rows ask for (bit p of pmask), copied per chunk into a ring slot's scale area, entry
//! u·R + off(p) + i for group u of the chunk (R = off(p_top + 1)). Needs aligned scale tables and
//! row_scale_pieces() ≤ the scale area of a stage (row_scales_fit).
__host__ __device__ constexpr int row_scale_off(int p_lo, int nbp, int p) { return (p * (p - 1) - p_lo * (p_lo - 1)) / 2 + (p - p_lo) * nbp; }
template <class Scale>
__host__ __device__ constexpr int row_scale_pieces(int p_lo, int p_top, bool beta, int ng) {
  return ng * row_scale_off(p_lo, beta ? 1 : 0, p_top + 1) * int(sizeof(Scale));
}
template <class Scale>
__host__ __device__ constexpr bool row_scales_fit(int p_lo, int p_top, bool beta, int ng) {
  return row_scale_pieces<Scale>(p_lo, p_top, beta, ng) <= 4 * (p_top + 1) * scale_window<Scale>();
}
//! One 16-byte piece of a group's copied scale runs (RowScaleRuns::fill): its source at scale group 0 and
//! row 0 (elements from prm.alpha, or prm.beta when the kBeta bit of info is set), the elements from one
//! group's piece to the next, and in info its index in a group's area (bits 0–15) and its precision
//! (bits 16–23).
struct RowScalePiece {
  long long base;
  int stride, info;
  static constexpr int kBeta = 1 << 24;
};
//! Pieces a kernel's table of them holds: every per-row mode takes p_max ≤ 4, so at most 14 runs of 4 pieces.
constexpr int kRowScalePieces = 64;

template <class Scale>
struct RowScaleRuns {
  static constexpr int kRun = int(sizeof(Scale));  // 16-byte pieces per 16-row run
  int p_lo, nbp, R, ng, pmask;
  __device__ __forceinline__ RowScaleRuns(const FusedParams<Scale>& prm, int p_top, int ng_, int pmask_)
      : p_lo(prm.scales.p_min), nbp(prm.beta ? 1 : 0), R(row_scale_off(prm.scales.p_min, prm.beta ? 1 : 0, p_top + 1)),
        ng(ng_), pmask(pmask_) {}
  __device__ __forceinline__ int off(int p) const { return row_scale_off(p_lo, nbp, p); }
  //! The pieces of a group's runs of every precision p_lo … p_top, once per block (all its threads; the
  //! caller synchronizes before copy_pieces reads it): R·kRun ≤ kRowScalePieces entries.
  __device__ __forceinline__ void fill(RowScalePiece* tab, const FusedParams<Scale>& prm) const {
    constexpr int kPer = 16 / int(sizeof(Scale));  // elements per piece
    for (int L = int(threadIdx.x); L < R * kRun; L += int(blockDim.x)) {
      const int e = L / kRun, j = L % kRun;
      int p = p_lo;
      while (e >= off(p + 1)) ++p;
      const int i = e - off(p);
      RowScalePiece d;
      d.info = L | (p << 16) | (i < p ? 0 : RowScalePiece::kBeta);
      d.base = (i < p ? prm.scales.alpha_offset(p, 0, i, 0) : prm.scales.beta_offset(p, 0, 0)) + j * kPer;
      d.stride = int(i < p ? index_t(p) * prm.M : prm.M);
      tab[L] = d;
    }
  }
  //! cp.async copies of tile rt's runs for the chunk whose first group is grp0 (precisions not in pmask are
  //! skipped; groups past G become zeros), from the table of fill(): per piece one 16-byte shared-memory
  //! load and a cp.async per group. (Finding each piece's group and precision per chunk instead took 13–20%
  //! of the per-row kernels' instructions; keeping the lanes' piece sources in registers spilled.)
  __device__ __forceinline__ void copy_pieces(uint4* dst, const RowScalePiece* tab, const FusedParams<Scale>& prm,
                                              index_t rt, int grp0, int G, int lane) const {
    const int RK = R * kRun;
    for (int L = lane; L < RK; L += 32) {
      const RowScalePiece d = tab[L];
      if (!((pmask >> ((d.info >> 16) & 0xFF)) & 1)) continue;
      const Scale* src = ((d.info & RowScalePiece::kBeta) ? prm.beta : prm.alpha) + (d.base + rt * 16 + index_t(grp0) * d.stride);
      uint4* to = dst + (d.info & 0xFFFF);
      for (int u = 0; u < ng; ++u, src += d.stride, to += RK) {
        const bool ok = grp0 + u < G;
        cp_async16_zfill(to, ok ? static_cast<const void*>(src) : prm.alpha, ok ? 16 : 0);
      }
    }
  }
  //! Entry e = off(p) + i (α_i of precision p, or β for i = p) of group u, rows g and g + 8, from the copied
  //! area (callers keep off(p) of their rows' precisions).
  __device__ __forceinline__ float2 get_at(const uint4* src, int u, int e, int g) const {
    return pair(entries(src, u, e), 0, g);
  }
  //! Entry e of group u and those after it: pair(entries(src, u, off(p)), i, g) = get_at(src, u, off(p) + i, g).
  __device__ __forceinline__ const Scale* entries(const uint4* src, int u, int e) const {
    return reinterpret_cast<const Scale*>(src + (u * R + e) * kRun);
  }
  __device__ __forceinline__ static float2 pair(const Scale* sp, int i, int g) {
    return make_float2(scale_to_float(sp[16 * i + g]), scale_to_float(sp[16 * i + g + 8]));
  }
};

//! Per-row precision: whether a call serves rows that ask for precision p: the weights have it (p_min … p_max)
//! and the call's mask (Arguments::row_bits_mask; 0: any) holds it. The splits (host and device) and the
//! per-row kernels all decide by this. (The shift only for p in the weights' range.)
__host__ __device__ constexpr bool serves_precision(int p, int p_min, int p_max, unsigned mask) {
  return p >= p_min && p <= p_max && (mask == 0 || ((mask >> p) & 1u));
}
//! Bit p set for each precision p = lo … hi (0 when hi < lo): the precisions a weight object has, as a mask.
__host__ __device__ constexpr unsigned precision_bits(int lo, int hi) { return hi < lo ? 0u : (2u << hi) - (1u << lo); }
//! Per-row precision: p where the call serves it and a kernel built for kPlanes planes can fold it, else 0
//! (such rows' outputs are NaN).
template <int kPlanes, class Scale>
__device__ __forceinline__ int valid_precision(const FusedParams<Scale>& prm, int p) {
  return p <= kPlanes && serves_precision(p, prm.scales.p_min, prm.scales.p_max, prm.row_mask) ? p : 0;
}
//! Per-row precision with a row_mask: the precisions a kernel built for kPlanes planes may fold (bit p), and
//! the highest of them (0 if none), known before any row is read.
template <int kPlanes, class Scale>
__device__ __forceinline__ int hinted_precisions(const FusedParams<Scale>& prm, int& p_hi) {
  const int m = int(prm.row_mask & precision_bits(prm.scales.p_min, min(kPlanes, prm.scales.p_max)));
  p_hi = m ? 31 - __clz(m) : 0;
  return m;
}
//! The precisions of the 8 rows n0, …, n0 + 7 over a warp (rows from n0 + count on, or past the batch,
//! count as 0): lane l holds row n0 + (l mod 8)'s (pl), p_hi the highest, pmask bit p for each p present.
//! row_bits may be the previous kernel's output, so this waits for it first.
struct TileRowBits {
  int pl, p_hi, pmask;
};
template <int kPlanes, class Scale>
__device__ __forceinline__ TileRowBits tile_row_bits(const FusedParams<Scale>& prm, index_t n0, int count, int lane) {
  pdl_wait();
  const int i = lane & 7;
  const int pl = i < count && n0 + i < prm.batch ? valid_precision<kPlanes>(prm, __ldg(prm.row_bits + n0 + i)) : 0;
  return {pl, warp_all_reduce(pl, [](int u, int v) { return max(u, v); }),
          warp_all_reduce(pl ? 1 << pl : 0, [](int u, int v) { return u | v; })};
}

//! Loads α^p_i (i < p, zero above) and β^p for group grp, row m; zeros for rows past M.
template <int kPlanes, class Scale>
__device__ __forceinline__ void load_scales(const FusedParams<Scale>& prm, int p, index_t grp, index_t m,
                                            float (&a)[kPlanes], float& b) {
  const bool ok = m < prm.M && p >= 1;
#pragma unroll
  for (int i = 0; i < kPlanes; ++i) a[i] = 0.0f;
  b = 0.0f;
  if (!ok) return;
  const Scale* ap = prm.alpha + prm.scales.alpha_base(p) + grp * p * prm.M + m;
#pragma unroll
  for (int i = 0; i < kPlanes; ++i)
    if (i < p) a[i] = scale_to_float(ap[index_t(i) * prm.M]);
  if (prm.beta) b = scale_to_float(prm.beta[prm.scales.beta_base(p) + grp * prm.M + m]);
}

//! Decode constants of OperandBits<E> for operand register r (its two bit positions, and c_r in both
//! halves), kept in registers so that each operand register costs one 3-input LOP3.
template <class E>
__device__ __forceinline__ void decode_constants(std::uint32_t (&dmask)[4], std::uint32_t (&dbase)[4]) {
  using Bits = OperandBits<E>;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    dmask[r] = opaque((1u << (Bits::kPos + r)) | (1u << (Bits::kPos + r + 16)));
    dbase[r] = opaque(Bits::base(r));
  }
}

//! Scale group of column k: a shift for g = 64, 128, a division otherwise (unclamped).
template <class Scale>
__device__ __forceinline__ int group_of_column(const FusedParams<Scale>& prm, int k) {
  return prm.fold_blocks == 1 ? k >> 6 : prm.fold_blocks == 2 ? k >> 7 : k / int(prm.group);
}

//! The activation rows a lane feeds to the B operand: row n_base + 8·nt + g, columns 16t … 16t + 15 of
//! each 64-column block; rows from n_rows on and columns past K read as zeros. With `index`, row n is row
//! index[n] of x (precision split).
template <class Element, int NT>
struct ActivationRows {
  const uint4* row[NT];
  bool ok[NT];
  int t, K;
  template <class Scale>
  __device__ __forceinline__ ActivationRows(const FusedParams<Scale>& prm, index_t n_base, int g, int t_)
      : ActivationRows(prm, n_base, g, t_, prm.batch, nullptr) {}
  template <class Scale>
  __device__ __forceinline__ ActivationRows(const FusedParams<Scale>& prm, index_t n_base, int g, int t_, index_t n_rows,
                                            const int* index)
      : t(t_), K(int(prm.K)) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const index_t n = n_base + nt * 8 + g;
      ok[nt] = n < n_rows;
      const index_t r = !ok[nt] ? 0 : index ? index_t(__ldg(index + n)) : n;
      row[nt] = reinterpret_cast<const uint4*>(static_cast<const Element*>(prm.x) + r * prm.K + 16 * t);
    }
  }
  //! Whether row tile nt has data at 64-column block kb for this lane.
  __device__ __forceinline__ bool valid(int nt, int kb) const { return ok[nt] && kb + 16 * t < K; }
  __device__ __forceinline__ const uint4* at(int nt, int kb) const { return row[nt] + (kb >> 3); }
  //! The 16 activations (8 registers) of every row tile at block kb.
  __device__ __forceinline__ void load(int kb, std::uint32_t (&dst)[NT][8]) const {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      if (valid(nt, kb)) {
        const uint4 v0 = __ldg(at(nt, kb)), v1 = __ldg(at(nt, kb) + 1);
        dst[nt][0] = v0.x; dst[nt][1] = v0.y; dst[nt][2] = v0.z; dst[nt][3] = v0.w;
        dst[nt][4] = v1.x; dst[nt][5] = v1.y; dst[nt][6] = v1.z; dst[nt][7] = v1.w;
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) dst[nt][e] = 0u;
      }
    }
  }
};

//! Fused kernel: block = one 16-row tile × NT·8 batch rows; its kWarps warps split the K chunks.
template <class Tuning, class Element, class Scale, int kPlanes, int NT>
__global__ void __launch_bounds__(Tuning::kWarps * 32, NT == 1 ? 2 : 1) fused_gemm_kernel(const FusedParams<Scale> prm) {
  constexpr int W = Tuning::kWarps;
  using Bits = OperandBits<Element>;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const index_t bb = blockIdx.x % prm.batch_blocks;
  const index_t rt = blockIdx.x / prm.batch_blocks;
  const index_t n_base = bb * (NT * 8);
  const bool mixed = prm.row_bits != nullptr;

  // Precision of each batch column this thread accumulates (C fragment columns 2t, 2t+1), and the
  // highest precision any row of this block asks for (planes above it are not read).
  int pc[NT][2];
  int p_hi = 0;
  bool bad_bits = false;  // a row asked for a precision the weights do not have: its outputs are NaN
  if (mixed) {
    for (int i = 0; i < NT * 8; ++i) {
      const index_t n = n_base + i;
      if (n < prm.batch) p_hi = max(p_hi, valid_precision<kPlanes>(prm, __ldg(prm.row_bits + n)));
    }
  } else {
    p_hi = prm.bits;
  }
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const index_t n = n_base + nt * 8 + 2 * t + j;
      int p = 0;
      if (n < prm.batch) {
        p = valid_precision<kPlanes>(prm, mixed ? __ldg(prm.row_bits + n) : prm.bits);
        bad_bits = bad_bits || p == 0;
      }
      pc[nt][j] = p;
    }

  std::uint32_t dmask[4], dbase[4];
  decode_constants<Element>(dmask, dbase);
  // Constant operands of the correction mma: row 0 → E (c + ½ per register), row 1 → S (ones).
  std::uint32_t acorr[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) acorr[r] = g == 0 ? Bits::half_plus(r) : g == 1 ? Bits::kOne : 0u;

  // kCh independent accumulator chains per plane (mma steps s go to chain s mod kCh), so that
  // back-to-back mma do not wait on each other's results.
  constexpr int kCh = NT == 1 ? (kPlanes <= 2 ? 4 : kPlanes <= 4 ? 2 : 1) : (NT == 2 && kPlanes <= 2 ? 2 : 1);
  float yacc[NT][4];
  float acc[kPlanes][kCh][NT][4];
  float corr[kCh][NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      yacc[nt][c] = 0.0f;
#pragma unroll
      for (int h = 0; h < kCh; ++h) {
        corr[h][nt][c] = 0.0f;
#pragma unroll
        for (int b = 0; b < kPlanes; ++b) acc[b][h][nt][c] = 0.0f;
      }
    }

  // All in-loop index math is 32-bit (can_implement bounds M, K ≤ 2^30); 64-bit only in base pointers.
  const int K = int(prm.K), M = int(prm.M), chunks = int(prm.chunks);
  const index_t plane_stride = prm.row_tiles * prm.chunks * 32;  // in uint4
  const uint4* wtile = prm.planes + rt * prm.chunks * 32 + lane;
  const index_t m_lo = rt * 16 + g, m_hi = m_lo + 8;
  const ActivationRows<Element, NT> xr(prm, n_base, g, t);

  // Per-warp ring of kStages chunks in shared memory, filled with cp.async: per stage the chunk's planes
  // (each lane copies and later reads only its own 16 bytes per plane) and, for a uniform precision,
  // the chunk's scales (16-byte windows around each 16-row run of α^p and β^p, read by all lanes
  // after a __syncwarp).
  constexpr int kStages = stages_for(kPlanes);
  constexpr int kStageU4 = stage_u4<Scale>(kPlanes);
  extern __shared__ uint4 ring_all[];
  uint4* ring = ring_all + warp * (kStages * kStageU4);
  const int n_my = warp < chunks ? (chunks - warp + W - 1) / W : 0;
  const int fold_shift = prm.fold_shift();
  const int ng = 4 >> fold_shift;  // groups per chunk for g = 64, 128; one otherwise
  const int nb = prm.bits + (prm.beta ? 1 : 0);
  const int G = int(prm.scales.groups);
  auto group_of = [&](int k) { return group_of_column(prm, k); };
  const TileScaleRuns<Scale> runs(prm, rt, prm.bits);
  auto issue = [&](int i) {
    if (i < n_my) {
      const int cc = warp + i * W;
      uint4* slot = ring + (i % kStages) * kStageU4;
#pragma unroll
      for (int b = 0; b < kPlanes; ++b)
        if (b < p_hi) cp_async16(slot + b * 32 + lane, wtile + b * plane_stride + cc * 32);
      if (!mixed) copy_scale_windows<kPlanes>(slot + kPlanes * 32, runs, group_of(cc * 256), ng, nb, G, prm.planes, lane);
    }
    cp_async_commit();
  };
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) issue(i);

  auto load_x = [&](int kb, std::uint32_t(&dst)[NT][8]) { xr.load(kb, dst); };
  std::uint32_t xnext[NT][8];
  load_x(n_my > 0 ? warp * 256 : K, xnext);

  for (int i = 0; i < n_my; ++i) {
    const int c = warp + i * W;
    const int nblk = min(4, (K - c * 256 + 63) >> 6);  // valid 64-column blocks in this chunk
    cp_async_wait<kStages - 2>();
    __syncwarp();
    const uint4* slot = ring + (i % kStages) * kStageU4;
    uint4 q[kPlanes];
#pragma unroll
    for (int b = 0; b < kPlanes; ++b) q[b] = b < p_hi ? slot[b * 32 + lane] : make_uint4(0, 0, 0, 0);

#pragma unroll
    for (int B = 0; B < 4; ++B) {
      if (B >= nblk) break;
      const int kb = c * 256 + B * 64;
      // Activations of this block were loaded one block ahead; fetch the next block's now.
      std::uint32_t xb[NT][8];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 8; ++e) xb[nt][e] = xnext[nt][e];
      load_x(B + 1 < nblk ? kb + 64 : (i + 1 < n_my ? (c + W) * 256 : K), xnext);
#pragma unroll
      for (int s = 0; s < 4; ++s) {
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma16816<Element>(corr[s % kCh][nt], acorr, xb[nt][2 * s], xb[nt][2 * s + 1]);
#pragma unroll
        for (int b = 0; b < kPlanes; ++b) {
          if (b < p_hi) {
            const std::uint32_t w = align_step<Bits::kPos>(component(q[b], B), s);
            std::uint32_t a[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) a[r] = and_or(w, dmask[r], dbase[r]);
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
              mma16816<Element>(acc[b][s % kCh][nt], a, xb[nt][2 * s], xb[nt][2 * s + 1]);
          }
        }
      }
      // Fold the scales at the end of a group (or of a chunk, or of K).
      if (((B + 1) & (prm.fold_blocks - 1)) == 0 || B + 1 == nblk) {
        // Uniform precision: this group's scales from the ring (entry (u, b) holds the 16-row run at
        // its address mod 16).
        float ua_lo[kPlanes], ua_hi[kPlanes], ub_lo = 0.0f, ub_hi = 0.0f, us_lo = 0.0f, us_hi = 0.0f;
#pragma unroll
        for (int b = 0; b < kPlanes; ++b) ua_lo[b] = ua_hi[b] = 0.0f;
        if (!mixed) {
          const int u = B >> fold_shift;
          const int grp = group_of(c * 256) + u;
#pragma unroll
          for (int b = 0; b <= kPlanes; ++b) {
            if (b < nb) {
              const float2 v = window_scales<kPlanes>(slot + kPlanes * 32, runs, u, grp, b, g);
              const float lo = v.x, hi = v.y;
              if (b < prm.bits) {
                if (b < kPlanes) {
                  ua_lo[b < kPlanes ? b : 0] = lo;
                  ua_hi[b < kPlanes ? b : 0] = hi;
                }
                us_lo += lo;
                us_hi += hi;
              } else {
                ub_lo = lo;
                ub_hi = hi;
              }
            }
          }
        }
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          // Merge the chains (fixed order: deterministic).
#pragma unroll
          for (int h = 1; h < kCh; ++h)
#pragma unroll
            for (int cc = 0; cc < 4; ++cc) {
              corr[0][nt][cc] += corr[h][nt][cc];
#pragma unroll
              for (int b = 0; b < kPlanes; ++b) acc[b][0][nt][cc] += acc[b][h][nt][cc];
            }
          float E[2][2], S[2];
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            E[0][j] = __shfl_sync(0xffffffffu, corr[0][nt][j], t);
            E[1][j] = __shfl_sync(0xffffffffu, corr[0][nt][2 + j], t);
            S[j] = __shfl_sync(0xffffffffu, corr[0][nt][j], 4 + t);
          }
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const int p = pc[nt][j];
            if (p == 0) continue;
            float vlo = 0.0f, vhi = 0.0f;
            if (!mixed) {
#pragma unroll
              for (int b = 0; b < kPlanes; ++b) {
                vlo = fmaf(ua_lo[b], acc[b][0][nt][j], vlo);
                vhi = fmaf(ua_hi[b], acc[b][0][nt][2 + j], vhi);
              }
              yacc[nt][j] += 2.0f * fmaf(-us_lo, E[0][j], vlo) + ub_lo * S[j];
              yacc[nt][2 + j] += 2.0f * fmaf(-us_hi, E[1][j], vhi) + ub_hi * S[j];
            } else {
              const index_t grp = kb / int(prm.group);
              float alo[kPlanes], ahi[kPlanes], blo, bhi, slo = 0.0f, shi = 0.0f;
              load_scales(prm, p, grp, m_lo, alo, blo);
              load_scales(prm, p, grp, m_hi, ahi, bhi);
#pragma unroll
              for (int b = 0; b < kPlanes; ++b) {
                vlo = fmaf(alo[b], acc[b][0][nt][j], vlo);
                vhi = fmaf(ahi[b], acc[b][0][nt][2 + j], vhi);
                slo += alo[b];
                shi += ahi[b];
              }
              yacc[nt][j] += 2.0f * fmaf(-slo, E[0][j], vlo) + blo * S[j];
              yacc[nt][2 + j] += 2.0f * fmaf(-shi, E[1][j], vhi) + bhi * S[j];
            }
          }
#pragma unroll
          for (int cc = 0; cc < 4; ++cc)
#pragma unroll
            for (int h = 0; h < kCh; ++h) {
              corr[h][nt][cc] = 0.0f;
#pragma unroll
              for (int b = 0; b < kPlanes; ++b) acc[b][h][nt][cc] = 0.0f;
            }
        }
      }
    }
    __syncwarp();
    issue(i + kStages - 1);  // refills the slot read in the previous iteration
  }
  cp_async_wait<0>();

  // Split-K reduction over the warps, in warp order (deterministic).
  __shared__ float red[W][NT * 4][32];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int cc = 0; cc < 4; ++cc) red[warp][nt * 4 + cc][lane] = yacc[nt][cc];
  // Threads whose own columns carry invalid precisions mark them in shared memory too.
  __shared__ int bad[NT * 8];
  if (threadIdx.x < NT * 8) bad[threadIdx.x] = 0;
  __syncthreads();
  if (bad_bits && warp == 0) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const index_t n = n_base + nt * 8 + 2 * t + j;
        if (n < prm.batch && pc[nt][j] == 0) bad[nt * 8 + 2 * t + j] = 1;
      }
  }
  __syncthreads();
  Element* y = static_cast<Element*>(prm.y);
  for (int idx = threadIdx.x; idx < NT * 4 * 32; idx += W * 32) {
    const int v = idx >> 5, l = idx & 31;
    const int nt = v >> 2, cc = v & 3;
    const int gg = l >> 2, tt = l & 3;
    const index_t m = rt * 16 + gg + 8 * (cc >> 1);
    const int nl = nt * 8 + 2 * tt + (cc & 1);
    const index_t n = n_base + nl;
    if (m < prm.M && n < prm.batch) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < W; ++w) sum += red[w][v][l];
      if (bad[nl]) sum = __int_as_float(0x7fc00000);
      y[n * prm.M + m] = from_f32<Element>(sum);
    }
  }
}

//! d = a − b on two 16-bit floats of type E (exact here: a = c + b with c and b representable).
template <class E>
__device__ __forceinline__ std::uint32_t sub2(std::uint32_t a, std::uint32_t b) {
  std::uint32_t d;
  if constexpr (std::is_same_v<E, __half>)
    asm("sub.rn.f16x2 %0, %1, %2;\n" : "=r"(d) : "r"(a), "r"(b));
  else
    asm("sub.rn.bf16x2 %0, %1, %2;\n" : "=r"(d) : "r"(a), "r"(b));
  return d;
}
//! d = a·b + c on two 16-bit floats of type E (one rounding).
template <class E>
__device__ __forceinline__ std::uint32_t fma2(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
  std::uint32_t d;
  if constexpr (std::is_same_v<E, __half>)
    asm("fma.rn.f16x2 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  else
    asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

//! Scales of one group for the two rows (g, g + 8) a lane dequantizes: α_i and β as floats.
template <int kPlanes>
struct GroupScales {
  float a[kPlanes][2];
  float b[2];
};

//! α^kPlanes_i and β^kPlanes of group grp for rows m[0], m[1] (rows already clamped into 0..M−1), from
//! the level's table bases (load_scales does the same per row with bounds checks; this form keeps the
//! dequantize kernel at fewer registers, measured faster).
template <int kPlanes, class Scale>
__device__ __forceinline__ void load_group(const FusedParams<Scale>& prm, const Scale* abase, const Scale* bbase,
                                           int grp, const int (&m)[2], GroupScales<kPlanes>& s) {
  const int M = int(prm.M);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int i = 0; i < kPlanes; ++i) s.a[i][h] = scale_to_float(abase[index_t(grp * kPlanes + i) * M + m[h]]);
    s.b[h] = bbase ? scale_to_float(bbase[index_t(grp) * M + m[h]]) : 0.0f;
  }
}

//! The plane bit alone at exponent bit 13 (row g) or 14 (row g + 8) of a 16-bit float is 2^-7 or 2
//! (fp16), 2^-63 or 2 (bf16); mul(h)·α is the FMA multiplier that turns it into 2α. Row g's multiplier
//! (α·2^8, α·2^64) stays finite for |α| < kAlphaLimit; weights beyond it (or of unknown range) take
//! dequant_step_wide.
template <class E>
struct ExpDecode;
template <>
struct ExpDecode<__half> {
  static constexpr float kAlphaLimit = 255.9375f;  // α·2^8 rounds to a finite fp16 below 65520
  __device__ static constexpr float mul(int h) { return h == 0 ? 256.0f : 1.0f; }
};
template <>
struct ExpDecode<__nv_bfloat16> {
  static constexpr float kAlphaLimit = 9223372036854775808.0f;  // 2^63
  __device__ static constexpr float mul(int h) { return h == 0 ? 18446744073709551616.0f : 1.0f; }  // 2^64, 1
};

//! Dequantization constants of one group in element type E, both halves equal: per plane the multiplier
//! that turns the decoded bit into 2α_i·b_i (ExpDecode; 2α_i for dequant_step_wide) and β − Σα_i per
//! row, so that ŵ = (β − Σα_i) + Σ 2α_i·b_i with b_i ∈ {0, 1}.
template <class Element, int kPlanes, bool kWide = false>
struct DequantConsts {
  std::uint32_t a2[kPlanes][2];
  std::uint32_t b2[2];
  DequantConsts() = default;
  __device__ __forceinline__ explicit DequantConsts(const GroupScales<kPlanes>& s) { set(s); }
  __device__ __forceinline__ void set(const GroupScales<kPlanes>& s) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kPlanes; ++i) {
        const float m = (kWide ? 2.0f : ExpDecode<Element>::mul(h)) * s.a[i][h];
        a2[i][h] = pack2<Element>(m, m);
        sum += s.a[i][h];
      }
      b2[h] = pack2<Element>(s.b[h] - sum, s.b[h] - sum);
    }
  }
};

//! Dequantization constants of group grp (entry u of a ring slot's scale windows) for rows g, g + 8.
template <class Element, int kPlanes, class Scale>
__device__ __forceinline__ void window_consts(const uint4* windows, const TileScaleRuns<Scale>& runs, int u, int grp,
                                              int g, bool has_beta, DequantConsts<Element, kPlanes>& dc) {
  GroupScales<kPlanes> sc;
#pragma unroll
  for (int b = 0; b < kPlanes; ++b) {
    const float2 v = window_scales<kPlanes>(windows, runs, u, grp, b, g);
    sc.a[b][0] = v.x;
    sc.a[b][1] = v.y;
  }
  if (has_beta) {
    const float2 v = window_scales<kPlanes>(windows, runs, u, grp, kPlanes, g);
    sc.b[0] = v.x;
    sc.b[1] = v.y;
  } else {
    sc.b[0] = sc.b[1] = 0.0f;
  }
  dc.set(sc);
}

//! The A operand registers of mma step s of one 64-column word: Ŵ_p for rows g, g + 8 (register r
//! holds row g + 8·(r mod 2)), rebuilt from kPlanes plane words in element arithmetic. Per plane two
//! shifts (registers 0, 1 and 2, 3) bring the step's bits to exponent bits 13 (row g) and 14 (row g + 8)
//! of each half; per register one AND keeps that bit alone (an exact power of two, see ExpDecode, or
//! zero) and one FMA adds it times the row's multiplier: 2α_i·b_i, exact.
template <class Element, int kPlanes>
__device__ __forceinline__ void dequant_step(const std::uint32_t (&words)[kPlanes], int s,
                                             const DequantConsts<Element, kPlanes>& dc, std::uint32_t (&a)[4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) a[r] = dc.b2[r & 1];
#pragma unroll
  for (int b = 0; b < kPlanes; ++b) {
    const std::uint32_t lo = align_step<13>(words[b], s), hi = align_step<11>(words[b], s);
    a[0] = fma2<Element>(lo & 0x20002000u, dc.a2[b][0], a[0]);
    a[1] = fma2<Element>(lo & 0x40004000u, dc.a2[b][1], a[1]);
    a[2] = fma2<Element>(hi & 0x20002000u, dc.a2[b][0], a[2]);
    a[3] = fma2<Element>(hi & 0x40004000u, dc.a2[b][1], a[3]);
  }
}

//! dequant_step for any α (dequantize_kernel where the weights' α may exceed ExpDecode::kAlphaLimit):
//! per register and plane one LOP3 (bit → c_r + b, OperandBits), one exact subtraction (→ b) and one FMA
//! with 2α_i; the same results wherever both apply.
template <class Element, int kPlanes>
__device__ __forceinline__ void dequant_step_wide(const std::uint32_t (&words)[kPlanes], int s,
                                                  const DequantConsts<Element, kPlanes, true>& dc,
                                                  const std::uint32_t (&dmask)[4], const std::uint32_t (&dbase)[4],
                                                  std::uint32_t (&a)[4]) {
  using Bits = OperandBits<Element>;
#pragma unroll
  for (int r = 0; r < 4; ++r) a[r] = dc.b2[r & 1];
#pragma unroll
  for (int b = 0; b < kPlanes; ++b) {
    const std::uint32_t w = align_step<Bits::kPos>(words[b], s);
#pragma unroll
    for (int r = 0; r < 4; ++r) a[r] = fma2<Element>(sub2<Element>(and_or(w, dmask[r], dbase[r]), dbase[r]), dc.a2[b][r & 1], a[r]);
  }
}

//! Register-dequantizing tensor-core kernel (uniform precision kPlanes, batch tile NT·8 rows).
//! A block of Tuning::kDqWarps warps holds prm.tm row tiles × prm.ks K slices (tm·ks = kDqWarps): warp
//! (wm, wk) takes row tile blockIdx·tm + wm and the chunks wk, wk + ks, …, streams each chunk's planes
//! and scales (aligned runs, or windows around them) through a per-warp cp.async ring in shared memory,
//! rebuilds Ŵ_p of each 16×16 step in registers (element type, exact 0/1 planes, one rounding per FMA)
//! and runs one m16n8k16 mma per 8 batch rows with fp32 accumulation. Activations are loaded two
//! 64-column words ahead (NT ≤ 2); whole chunks use them in place without per-word checks. The ks
//! partial sums of a row tile are added in shared memory in slice order (deterministic, no atomics);
//! every output is written once. With programmatic dependent launch, the first ring stages are requested
//! before the wait for the previous kernel, activations and outputs touched after it.
//! kSerial (one 8-row batch tile, p ≤ 4): instead of rebuilding Ŵ_p, each plane goes to the tensor cores
//! as it is, one LOP3 per register (c_r + b, exact; c_r = OperandBits::base(r)), with one mma per plane
//! into that plane's fp32 sums C_i and one more mma with constant operands for the sums L and H of the
//! activations over the low and high 8 columns of each step (rows g: L, rows g + 8: H). At the end of
//! each scale group, y += Σ_i 2α_i·C_i + (β − Σα − 2c_lo·Σα)·L + (β − Σα − 2c_hi·Σα)·H, with c_lo, c_hi =
//! 16, 4 for rows g and 8, 2 for rows g + 8. At one batch tile the tensor cores have room for p + 1 mma
//! per step, and the FMA pipe, which the dequantization keeps busy, is freed.
//! kRowBits: per-row precision (prm.row_bits; kSerial only): planes up to the highest precision a row of the batch
//! tile asks for are read; each batch column folds the planes below its own p with α^p, β^p, which come
//! through the ring (RowScaleRuns) with aligned scale tables, else from global memory (prefetched into L1
//! one chunk ahead); a row whose precision the weights lack gets NaN.
template <class Tuning, class Element, class Scale, int kPlanes, int NT, bool kRowBits = false, bool kSplit = false>
__global__ void __launch_bounds__(Tuning::kDqWarps * 32, kDqBlocksPerSm) dqmma_kernel(const FusedParams<Scale> prm) {
  constexpr bool kPrefetchX = NT <= 2;
  constexpr bool kSerial = dq_planes_as_operands(NT * 8, kPlanes);
  static_assert(!kRowBits || kSerial, "per-row precision needs the planes-as-operands mode");
  static_assert(!(kRowBits && kSplit), "a precision split launch takes one precision");
  constexpr int kSP = kSerial ? kPlanes : 1;  // planes with their own sums (kSerial)
  constexpr int kStages = stages_for(kPlanes);
  constexpr int kStageU4 = stage_u4<Scale>(kPlanes);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int TM = prm.tm, S = prm.ks;
  const int wm = warp % TM, wk = warp / TM;
  const int bb = int(blockIdx.x % prm.batch_blocks);
  const index_t rt0 = (blockIdx.x / prm.batch_blocks) * TM;
  const index_t rt = rt0 + wm;
  const index_t n_base = index_t(bb) * (NT * 8);
  const int K = int(prm.K), chunks = int(prm.chunks);
  constexpr bool mixed = kRowBits;
  extern __shared__ uint4 smem_dq[];
  uint4* ring = smem_dq + warp * (kStages * kStageU4);
  pdl_launch_dependents();
  // kSplit (precision split): this launch's rows are sorted positions seg[0] + n, n < seg[1], of x and y rows
  // row_index[seg[0] + n]. split_rows_kernel wrote them and does not trigger its dependents, so it has
  // completed before the first kernel of the split starts: they are read before pdl_wait, and blocks past
  // the launch's rows leave before requesting any weights (after the wait, so that the grid's completion
  // still implies its predecessor's).
  index_t n_rows = prm.batch;
  const int* rmap = nullptr;
  if constexpr (kSplit) {
    n_rows = __ldg(prm.seg + 1);
    rmap = prm.row_index + __ldg(prm.seg);
    if (n_base >= n_rows) {
      pdl_wait();
      return;
    }
  }

  // Per-row precision: with aligned scale tables and at most two groups per chunk, the 16-row runs of α^p, β^p
  // of every precision a row of the tile asks for go through the ring (ring_scales; entry u·R + off(p) + b of
  // the slot's scale area for group u, precision p and b < p: α_b, b = p: β), copied from a table of their
  // pieces built once per block (RowScaleRuns::fill); else the folds read them from global memory.
  const bool ring_scales = mixed && prm.aligned_scales &&
                           row_scales_fit<Scale>(prm.scales.p_min, kPlanes, prm.beta != nullptr, 4 >> prm.fold_shift());
  const RowScalePiece* pieces = nullptr;
  if constexpr (mixed) {
    static_assert(row_scale_off(1, 1, kPlanes + 1) * int(sizeof(Scale)) <= kRowScalePieces, "scale-run piece table");
    __shared__ RowScalePiece piece_tab[kRowScalePieces];
    if (ring_scales) {  // (the same in the whole block)
      RowScaleRuns<Scale>(prm, kPlanes, 4 >> prm.fold_shift(), 0).fill(piece_tab, prm);
      pieces = piece_tab;
      __syncthreads();
    }
  }

  // kCh independent accumulator chains (mma step s feeds chain s mod kCh), added in a fixed order.
  constexpr int kCh = NT <= 2 ? 2 : 1;
  float acc[kCh][NT][4];
#pragma unroll
  for (int h = 0; h < kCh; ++h)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[h][nt][c] = 0.0f;

  if (rt < prm.row_tiles) {
    std::uint32_t dmask[4], dbase[4];
    decode_constants<Element>(dmask, dbase);
    // kSerial: per-plane sums C_i and the activation sums L (c = 0, 1) and H (c = 2, 3) of the current group.
    // (One accumulator chain each: a second chain per plane at p ≤ 2 measured 3–6% slower on an H200.)
    float pacc[kSP][4], lh[4];
    auto clear_serial = [&]() {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        lh[c] = 0.0f;
#pragma unroll
        for (int b = 0; b < kSP; ++b) pacc[b][c] = 0.0f;
      }
    };
    clear_serial();
    // Constant A operand of the L/H mma: ones in rows 0–7 × columns 0–7 and rows 8–15 × columns 8–15.
    const std::uint32_t alh[4] = {OperandBits<Element>::kOne, 0u, 0u, OperandBits<Element>::kOne};
    const index_t plane_stride = prm.row_tiles * prm.chunks * 32;  // in uint4
    const uint4* wtile = prm.planes + rt * prm.chunks * 32 + lane;
    const TileScaleRuns<Scale> runs(prm, rt, kPlanes);
    const int fold_shift = prm.fold_shift();
    const int ng = 4 >> fold_shift;  // groups per chunk for g = 64, 128; one otherwise
    const int nb = kPlanes + (prm.beta ? 1 : 0);
    const int G = int(prm.scales.groups);
    auto chunk_group = [&](int c) { return group_of_column(prm, c * 256); };
    const ActivationRows<Element, NT> xr(prm, n_base, g, t, n_rows, rmap);
    auto load_x = [&](int kb, std::uint32_t(&dst)[NT][8]) { xr.load(kb, dst); };

    const int n_my = wk < chunks ? (chunks - wk + S - 1) / S : 0;
    // cp.async copies of planes lo … hi − 1 of this warp's chunk i into its ring slot.
    auto copy_planes = [&](int i, int lo, int hi) {
      if (i < n_my)
#pragma unroll
        for (int b = 0; b < kPlanes; ++b)
          if (b >= lo && b < hi)
            cp_async16(ring + (i % kStages) * kStageU4 + b * 32 + lane, wtile + b * plane_stride + (wk + i * S) * 32);
    };
    // Per-row precision: every row that is folded reads the planes below the weights' p_min, so those of the
    // first ring stages are requested before the wait below (committed with stage 0's copies), the rest after it.
    // With a row_mask (hinted), the first stages' copies of every plane and scale run its precisions need are
    // all requested before the wait.
    int p_hi = kPlanes, pmask = 0;
    const bool hinted = mixed && prm.row_mask != 0;
    if (hinted) pmask = hinted_precisions<kPlanes>(prm, p_hi);
    const int p_early = hinted ? 0 : mixed ? min(prm.scales.p_min, kPlanes) : 0;
    if (mixed && !hinted) {
#pragma unroll
      for (int i = 0; i < kStages - 1; ++i) copy_planes(i, 0, p_early);
    }
    RowScaleRuns<Scale> rsr(prm, kPlanes, ng, pmask);
    const index_t m_lo = rt * 16 + g;

    auto issue = [&](int i) {
      copy_planes(i, i < kStages - 1 ? p_early : 0, p_hi);  // (planes below p_early of the first stages: requested already)
      if (i < n_my) {
        const int cc = wk + i * S;
        uint4* slot = ring + (i % kStages) * kStageU4;
        if (!mixed)
          copy_scale_windows<kPlanes>(slot + kPlanes * 32, runs, min(chunk_group(cc), G - 1), ng, nb, G, prm.planes, lane);
        else if (ring_scales)
          rsr.copy_pieces(slot + kPlanes * 32, pieces, prm, rt, min(chunk_group(cc), G - 1), G, lane);
      }
      cp_async_commit();
    };
    if (hinted || !mixed) {
#pragma unroll
      for (int i = 0; i < kStages - 1; ++i) issue(i);
    }
    // Per-row precision: pc[j] is the precision of this lane's batch column 2t + j (0: past the batch, outside
    // the weights' range or the row_mask: not folded), p_hi the highest of the tile (planes from it on are
    // not read). row_bits may be the previous kernel's output, so this waits first.
    int pc[2] = {0, 0};
    if (mixed) {
      const TileRowBits rb = tile_row_bits<kPlanes>(prm, n_base, 8, lane);
      p_hi = rb.p_hi;  // (hinted: at most the hint's)
      pmask = rb.pmask;
      rsr.pmask = pmask;
      pc[0] = __shfl_sync(0xFFFFFFFFu, rb.pl, 2 * t);
      pc[1] = __shfl_sync(0xFFFFFFFFu, rb.pl, 2 * t + 1);
    }
    // each column's first entry in a group's runs
    const int poff[2] = {rsr.off(max(pc[0], 1)), rsr.off(max(pc[1], 1))};
    if (mixed && !hinted) {
#pragma unroll
      for (int i = 0; i < kStages - 1; ++i) issue(i);
    }
    pdl_wait();  // weights are requested; activations may be the previous kernel's output

    // Activations two 64-column words ahead (NT ≤ 2): at the start of word w, xq[w mod 2] holds word w.
    std::uint32_t xq[2][NT][8];
    if constexpr (kPrefetchX) {
      load_x(n_my > 0 ? wk * 256 : K, xq[0]);
      load_x(n_my > 0 ? wk * 256 + 64 : K, xq[1]);
    }

    // The chunk loop, built for the kHi planes it multiplies: kPlanes, or per-row with the scale runs in the
    // ring (kRing) the tile's p_hi (the same over the warp), one instance per count, so that no plane's mma
    // sits behind a run-time branch. Per-row without the ring keeps one instance with run-time checks.
    auto chunk_loop = [&](auto hi_c, auto ring_c) {
      [[maybe_unused]] constexpr int kHi = decltype(hi_c)::value;
      constexpr bool kRing = decltype(ring_c)::value;
      auto reads = [&](int b) { return b < kHi && (kRing || b < p_hi); };  // plane b is read and multiplied
      for (int i = 0; i < n_my; ++i) {
        const int c = wk + i * S;
        const int nw = min(4, (K - c * 256 + 63) >> 6);  // valid 64-column words in this chunk
        const int grp0 = min(chunk_group(c), G - 1);
        cp_async_wait<kStages - 2>();
        __syncwarp();
        const uint4* slot = ring + (i % kStages) * kStageU4;
        uint4 q[kPlanes];
#pragma unroll
        for (int b = 0; b < kPlanes; ++b) q[b] = reads(b) ? slot[b * 32 + lane] : make_uint4(0u, 0u, 0u, 0u);
        // Pull the next chunk's activations into L1 now, so that the per-word loads below hit L1.
        if (i + 1 < n_my) {
          const int kn = (c + S) * 256;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int w = 0; w < 4; ++w)
              if (xr.valid(nt, kn + 64 * w)) prefetch_l1(xr.at(nt, kn + 64 * w));
          // Per-row precision without the ring: the 16-row α/β runs the next chunk's folds read, spread over
          // the lanes g, into L1.
          if (mixed && !kRing) {
            const int gq = min(chunk_group(c + S), G - 1), nbp = prm.beta ? 2 : 1;
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              const int p = pc[j], items = ng * (p + nbp - 1);
              for (int it = g; it < items; it += 8) {
                const int u = it / (p + nbp - 1), b = it % (p + nbp - 1), grp = min(gq + u, G - 1);
                prefetch_l1(b < p ? prm.alpha + prm.scales.alpha_offset(p, grp, b, rt * 16)
                                  : prm.beta + prm.scales.beta_offset(p, grp, rt * 16));
              }
            }
          }
        }
        // Column of the word that follows word w + 1 (w + 2 here, or in this warp's next chunk).
        auto ahead = [&](int w) { return w + 2 < 4 ? c * 256 + 64 * (w + 2) : (i + 1 < n_my ? (c + S) * 256 + 64 * (w - 2) : K); };
        [[maybe_unused]] DequantConsts<Element, kPlanes> dc;  // (the rebuild only)
        // kSerial, end of a scale group (entry u of the slot's windows): fold C_i, L and H into acc[0].
        auto serial_fold = [&](int u) {
          const int grp = min(grp0 + u, G - 1);
          if (mixed) {  // each column with its own α^p, β^p (zeros past p)
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              if (pc[j] == 0) continue;
              float alo[kPlanes], ahi[kPlanes], blo = 0.0f, bhi = 0.0f, vlo = 0.0f, vhi = 0.0f, slo = 0.0f, shi = 0.0f;
              if (kRing) {  // entries b of precision pc[j]: one address, the planes at fixed offsets from it
                // (opaque: hoisting each column's and group's addresses out of the loop spilled registers)
                const Scale* sp = rsr.entries(slot + kPlanes * 32, u, int(opaque(std::uint32_t(poff[j]))));
#pragma unroll
                for (int b = 0; b < kPlanes; ++b) {
                  const float2 a = b < kHi && b < pc[j] ? rsr.pair(sp, b, g) : make_float2(0.0f, 0.0f);
                  alo[b] = a.x;
                  ahi[b] = a.y;
                }
                if (prm.beta) {
                  const float2 be = rsr.pair(sp, pc[j], g);
                  blo = be.x;
                  bhi = be.y;
                }
              } else {
                load_scales(prm, pc[j], grp, m_lo, alo, blo);
                load_scales(prm, pc[j], grp, m_lo + 8, ahi, bhi);
              }
#pragma unroll
              for (int b = 0; b < kHi; ++b) {
                vlo = fmaf(alo[b], pacc[b][j], vlo);
                vhi = fmaf(ahi[b], pacc[b][2 + j], vhi);
                slo += alo[b];
                shi += ahi[b];
              }
              const float L = lh[j], H = lh[2 + j], o0 = blo - slo, o1 = bhi - shi;
              acc[0][0][j] += fmaf(2.0f, vlo, fmaf(fmaf(-32.0f, slo, o0), L, fmaf(-8.0f, slo, o0) * H));
              acc[0][0][2 + j] += fmaf(2.0f, vhi, fmaf(fmaf(-16.0f, shi, o1), L, fmaf(-4.0f, shi, o1) * H));
            }
            return;
          }
          // Entry b (α_b, or β for b = p) of rows g and g + 8; aligned runs start at their window (no offset to compute).
          auto fold_scales = [&](int b) {
            if (runs.aligned) return aligned_window_scales<kPlanes, Scale>(slot + kPlanes * 32, u, b, g);
            return window_scales<kPlanes>(slot + kPlanes * 32, runs, u, grp, b, g);
          };
          float sa0 = 0.0f, sa1 = 0.0f, v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
          for (int b = 0; b < kSP; ++b) {
            const float2 al = fold_scales(b);
            sa0 += al.x;
            sa1 += al.y;
#pragma unroll
            for (int c = 0; c < 4; ++c) v[c] = fmaf(c < 2 ? al.x : al.y, pacc[b][c], v[c]);
          }
          const float2 be = prm.beta ? fold_scales(kPlanes) : make_float2(0.0f, 0.0f);
          const float o0 = be.x - sa0, o1 = be.y - sa1;
          const float kl0 = fmaf(-32.0f, sa0, o0), kh0 = fmaf(-8.0f, sa0, o0);  // rows g: c_lo = 16, c_hi = 4
          const float kl1 = fmaf(-16.0f, sa1, o1), kh1 = fmaf(-4.0f, sa1, o1);  // rows g + 8: 8 and 2
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const float L = lh[j], H = lh[2 + j];
            acc[0][0][j] += fmaf(2.0f, v[j], fmaf(kl0, L, kh0 * H));
            acc[0][0][2 + j] += fmaf(2.0f, v[2 + j], fmaf(kl1, L, kh1 * H));
          }
        };
        // Word w of the chunk: scales at the first word of a group, then four dequantize + mma steps. kSerial:
        // four steps of p + 1 mma, the sums folded after every odd word (twice a chunk also for groups of 256
        // or more, which leaves even words to start from zero: the first mma of words 0 and 2 takes no
        // accumulator, so that the sums need no clearing), after every word for g = 64 and after the last
        // valid word; a fold after an even word clears the sums for the next word.
        auto run_word = [&](int w, const std::uint32_t(&xb)[NT][8]) {
          const int u = w >> fold_shift;
          std::uint32_t words[kPlanes];
#pragma unroll
          for (int b = 0; b < kPlanes; ++b) words[b] = component(q[b], w);
          if constexpr (kSerial) {
#pragma unroll
            for (int s = 0; s < 4; ++s) {
              const bool first = s == 0 && (w & 1) == 0;  // constant wherever run_word is unrolled
              if (first)
                mma16816_first<Element>(lh, alh, xb[0][2 * s], xb[0][2 * s + 1]);
              else
                mma16816<Element>(lh, alh, xb[0][2 * s], xb[0][2 * s + 1]);
#pragma unroll
              for (int b = 0; b < kPlanes; ++b) {
                if (!reads(b)) continue;  // per-row precision: above every row's p
                const std::uint32_t wv = align_step<OperandBits<Element>::kPos>(words[b], s);
                std::uint32_t a[4];
#pragma unroll
                for (int r = 0; r < 4; ++r) a[r] = and_or(wv, dmask[r], dbase[r]);
                if (first)
                  mma16816_first<Element>(pacc[b], a, xb[0][2 * s], xb[0][2 * s + 1]);
                else
                  mma16816<Element>(pacc[b], a, xb[0][2 * s], xb[0][2 * s + 1]);
              }
            }
            if ((w & 1) || w + 1 == nw || fold_shift == 0) {
              serial_fold(u);
              if ((w & 1) == 0) clear_serial();
            }
          } else {
            if ((w & ((1 << fold_shift) - 1)) == 0)  // first word of a group: its scales from the ring
              window_consts(slot + kPlanes * 32, runs, u, min(grp0 + u, G - 1), g, prm.beta != nullptr, dc);
#pragma unroll
            for (int s = 0; s < 4; ++s) {
              std::uint32_t a[4];
              dequant_step<Element, kPlanes>(words, s, dc, a);
#pragma unroll
              for (int nt = 0; nt < NT; ++nt) mma16816<Element>(acc[s % kCh][nt], a, xb[nt][2 * s], xb[nt][2 * s + 1]);
            }
          }
        };
        bool whole = false;
        if constexpr (kPrefetchX) {
          if (nw == 4) {  // whole chunk: each word's activations are used in place, then the buffer takes word w + 2
            whole = true;
            // Unrolled by hand: with a rolled loop xq[w & 1] would go to local memory.
            auto whole_word = [&](auto wc) {
              constexpr int w = decltype(wc)::value;
              run_word(w, xq[w & 1]);
              load_x(ahead(w), xq[w & 1]);
            };
            whole_word(std::integral_constant<int, 0>{});
            whole_word(std::integral_constant<int, 1>{});
            whole_word(std::integral_constant<int, 2>{});
            whole_word(std::integral_constant<int, 3>{});
          }
        }
        if (!whole) {
#pragma unroll
          for (int w = 0; w < 4; ++w) {
            if (w < nw) {
              std::uint32_t xb[NT][8];
              if constexpr (kPrefetchX) {
#pragma unroll
                for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                  for (int e = 0; e < 8; ++e) xb[nt][e] = xq[w & 1][nt][e];
                load_x(ahead(w), xq[w & 1]);
              } else {
                load_x(c * 256 + 64 * w, xb);
              }
              run_word(w, xb);
            }
          }
        }
        __syncwarp();
        issue(i + kStages - 1);  // refills the slot read in the previous iteration
      }
    };
    if constexpr (mixed) {
      if (ring_scales)
        with_planes_up_to<kPlanes>(p_hi, [&](auto hi_c) { chunk_loop(hi_c, std::true_type{}); });
      else
        chunk_loop(std::integral_constant<int, kPlanes>{}, std::false_type{});
    } else {
      chunk_loop(std::integral_constant<int, kPlanes>{}, std::false_type{});
    }
    cp_async_wait<0>();
  }

  pdl_wait();  // (again for warps without a row tile) y may still be read by the kernel before
  // Sum the ks slices of each row tile in slice order, then write. The reduction buffer follows the rings.
  float* red = reinterpret_cast<float*>(smem_dq + Tuning::kDqWarps * kStages * kStageU4);  // [ks][tm][NT·4][32]
  const int per_tile = NT * 4 * 32;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int cc = 0; cc < 4; ++cc) {
      float v = acc[0][nt][cc];
#pragma unroll
      for (int h = 1; h < kCh; ++h) v += acc[h][nt][cc];
      red[(wk * TM + wm) * per_tile + (nt * 4 + cc) * 32 + lane] = v;
    }
  __syncthreads();
  Element* y = static_cast<Element*>(prm.y);
  for (int idx = threadIdx.x; idx < TM * per_tile; idx += blockDim.x) {
    const int tm = idx / per_tile, rem = idx % per_tile;
    const int v = rem >> 5, l = rem & 31;
    const int nt = v >> 2, cc = v & 3;
    const index_t m = (rt0 + tm) * 16 + (l >> 2) + 8 * (cc >> 1);
    const index_t n = n_base + nt * 8 + 2 * (l & 3) + (cc & 1);
    if (m < prm.M && n < n_rows) {
      float sum = 0.0f;
      for (int k = 0; k < S; ++k) sum += red[(k * TM + tm) * per_tile + rem];
      if (mixed && valid_precision<kPlanes>(prm, __ldg(prm.row_bits + n)) == 0) sum = __int_as_float(0x7FC00000);  // NaN
      y[(rmap ? index_t(__ldg(rmap + n)) : n) * prm.M + m] = from_f32<Element>(sum);
    }
  }
}

//! Precision split: ints of the split_rows_kernel's segment table (seg[2p], seg[2p + 1] for p = 0 … kMaxBits).
constexpr int kSplitSegInts = 2 * (kMaxBits + 1);
constexpr int kSplitThreads = 256;

//! Precision split of a per-row-precision call, one block: sorts the rows by precision, stably, into
//! order[0 … batch − 1] (order[i] = the row at sorted position i) and writes seg[2p] = the first sorted
//! position of precision p and seg[2p + 1] = its row count, for p = 0 … kMaxBits; p = 0 collects the rows
//! whose precision is outside p_min … p_max or outside `mask` (Arguments::row_bits_mask; 0: none), and their
//! outputs are set to NaN here. Ranks come from warp
//! ballots and a scan over the warps' counts, one chunk of kSplitThreads rows and one precision present at a
//! time, so the order is deterministic. (cub::BlockScan would do the same, but CUB's headers declare a
//! global namespace cuda that makes anybcq::cuda ambiguous in code that says `using namespace anybcq`.)
//! It does not trigger its dependents: the next kernel starts once it has completed.
template <class Element>
__global__ void __launch_bounds__(kSplitThreads) split_rows_kernel(const int* __restrict__ row_bits, int batch, int p_min,
                                                                   int p_max, unsigned mask, int* __restrict__ seg,
                                                                   int* __restrict__ order, Element* __restrict__ y,
                                                                   index_t M) {
  constexpr int kWarps = kSplitThreads / 32;
  __shared__ int warp_count[kWarps];
  __shared__ int count[kMaxBits + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  pdl_wait();  // row_bits may be the previous kernel's output, and that kernel may still read order, seg or y
  if (threadIdx.x <= kMaxBits) count[threadIdx.x] = 0;
  __syncthreads();
  auto bits_of = [&](int n) {
    const int p = row_bits[n];
    return serves_precision(p, p_min, p_max, mask) ? p : 0;
  };
  for (int n = threadIdx.x; n < batch; n += kSplitThreads) atomicAdd(&count[bits_of(n)], 1);
  __syncthreads();
  int next[kMaxBits + 1];  // next sorted position of each precision (the same in every thread)
  int present = 0;
  {
    int s = 0;
#pragma unroll
    for (int p = 0; p <= kMaxBits; ++p) {
      next[p] = s;
      s += count[p];
      if (count[p] > 0) present |= 1 << p;
    }
  }
  if (threadIdx.x <= kMaxBits) {
    seg[2 * threadIdx.x] = next[threadIdx.x];
    seg[2 * threadIdx.x + 1] = count[threadIdx.x];
  }
  for (int n0 = 0; n0 < batch; n0 += kSplitThreads) {
    const int n = n0 + int(threadIdx.x);
    const int mine = n < batch ? bits_of(n) : -1;
#pragma unroll
    for (int p = 0; p <= kMaxBits; ++p) {
      if (!(present >> p & 1)) continue;  // block-uniform
      const unsigned ballot = __ballot_sync(0xFFFFFFFFu, mine == p);
      if (lane == 0) warp_count[warp] = __popc(ballot);
      __syncthreads();
      int before = 0, total = 0;
#pragma unroll
      for (int v = 0; v < kWarps; ++v) {
        before += v < warp ? warp_count[v] : 0;
        total += warp_count[v];
      }
      if (mine == p) order[next[p] + before + __popc(ballot & ((1u << lane) - 1u))] = n;
      next[p] += total;
      __syncthreads();  // warp_count is reused
    }
  }
  const index_t nan_elems = index_t(count[0]) * M;
  for (index_t i = threadIdx.x; i < nan_elems; i += kSplitThreads)
    y[index_t(order[i / M]) * M + i % M] = from_f32<Element>(__int_as_float(0x7FC00000));
  __threadfence();
}

//! Whether p is a multiple of a bytes.
__host__ __device__ inline bool aligned(const void* p, std::size_t a) {
  return (reinterpret_cast<std::uintptr_t>(p) % a) == 0;
}

//! Precision split through cuBLAS: the GEMM problems of the sorted rows, in runs of T rows of one
//! precision. Runs of precision p start at problem base[p]; unused problems (of the host's bound) point at
//! the first Ŵ and x rows and at their own outputs.
template <class Element>
struct SplitProblems {
  const Element** a;     //!< Ŵ_p of each problem
  const Element** b;     //!< its first sorted activation row
  Element** c;           //!< its T×M output block
  int* base;             //!< first problem of each precision (kMaxBits + 1)
  const Element* w;      //!< Ŵ_p for p = p_min, p_min + 1, … (M·K each)
  Element* xs;           //!< sorted activations (batch + T rows)
  Element* yt;           //!< the problems' outputs (T·M each)
  int problems, T, p_min, p_max;
  index_t M, K;
};

//! Gathers the activation rows in sorted order (block i copies row order[i]) and, in block 0, writes the
//! problem table (one thread: at most kMaxBits runs).
template <class Element>
__global__ void __launch_bounds__(128) split_gather_kernel(const Element* __restrict__ x, const int* __restrict__ seg,
                                                           const int* __restrict__ order, SplitProblems<Element> sp) {
  const index_t i = blockIdx.x;
  const uint4* src = reinterpret_cast<const uint4*>(x + index_t(__ldg(order + i)) * sp.K);
  uint4* dst = reinterpret_cast<uint4*>(sp.xs + i * sp.K);
  for (index_t k = threadIdx.x; k < sp.K / 8; k += blockDim.x) dst[k] = __ldg(src + k);
  if (i != 0 || threadIdx.x != 0) return;
  int j = 0;
  for (int p = 0; p <= kMaxBits; ++p) {
    sp.base[p] = j;
    if (p < sp.p_min || p > sp.p_max) continue;
    const int first = seg[2 * p], count = seg[2 * p + 1];
    for (int r = 0; r < count && j < sp.problems; r += sp.T, ++j) {
      sp.a[j] = sp.w + index_t(p - sp.p_min) * sp.M * sp.K;
      sp.b[j] = sp.xs + index_t(first + r) * sp.K;
      sp.c[j] = sp.yt + index_t(j) * sp.T * sp.M;
    }
  }
  for (; j < sp.problems; ++j) {
    sp.a[j] = sp.w;
    sp.b[j] = sp.xs;
    sp.c[j] = sp.yt + index_t(j) * sp.T * sp.M;
  }
}

//! Writes each sorted row's result (row r of problem base[p] + ⌊(i − first_p)/T⌋ …) to y[order[i]]; one
//! block per sorted position; rows outside p_min … p_max (NaN already) are left alone. Rows whose source and
//! destination are 16-byte aligned (M a multiple of 8, y aligned) go in 16-byte copies.
template <class Element>
__global__ void __launch_bounds__(256) split_scatter_kernel(const int* __restrict__ seg, const int* __restrict__ order,
                                                            SplitProblems<Element> sp, Element* __restrict__ y) {
  const int i = int(blockIdx.x);
  int p = 0;
  for (int q = sp.p_min; q <= sp.p_max; ++q)
    if (i >= seg[2 * q] && i < seg[2 * q] + seg[2 * q + 1]) p = q;
  if (p == 0) return;
  const int r = i - seg[2 * p];
  const Element* src = sp.yt + (index_t(sp.base[p] + r / sp.T) * sp.T + r % sp.T) * sp.M;
  Element* dst = y + index_t(order[i]) * sp.M;
  constexpr index_t kPerVec = 16 / sizeof(Element);
  if (sp.M % kPerVec == 0 && aligned(src, 16) && aligned(dst, 16)) {
    const uint4* s4 = reinterpret_cast<const uint4*>(src);
    uint4* d4 = reinterpret_cast<uint4*>(dst);
    for (index_t m = threadIdx.x; m < sp.M / kPerVec; m += blockDim.x) d4[m] = s4[m];
    return;
  }
  for (index_t m = threadIdx.x; m < sp.M; m += blockDim.x) dst[m] = src[m];
}

//! Bytes of one dequantize warp's staging tile: 16 rows of 256 elements, rows padded by 16 bytes.
constexpr int kDequantRowBytes = 256 * 2 + 16;
constexpr int kDequantWarpBytes = 16 * kDequantRowBytes;

//! Dequantize Ŵ_p (M×K, row-major, element type E) from MmaTiled planes for the cuBLAS path: one warp
//! per 16×256 fragment block, the same register dequantization as dqmma_kernel; the block goes through
//! shared memory so that each store instruction writes 512 contiguous bytes of one row.
template <class Tuning, class Element, class Scale, int kPlanes, bool kWide>
__global__ void __launch_bounds__(Tuning::kDequantWarps * 32)
    dequantize_kernel(const FusedParams<Scale> prm, Element* out) {
  extern __shared__ __align__(16) unsigned char dq_stage[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const index_t blk = index_t(blockIdx.x) * Tuning::kDequantWarps + warp;
  if (blk >= prm.row_tiles * prm.chunks) return;
  if (prm.seg && __ldg(prm.seg + 1) == 0) return;  // precision split: no row asks for this precision
  const index_t rt = blk / prm.chunks, c = blk % prm.chunks;
  const int g = lane >> 2, t = lane & 3;
  const int M = int(prm.M), K = int(prm.K);
  const index_t plane_stride = prm.row_tiles * prm.chunks * 32;
  uint4 q[kPlanes];
#pragma unroll
  for (int b = 0; b < kPlanes; ++b) q[b] = load_stream(prm.planes + b * plane_stride + blk * 32 + lane);
  std::uint32_t dmask[4] = {}, dbase[4] = {};
  if constexpr (kWide) decode_constants<Element>(dmask, dbase);
  const int m0 = int(rt) * 16 + g;
  const int rows[2] = {min(m0, M - 1), min(m0 + 8, M - 1)};
  const Scale* abase = prm.alpha + prm.scales.alpha_base(kPlanes);
  const Scale* bbase = prm.beta ? prm.beta + prm.scales.beta_base(kPlanes) : nullptr;
  unsigned char* stage = dq_stage + warp * kDequantWarpBytes;
  const int nw = min(4, (K - int(c) * 256 + 63) >> 6);  // valid 64-column words
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    if (w >= nw) continue;
    GroupScales<kPlanes> sc;
    // Padding columns past K meet zero activations: their group is clamped to the last one.
    load_group<kPlanes>(prm, abase, bbase, min(group_of_column(prm, int(c) * 256 + 64 * w), int(prm.scales.groups) - 1),
                        rows, sc);
    const DequantConsts<Element, kPlanes, kWide> dc(sc);
    std::uint32_t words[kPlanes];
#pragma unroll
    for (int b = 0; b < kPlanes; ++b) words[b] = component(q[b], w);
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      std::uint32_t a[4];
      if constexpr (kWide)
        dequant_step_wide<Element, kPlanes>(words, s, dc, dmask, dbase, a);
      else
        dequant_step<Element, kPlanes>(words, s, dc, a);
      // Row g + 8·h, columns 64w + 16t + 4s + {0,1} (register h) and + {2,3} (register 2 + h).
#pragma unroll
      for (int h = 0; h < 2; ++h)
        *reinterpret_cast<uint2*>(stage + (g + 8 * h) * kDequantRowBytes + (64 * w + 16 * t + 4 * s) * 2) =
            make_uint2(a[h], a[2 + h]);
    }
  }
  __syncwarp();
  // Row by row: lane l writes elements 8l … 8l + 7 (16 bytes) of the chunk's 256.
  const int k0 = int(c) * 256 + 8 * lane;
  for (int r = 0; r < 16; ++r) {
    const int m = int(rt) * 16 + r;
    if (m >= M) break;
    if (k0 < K)
      *reinterpret_cast<uint4*>(out + index_t(m) * prm.K + k0) =
          *reinterpret_cast<const uint4*>(stage + r * kDequantRowBytes + 16 * lane);
  }
}

//! LUT path (batch 1–2, uniform precision, group ≥ 128): activation lookup tables as in lut_gemv_kernel,
//! read straight from MmaTiled planes. Lane l = 4g + t loads 16 bytes of a fragment block: per word, rows g
//! and g + 8 of 16 columns. One delta swap per word puts row g in the low half and row g + 8 in the high
//! half (natural column order); one exchange with lane t ^ 1 (two PRMT and one SHFL per two words) then
//! gives every lane, per word w, 32 consecutive columns of one row: lanes t = 0, 1 take columns
//! 64w … 64w + 31 of rows g, g + 8, lanes t = 2, 3 columns 64w + 32 … 64w + 63. A lookup instruction
//! therefore reads two quad tables, which share one 33-word slot (words 0–15 and 16–31): conflict-free.
//! A block is tm row tiles (one warp each) × ks K slices; the tm warps of a slice build each chunk's tables
//! together (double-buffered, one block barrier per chunk) and the slices are added in a fixed order.
constexpr int kLutSlotBytes = 132;    //!< two 16-float quad tables and one pad word
constexpr int kLutTableBytes = 4352;  //!< 32 slots (4224 bytes) and 8 run sums, rounded up to 256
constexpr int kLutSumsOffset = 4224;  //!< Σx of the chunk's eight 32-column runs
constexpr int kLutMaxWarps = 16;      //!< warps per block of the LUT kernel
constexpr int kLutMaxSlices = 8;      //!< K slices per block of the LUT kernel

//! Swaps the odd bits of the low half with the even bits of the high half: an MmaTiled word (rows g and
//! g + 8 interleaved) becomes row g's 16 columns in bits 0–15 and row g + 8's in bits 16–31.
__device__ __forceinline__ std::uint32_t split_rows(std::uint32_t w) {
  const std::uint32_t d = ((w >> 15) ^ w) & 0x0000AAAAu;
  return w ^ d ^ (d << 15);
}

//! y[b] = Ŵ_P·x[b] for b < B (B = batch = 1 or 2). Block: prm.tm row tiles × prm.ks K slices (warp
//! s·tm + u takes tile u of slice s); slice s takes chunks [s·cps, (s + 1)·cps).
template <class Element, class Scale, int P, int B>
__global__ void __launch_bounds__(kLutMaxWarps * 32) lut_mma_kernel(const FusedParams<Scale> prm, int cps) {
  extern __shared__ __align__(256) unsigned char lut_smem[];
  using Raw = gemv_scale_raw_t<Scale>;
  constexpr int kSplit = (P * B <= 4) ? 2 : 1;  // independent FADD chains per (row, plane)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int TM = prm.tm, KS = prm.ks;
  const int u = warp % TM, slice = warp / TM;
  const int g = lane >> 2, t = lane & 3, hf = t >> 1, odd = t & 1;
  const index_t M = prm.M, RT = prm.row_tiles, CH = prm.chunks, G = prm.scales.groups;
  const int K = int(prm.K);
  const int c0 = slice * cps, c1 = min(c0 + cps, int(CH));
  const bool pair_groups = prm.fold_blocks == 2;  // g = 128: chunk words 0–1 and 2–3 are two groups
  const bool has_beta = prm.beta != nullptr;
  const std::uint32_t slice_tab = std::uint32_t(slice * 2 * B * kLutTableBytes);
  const std::uint32_t cls = hf ? 0x40404040u : 0u;  // second table of a slot
  const std::uint32_t sel_send = odd ? 0x5410u : 0x7632u, sel_lo = odd ? 0x3254u : 0x5410u,
                      sel_hi = odd ? 0x3276u : 0x7610u;
  const Element* x = static_cast<const Element*>(prm.x);
  const int builder = u * 32 + lane;  // quads builder, builder + 32·tm, … (< 64) of every chunk
  // Tables shared by tm > 1 warps: the whole block steps through the chunks together (every slice makes
  // cps iterations, the last one's surplus ones idle) with one __syncthreads per chunk. A named barrier
  // per slice with a run-time id made the compiler reserve every barrier, which capped the SM at four
  // blocks (Nsight Compute: 25% theoretical occupancy).
  auto sync_tables = [&]() {
    if (TM == 1) __syncwarp();
    else __syncthreads();
  };
  const int c_end = TM == 1 ? c1 : c0 + cps;

  // A tile past the matrix re-reads the last tile and writes nothing; rows past M read row M − 1's scales.
  const index_t tile = index_t(blockIdx.x) * TM + u;
  const index_t plane_stride = RT * CH * 32;
  const uint4* wp = prm.planes + ((tile < RT ? tile : RT - 1) * CH + c0) * 32 + lane;
  const index_t m_lane = tile * 16 + g + 8 * odd;
  const index_t mrow = m_lane < M ? m_lane : M - 1;
  // Running pointers of the next chunk to load (no per-chunk index arithmetic): planes, the α^P/β^P entries
  // of the chunk's first scale group for this lane's row, and this lane's activation quads.
  const uint4* wq = wp;
  // Scale groups: two per chunk when g = 128; else one, advancing every g / 256 chunks (g = K, not a
  // multiple of 256, is the only group).
  const int chunks_per_group = pair_groups ? 1 : prm.group % 256 == 0 ? int(prm.group / 256) : 0x7fffffff;
  index_t grp = pair_groups ? index_t(2) * c0 : index_t(c0 / chunks_per_group);
  int in_group = pair_groups ? 0 : c0 % chunks_per_group;
  const index_t PM = index_t(P) * M;
  const Scale* ap = prm.alpha + prm.scales.alpha_base(P) + grp * PM + mrow;
  const Scale* bp = has_beta ? prm.beta + prm.scales.beta_base(P) + grp * M + mrow : prm.alpha;
  // Quad h = builder + 32·tm·h starts at column 4·builder + 128·h of the chunk (tm = 1) or is not built.
  const Element* xq = x + index_t(c0) * 256 + (builder < 64 ? 4 * builder : 0);
  int xcol[2];  // column of quad h inside its chunk; −K when this lane builds no quad h
#pragma unroll
  for (int h = 0; h < 2; ++h) xcol[h] = builder + h * 32 * TM < 64 ? 4 * builder + 128 * h : -K;

  // Everything chunk c + 1 needs is loaded while chunk c is computed.
  uint4 nw[P];
  Raw na[2][P] = {};
  Raw nb[2] = {};
  uint2 nx[B][2];
  int cn = c0;
  auto load = [&]() {
#pragma unroll
    for (int i = 0; i < P; ++i) nw[i] = load_stream(wq + i * plane_stride);
    wq += 32;
#pragma unroll
    for (int i = 0; i < P; ++i) na[0][i] = gemv_load_scale<Scale>(ap + i * M);
    nb[0] = has_beta ? gemv_load_scale<Scale>(bp) : Raw(0);
    if (pair_groups) {
      // The second group of a last chunk that is half past K has no entries (its activations are zero).
      const bool second = grp + 1 < G;
#pragma unroll
      for (int i = 0; i < P; ++i) na[1][i] = gemv_load_scale<Scale>(ap + (second ? PM : 0) + i * M);
      nb[1] = has_beta ? gemv_load_scale<Scale>(bp + (second ? M : 0)) : Raw(0);
      grp += 2;
      ap += 2 * PM;
      bp += has_beta ? 2 * M : 0;
    } else if (++in_group == chunks_per_group) {
      in_group = 0;
      ++grp;
      ap += PM;
      bp += has_beta ? M : 0;
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const bool ok = xcol[h] >= 0 && cn * 256 + xcol[h] < K;
#pragma unroll
      for (int b = 0; b < B; ++b)
        nx[b][h] = ok ? __ldg(reinterpret_cast<const uint2*>(xq + 128 * h + index_t(b) * K)) : make_uint2(0u, 0u);
    }
    xq += 256;
    ++cn;
  };

  float acc[B];
#pragma unroll
  for (int b = 0; b < B; ++b) acc[b] = 0.0f;

  if (c0 < c1) load();
  for (int c = c0; c < c_end; ++c) {
    const bool active = c < c1;  // uniform per slice
    uint4 w[P];
    Raw a[2][P], bt[2];
    uint2 xr[B][2];
#pragma unroll
    for (int i = 0; i < P; ++i) {
      w[i] = nw[i];
      a[0][i] = na[0][i];
      a[1][i] = na[1][i];
    }
    bt[0] = nb[0];
    bt[1] = nb[1];
#pragma unroll
    for (int b = 0; b < B; ++b) {
      xr[b][0] = nx[b][0];
      xr[b][1] = nx[b][1];
    }
    if (c + 1 < c1) load();

    // Tables of this chunk (buffer (c − c0) mod 2): quad q = 16w + 8h + n (columns 4q … 4q + 3) goes to
    // slot 8w + n, half h; the stores of one entry hit 32 distinct banks. Run r = q / 8 (32 columns) gets
    // its Σx from the 8 lanes that built its quads (a run never spans two warps).
    const std::uint32_t tab = slice_tab + std::uint32_t(((c - c0) & 1) * B * kLutTableBytes);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int q = builder + h * 32 * TM;
      if (q >= 64 || !active) break;  // uniform per warp
#pragma unroll
      for (int b = 0; b < B; ++b) {
        unsigned char* tb = lut_smem + tab + b * kLutTableBytes;
        float s = gemv_store_quad_table<Element>(
            xr[b][h], reinterpret_cast<float*>(tb + (8 * (q >> 4) + (q & 7)) * kLutSlotBytes + 64 * ((q >> 3) & 1)));
        if (has_beta) {
#pragma unroll
          for (int o = 1; o < 8; o <<= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
          if ((lane & 7) == 0) reinterpret_cast<float*>(tb + kLutSumsOffset)[q >> 3] = s;
        }
      }
    }
    sync_tables();
    if (!active) continue;

    // One row per lane, 32 consecutive columns per word.
    std::uint32_t wr[P][4];
#pragma unroll
    for (int i = 0; i < P; ++i) {
      const std::uint32_t v0 = split_rows(w[i].x), v1 = split_rows(w[i].y);
      const std::uint32_t v2 = split_rows(w[i].z), v3 = split_rows(w[i].w);
      const std::uint32_t r01 = __shfl_xor_sync(0xFFFFFFFFu, __byte_perm(v0, v1, sel_send), 1);
      const std::uint32_t r23 = __shfl_xor_sync(0xFFFFFFFFu, __byte_perm(v2, v3, sel_send), 1);
      wr[i][0] = __byte_perm(v0, r01, sel_lo);
      wr[i][1] = __byte_perm(v1, r01, sel_hi);
      wr[i][2] = __byte_perm(v2, r23, sel_lo);
      wr[i][3] = __byte_perm(v3, r23, sel_hi);
    }
    float part[B][P][kSplit];
    gemv_clear_parts(part);
#pragma unroll
    for (int wd = 0; wd < 4; ++wd) {
#pragma unroll
      for (int i = 0; i < P; ++i)
        gemv_lookup_word(lut_smem, wr[i][wd], cls, tab, kLutTableBytes, 8 * wd, kLutSlotBytes, i, part);
      // End of a scale group: y += β·Σx + Σ_i α_i·partial_i (fixed order).
      if (wd == 3 || (wd == 1 && pair_groups)) {
        const bool second = wd == 3 && pair_groups;
#pragma unroll
        for (int b = 0; b < B; ++b) {
          float s = 0.0f;
          if (has_beta) {
            const float* sums = reinterpret_cast<const float*>(lut_smem + tab + b * kLutTableBytes + kLutSumsOffset) + hf;
            const float sxg = pair_groups ? (second ? sums[4] + sums[6] : sums[0] + sums[2])
                                          : (sums[0] + sums[2]) + (sums[4] + sums[6]);
            s = gemv_scale_float<Scale>(second ? bt[1] : bt[0]) * sxg;
          }
#pragma unroll
          for (int i = 0; i < P; ++i)
            s = fmaf(gemv_scale_float<Scale>(second ? a[1][i] : a[0][i]), gemv_part_sum(part, b, i), s);
          acc[b] += s;
        }
        gemv_clear_parts(part);
      }
    }
  }

  // Lanes t and t ^ 2 hold the same row (other columns); then the slices are added in a fixed order.
#pragma unroll
  for (int b = 0; b < B; ++b) acc[b] += __shfl_xor_sync(0xFFFFFFFFu, acc[b], 2);
  __syncthreads();
  float* red = reinterpret_cast<float*>(lut_smem);
  if (hf == 0) {
#pragma unroll
    for (int b = 0; b < B; ++b) red[((slice * TM + u) * B + b) * 16 + g + 8 * odd] = acc[b];
  }
  __syncthreads();
  Element* y = static_cast<Element*>(prm.y);
  for (int idx = threadIdx.x; idx < TM * B * 16; idx += blockDim.x) {
    const int r = idx & 15, uu = (idx >> 4) / B, b = (idx >> 4) % B;
    const index_t m = (index_t(blockIdx.x) * TM + uu) * 16 + r;
    if (m >= M) continue;
    float s = 0.0f;
    for (int sl = 0; sl < KS; ++sl) s += red[((sl * TM + uu) * B + b) * 16 + r];
    y[index_t(b) * M + m] = from_f32<Element>(s);
  }
}

// ---- Binary tensor-core path (batch 1 … kBmmaMaxBatch, uniform precision, group ≥ 128) -----------------
//! The activations of every 128-column half-chunk become 16-bit fixed point, X = rint(x·32767 / absmax)
//! (|x − s·X| ≤ s / 2 with s = absmax / 32767), stored as 16 bit planes X_n. For a weight plane b ∈ {0, 1}
//! (bit 1 ↔ +1), Σ_k b_k·X_k = Σ_n c_n·popc(b AND X_n) with c_n = 2^n (n < 15) and c_15 = −2^15, and one
//! binary mma (m16n8k128, AND + POPC) counts 16 weight rows × 128 columns against 8 activation planes.
//! With S_i = Σ_k b_ik·X_k: Σ_k w_k·x_k = s·(2·Σ_i α_i·S_i + (β − Σ_i α_i)·Σ_k X_k), exact in integers
//! up to the α and s products (fp32).
constexpr int kBmmaMaxWarps = 8;   //!< warps per block of the binary-mma kernel
constexpr int kBmmaMaxSlices = 8;  //!< K slices per block of the binary-mma kernel
constexpr int kBmmaMaxBatch = 8;   //!< activation rows per call of the binary-mma kernel

//! Column (inside a 128-column half-chunk) of bit i of the B-operand word of lane position t: the column
//! whose weight bit bmma_a_operands puts at bit i of that lane's A registers.
__host__ __device__ constexpr int bmma_column(int t, int i) {
  return 64 * (i & 1) + 16 * t + 4 * ((i >> 2) & 3) + (i & 2) + (i >> 4);
}

//! A operand (rows g and g + 8, 32 columns each) of one half-chunk from the lane's two MmaTiled words
//! v0 (columns 0–63) and v1 (64–127): even bits of a word are row g, odd bits row g + 8. Row g takes
//! v0's even bits in place and v1's even bits shifted to the odd positions; row g + 8 the reverse.
ANYBCQ_HOST_DEVICE __forceinline__ void bmma_a_operands(std::uint32_t v0, std::uint32_t v1, std::uint32_t& a0, std::uint32_t& a1) {
  a0 = (v0 & 0x55555555u) | ((v1 << 1) & 0xAAAAAAAAu);
  a1 = ((v0 >> 1) & 0x55555555u) | (v1 & 0xAAAAAAAAu);
}

//! d = popc(A AND B) for a 16×128 binary A (rows g, g + 8: a0, a1) and 128×8 binary B (column g: b).
__device__ __forceinline__ void bmma16x8x128(int (&d)[4], std::uint32_t a0, std::uint32_t a1, std::uint32_t b) {
  asm("mma.sync.aligned.m16n8k128.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%7,%7,%7};\n"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a0), "r"(a1), "r"(b), "r"(0));
}

//! 32×32 bit transpose across a warp: lane k gets Σ_j (bit k of lane j's x) << j. Five butterfly stages;
//! the stage of width s swaps the s×s blocks off the diagonal (mask: the low s bits of every 2s).
__device__ __forceinline__ std::uint32_t warp_transpose32(std::uint32_t x, int lane) {
#pragma unroll
  for (int s = 16; s >= 1; s >>= 1) {
    const std::uint32_t m = 0xFFFFFFFFu / ((1u << s) + 1u);  // 0x0000FFFF, 0x00FF00FF, …, 0x55555555
    const std::uint32_t y = __shfl_xor_sync(0xFFFFFFFFu, x, s);
    x = (lane & s) ? (x & ~m) | ((y & ~m) >> s) : (x & m) | ((y & m) << s);
  }
  return x;
}

//! Activations → bit planes: one warp per (128-column half-chunk h of chunk c, batch row b). Lane 4g + t of
//! chunk c reads, as one uint4 of xb[(b·chunks + c)·32 + lane], the B words of activation planes g and 8 + g
//! of half-chunk 0 and then of half-chunk 1; xs[(b·chunks + c)·2 + h] = (2s, s·Σ X). Columns past K are
//! zeros. The 64 words of a half-chunk come from two warp bit transposes of 32 × 32 bits (lane
//! 16·(t mod 2) + n gets word (t, n)).
template <class Element>
__global__ void __launch_bounds__(128) bmma_pack_x_kernel(const Element* __restrict__ x, uint4* __restrict__ xb,
                                                          float2* __restrict__ xs, int K, int chunks) {
  __shared__ int xq[4][128];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int hc = int(blockIdx.x) * 4 + warp, c = hc >> 1, h = hc & 1;
  const index_t b = blockIdx.y;
  pdl_launch_dependents();
  pdl_wait();  // x may be the previous kernel's output
  if (c >= chunks) return;  // no block barrier follows
  const int g = lane >> 2, t = lane & 3;
  const int k0 = hc * 128 + 4 * lane;  // K is a multiple of 32: a quad is wholly inside or past K
  float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (k0 < K) {
    const uint2 r = *reinterpret_cast<const uint2*>(x + b * K + k0);
    const Element* e = reinterpret_cast<const Element*>(&r);
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = static_cast<float>(e[j]);
  }
  const float m = warp_all_reduce(fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3]))),
                                  [](float u, float w) { return fmaxf(u, w); });
  const float inv = m > 0.0f ? 32767.0f / m : 0.0f;
  int sum = 0;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int q = max(-32767, min(32767, __float2int_rn(v[j] * inv)));
    xq[warp][4 * lane + j] = q;
    sum += q;
  }
  sum = warp_all_reduce(sum, [](int u, int w) { return u + w; });
  __syncwarp();
  // Word (t', n) (bit j: bit n of X at column bmma_column(t', j)) goes to lane 16·(t' mod 2) + n, register
  // t' / 2: lane j packs X of columns (2r, j) and (2r + 1, j) into one word, and a warp bit transpose
  // hands lane k bit k of every lane's word.
  std::uint32_t keep[2];
#pragma unroll
  for (int r = 0; r < 2; ++r)
    keep[r] = warp_transpose32((std::uint32_t(xq[warp][bmma_column(2 * r, lane)]) & 0xFFFFu) |
                                   (std::uint32_t(xq[warp][bmma_column(2 * r + 1, lane)]) << 16),
                               lane);
  const int src = 16 * (t & 1) + g;
  const std::uint32_t lo0 = __shfl_sync(0xFFFFFFFFu, keep[0], src), lo1 = __shfl_sync(0xFFFFFFFFu, keep[1], src);
  const std::uint32_t hi0 = __shfl_sync(0xFFFFFFFFu, keep[0], src + 8), hi1 = __shfl_sync(0xFFFFFFFFu, keep[1], src + 8);
  reinterpret_cast<uint2*>(xb)[((b * chunks + c) * 32 + lane) * 2 + h] = t < 2 ? make_uint2(lo0, hi0) : make_uint2(lo1, hi1);
  const float s = m / 32767.0f;
  if (lane == 0) xs[(b * chunks + c) * 2 + h] = make_float2(2.0f * s, s * float(sum));
}

//! One chunk of bmma_gemv_kernel with a batch tile (B = 8; see there). Lane 4r + t loads the activation
//! words of batch row r for both half-chunks and every plane (as bmma_pack_x_kernel stored them, planes j
//! and 8 + j in one uint4) before it waits for the chunk's planes in `slot`; scale(slot, u, b) gives α
//! (b < P) or β (b = P) of rows g and g + 8 for scale window u. yt: rows g, g + 8 × batch rows 2t, 2t + 1.
//! kRowBits (per-row precision): column 2t + j folds the planes below pc[j] (0: none) with
//! scale(slot, u, pc[j], b); planes from p_hi on are skipped.
template <int P, int kStages, bool kRowBits = false, class ScaleFn>
__device__ __forceinline__ void bmma_tile_chunk(const uint4* slot, const uint4* __restrict__ xb,
                                                const float4* __restrict__ xs, int c, int chunks, int nbatch, int lane,
                                                int fold_shift, bool has_beta, ScaleFn scale, float (&yt)[4],
                                                int p_hi = P, const int (&pc)[2] = {0, 0}) {
  const int g = lane >> 2, t = lane & 3;
  // Batch rows past nbatch read row 0: mma columns are independent, and their sums are not stored.
  const int r = g < nbatch ? g : 0, b0 = 2 * t < nbatch ? 2 * t : 0, b1 = 2 * t + 1 < nbatch ? 2 * t + 1 : 0;
  uint4 w[8];  // w[j]: planes j and 8 + j of half-chunk 0, then of half-chunk 1
  const uint4* src = xb + (index_t(r) * chunks + c) * 32 + t;
#pragma unroll
  for (int j = 0; j < 8; ++j) w[j] = __ldg(src + 4 * j);
  const float4 s0 = __ldg(xs + index_t(b0) * chunks + c), s1 = __ldg(xs + index_t(b1) * chunks + c);
  cp_async_wait<kStages - 2>();
  __syncwarp();
  uint4 q[P];
#pragma unroll
  for (int pl = 0; pl < P; ++pl) q[pl] = !kRowBits || pl < p_hi ? slot[pl * 32 + lane] : make_uint4(0u, 0u, 0u, 0u);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int u = (2 * h) >> fold_shift;
    float z[4] = {0.0f, 0.0f, 0.0f, 0.0f}, asum0 = 0.0f, asum1 = 0.0f;
    float2 sa[2] = {make_float2(0.0f, 0.0f), make_float2(0.0f, 0.0f)};  // kRowBits: Σα per column
#pragma unroll
    for (int pl = 0; pl < P; ++pl) {
      if (kRowBits && pl >= p_hi) continue;
      std::uint32_t a0, a1;
      bmma_a_operands(component(q[pl], 2 * h), component(q[pl], 2 * h + 1), a0, a1);
      int d[4], acc[4];
      bmma16x8x128(d, a0, a1, component(w[7], 2 * h + 1));  // plane 15, weight −2^15
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[e] = -d[e];
#pragma unroll
      for (int n = 14; n >= 0; --n) {
        bmma16x8x128(d, a0, a1, n >= 8 ? component(w[n - 8], 2 * h + 1) : component(w[n], 2 * h));
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[e] = 2 * acc[e] + d[e];
      }
      if constexpr (kRowBits) {
        const float2 zero2 = make_float2(0.0f, 0.0f);
        const float2 a0c = pl < pc[0] ? scale(slot, u, pc[0], pl) : zero2, a1c = pl < pc[1] ? scale(slot, u, pc[1], pl) : zero2;
        sa[0].x += a0c.x;
        sa[0].y += a0c.y;
        sa[1].x += a1c.x;
        sa[1].y += a1c.y;
        z[0] = fmaf(a0c.x, float(acc[0]), z[0]);
        z[1] = fmaf(a1c.x, float(acc[1]), z[1]);
        z[2] = fmaf(a0c.y, float(acc[2]), z[2]);
        z[3] = fmaf(a1c.y, float(acc[3]), z[3]);
      } else {
        const float2 al = scale(slot, u, pl);
        asum0 += al.x;
        asum1 += al.y;
        z[0] = fmaf(al.x, float(acc[0]), z[0]);
        z[1] = fmaf(al.x, float(acc[1]), z[1]);
        z[2] = fmaf(al.y, float(acc[2]), z[2]);
        z[3] = fmaf(al.y, float(acc[3]), z[3]);
      }
    }
    // o[j]: β − Σα of column 2t + j for rows g (x) and g + 8 (y)
    float2 o[2];
    if constexpr (kRowBits) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const float2 be = has_beta && pc[j] ? scale(slot, u, pc[j], pc[j]) : make_float2(0.0f, 0.0f);
        o[j] = make_float2(be.x - sa[j].x, be.y - sa[j].y);
      }
    } else {
      const float2 be = has_beta ? scale(slot, u, P) : make_float2(0.0f, 0.0f);
      o[0] = o[1] = make_float2(be.x - asum0, be.y - asum1);
    }
    const float s2a = h ? s0.z : s0.x, sxa = h ? s0.w : s0.y, s2b = h ? s1.z : s1.x, sxb = h ? s1.w : s1.y;
    yt[0] = fmaf(s2a, z[0], fmaf(o[0].x, sxa, yt[0]));
    yt[1] = fmaf(s2b, z[1], fmaf(o[1].x, sxb, yt[1]));
    yt[2] = fmaf(s2a, z[2], fmaf(o[0].y, sxa, yt[2]));
    yt[3] = fmaf(s2b, z[3], fmaf(o[1].y, sxb, yt[3]));
  }
}

//! y[b] = Ŵ_P·x[b] for b < B from the bit planes of bmma_pack_x_kernel. Block: prm.tm row tiles × prm.ks
//! K slices (warp s·tm + u takes tile u, chunks s, s + ks, …); each warp streams its tile's P planes and
//! the chunks' scale runs through a cp.async ring in shared memory (the ring of dqmma_kernel), so that
//! stages_for(P) − 1 chunks are in flight per warp. Per half-chunk and plane: two binary mma per
//! activation row (planes 0–7 and 8–15 of X); lane 4g + t holds the counts of X planes 2t, 2t + 1,
//! 8 + 2t, 9 + 2t for rows g and g + 8 and folds them as 4^t·(d0 + 2·d1 + 256·d2 ± 512·d3). Lanes t and
//! the slices are added in a fixed order at the end (deterministic, no atomics). Weights are requested
//! before the programmatic-launch wait; the activation planes (the previous kernel's output) after it.
//! B = 8 (batch tiles): the mma's N is the batch instead. Lane 4r + t loads the words of batch row r for
//! all 16 activation planes, each plane's mma counts 16 weight rows against 8 batch rows, and a Horner
//! fold over the planes (S = 2·S + d, from plane 15 with weight −2^15 down) gives each lane exact Σ b·X
//! for rows g, g + 8 and batch rows 2t, 2t + 1: 16 mma and 64 integer adds per lane, half-chunk and plane
//! against 2·B mma and 6·B integer operations plus 2·B conversions with one row per column group.
//! kFast: aligned scale tables whose runs of a chunk take ≤ 32 pieces of 16 bytes (2-byte scales, P ≤ 7):
//! lane L copies the same piece (j of run (u, b)) of every chunk, one address and one cp.async per chunk,
//! and the loop keeps running pointers instead of recomputing addresses. Otherwise copy_scale_windows.
//! kRowBits (per-row precision; aligned scale tables with row_scales_fit): planes up to the highest
//! precision a row asks for are read, the scale runs of every precision present come through the ring
//! (RowScaleRuns), each row (or tile column) folds the planes below its own p with its own α^p, β^p, and
//! a row whose precision the weights lack (or outside prm.row_mask) gets NaN. With one or two rows the
//! chunk loop is built once per highest precision (no run-time check per plane).
template <class Element, class Scale, int P, int B, bool kFast, bool kRowBits = false>
__global__ void __launch_bounds__(kBmmaMaxWarps * 32, kDqBlocksPerSm) bmma_gemv_kernel(const FusedParams<Scale> prm,
                                                                                     const uint4* __restrict__ xb,
                                                                                     const float4* __restrict__ xs) {
  static_assert(B == 1 || B == 2 || B == 4 || B == 8, "binary-mma kernel: 1, 2 or 4 rows, or one tile of 8");
  static_assert(!(kRowBits && kFast), "per-row precision copies its own scale runs");
  constexpr bool kTile = B == 8;  // batch rows in the mma's N (see above)
  constexpr int kStages = stages_for(P);
  constexpr int kStageU4 = stage_u4<Scale>(P);
  extern __shared__ uint4 smem_bm[];
  __shared__ float red[kBmmaMaxWarps * B * 16];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int TM = prm.tm, S = prm.ks;
  const int wm = warp % TM, wk = warp / TM;
  const index_t rt = index_t(blockIdx.x) * TM + wm;
  const int chunks = int(prm.chunks), nbatch = int(prm.batch);
  const bool live = rt < prm.row_tiles;
  uint4* const ring = smem_bm + warp * (kStages * kStageU4);
  pdl_launch_dependents();

  const index_t plane_stride = prm.row_tiles * prm.chunks * 32;  // in uint4
  const TileScaleRuns<Scale> runs(prm, live ? rt : 0, P);
  const int ng = 4 >> prm.fold_shift();  // scale groups per chunk: 2 for g = 128, else 1
  const int nb = P + (prm.beta ? 1 : 0);
  // Per-row precision: the table of the scale-run pieces the ring copies take (RowScaleRuns::fill), once per block.
  const RowScalePiece* pieces = nullptr;
  if constexpr (kRowBits) {
    static_assert(row_scale_off(1, 1, P + 1) * int(sizeof(Scale)) <= kRowScalePieces, "scale-run piece table");
    __shared__ RowScalePiece piece_tab[kRowScalePieces];
    RowScaleRuns<Scale>(prm, P, ng, 0).fill(piece_tab, prm);
    pieces = piece_tab;
    __syncthreads();
  }
  const int G = int(prm.scales.groups);
  const int n_my = live && wk < chunks ? (chunks - wk + S - 1) / S : 0;
  constexpr int kWin = scale_window<Scale>();
  constexpr int kRun = int(sizeof(Scale));  // 16-byte pieces per 16-row run
  // kFast: the piece this lane copies (my_dst < 0: none) and its source for scale group 0.
  const Scale* my_src = reinterpret_cast<const Scale*>(prm.planes);
  index_t my_stride = 0;
  int my_u = 0, my_dst = -1;
  if (kFast && lane < prm.chunk_scale_pieces(P)) {
    const int b = (lane / kRun) % nb, j = lane % kRun;
    my_u = lane / (kRun * nb);
    my_src = runs.run(my_u, b) + j * (16 / int(sizeof(Scale)));
    my_stride = b < P ? index_t(P) * prm.M : prm.M;  // elements from one group's run to the next
    my_dst = P * 32 + (my_u * (P + 1) + b) * kWin + j;
  }
  // Chunk issued next (wc), its planes (wsrc, plane 0) and the ring slot it goes to (ws, in uint4).
  int wc = wk, ws = 0;
  const uint4* wsrc = prm.planes + ((live ? rt : 0) * prm.chunks + wk) * 32 + lane;
  const int wstep = 32 * S;
  // kFast: first scale group of chunk wc (wg) and the lane's piece of it (my_cur), advanced by gstep groups
  // per chunk where that step is constant (g = 128: 2·ks; g = 256: ks; a single group: 0), else recomputed.
  // With four activation rows the two extra running values cost spilled registers (measured slower on an
  // H200), so B = 4 always recomputes them.
  constexpr bool kStepScales = B <= 2;
  const int gstep = !kStepScales ? -1 : prm.fold_blocks == 2 ? 2 * S : prm.group == 256 ? S : G == 1 ? 0 : -1;
  int wg = min(group_of_column(prm, wk * 256), G - 1);
  const Scale* my_cur = my_src + wg * my_stride;
  const index_t my_step = gstep * my_stride;
  // Per-row precision: pr[b] the precision of row b (rows as columns), pc[j] that of tile column 2t + j
  // (0: past the batch or outside the weights' range), p_hi the highest. row_bits may be the previous
  // kernel's output, so this waits first.
  constexpr int BR = kTile ? 1 : B;  // activation rows with their own mma columns (1 for the batch tile)
  // Per-row precision: every row that is folded reads the planes below the weights' p_min, so those of the
  // first ring stages are requested before that wait (committed with the first stage's copies), the rest after it.
  // With a row_mask (hinted), the first stages' copies of every plane and scale run its precisions need are
  // all requested before the wait.
  int pr[BR], pc[2] = {0, 0}, p_hi = P, pmask = 0;
#pragma unroll
  for (int b = 0; b < BR; ++b) pr[b] = 0;
  const bool hinted = kRowBits && prm.row_mask != 0;
  if (hinted) pmask = hinted_precisions<P>(prm, p_hi);
  const int p_early = kRowBits && !hinted ? min(prm.scales.p_min, P) : 0;
  if constexpr (kRowBits) {
#pragma unroll
    for (int i = 0; i < kStages - 1; ++i)
      if (wk + i * S < chunks && live)
#pragma unroll
        for (int b = 0; b < P; ++b)
          if (b < p_early) cp_async16(ring + i * kStageU4 + b * 32 + lane, wsrc + i * wstep + b * plane_stride);
  }
  RowScaleRuns<Scale> rsr(prm, P, ng, pmask);
  auto issue = [&](int b0) {  // b0: planes below it were requested before the wait
    if (wc < chunks && live) {
      uint4* slot = ring + ws;
#pragma unroll
      for (int b = 0; b < P; ++b)
        if (!kRowBits || (b >= b0 && b < p_hi)) cp_async16(slot + b * 32 + lane, wsrc + b * plane_stride);
      if constexpr (kRowBits) {
        rsr.copy_pieces(slot + P * 32, pieces, prm, rt, min(group_of_column(prm, wc * 256), G - 1), G, lane);
      } else if constexpr (!kFast) {
        copy_scale_windows<P>(slot + P * 32, runs, min(group_of_column(prm, wc * 256), G - 1), ng, nb, G, prm.planes, lane);
      } else if (my_dst >= 0) {
        if (gstep < 0) {
          wg = min(group_of_column(prm, wc * 256), G - 1);
          my_cur = my_src + wg * my_stride;
        }
        const bool ok = wg + my_u < G;  // the second group of a last chunk half past K has no entries
        cp_async16_zfill(slot + my_dst, ok ? static_cast<const void*>(my_cur) : prm.planes, ok ? 16 : 0);
      }
    }
    cp_async_commit();
    wc += S;
    wsrc += wstep;
    if constexpr (kStepScales) {  // else (and where gstep < 0) recomputed before use
      wg += gstep;
      my_cur += my_step;
    }
    ws = ws == (kStages - 1) * kStageU4 ? 0 : ws + kStageU4;
  };
  // α or β (b = P) of rows g and g + 8 for scale group grp (window u) of the chunk in `slot`.
  auto scales2 = [&](const uint4* slot, int u, int grp, int b) {
    if constexpr (kFast) {
      return aligned_window_scales<P, Scale>(slot + P * 32, u, b, g);
    } else {
      return window_scales<P>(slot + P * 32, runs, u, grp, b, g);
    }
  };
  if (!kRowBits || hinted) {
#pragma unroll
    for (int i = 0; i < kStages - 1; ++i) issue(p_early);
  }
  if constexpr (kRowBits) {
    const TileRowBits rb = tile_row_bits<P>(prm, 0, B, lane);
    p_hi = rb.p_hi;  // (hinted: at most the hint's)
    pmask = rb.pmask;
    rsr.pmask = pmask;
#pragma unroll
    for (int b = 0; b < BR; ++b) pr[b] = __shfl_sync(0xFFFFFFFFu, rb.pl, b);
    pc[0] = __shfl_sync(0xFFFFFFFFu, rb.pl, 2 * t);
    pc[1] = __shfl_sync(0xFFFFFFFFu, rb.pl, 2 * t + 1);
  }
  // Per-row precision: each row's and tile column's first entry in a group's copied runs (RowScaleRuns::off),
  // kept in registers where that costs no spills (rows as columns: up to two rows; four measured slower).
  constexpr bool kHoistOff = BR <= 2;
  int roff[BR], poff[2];
#pragma unroll
  for (int b = 0; b < BR; ++b) roff[b] = kHoistOff ? rsr.off(max(pr[b], 1)) : 0;
#pragma unroll
  for (int j = 0; j < 2; ++j) poff[j] = rsr.off(max(pc[j], 1));
  if (kRowBits && !hinted) {
#pragma unroll
    for (int i = 0; i < kStages - 1; ++i) issue(p_early);
  }
  pdl_wait();  // xb and xs are written by the kernel before this one

  // Activation planes and scales of the chunk read next: row b at xb[xo + b·chunks·32], xs[so + b·chunks].
  // (Rows as columns only; batch tiles load theirs where they use them.)
  int xo = wk * 32 + lane, so = wk;
  uint4 nx[BR];
  float4 ns[BR];
  // Past the warp's last chunk it reads its first chunk again (in bounds; the values go unused).
  auto load_x = [&](bool ok) {
    const int xo_ok = ok ? xo : wk * 32 + lane, so_ok = ok ? so : wk;
#pragma unroll
    for (int b = 0; b < BR; ++b) {
      const bool okb = n_my > 0 && b < nbatch;  // rows past the batch (B rounded up) count zeros
      nx[b] = okb ? __ldg(xb + (xo_ok + b * chunks * 32)) : make_uint4(0u, 0u, 0u, 0u);
      ns[b] = okb ? __ldg(xs + (so_ok + b * chunks)) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    xo += wstep;
    so += S;
  };
  if constexpr (!kTile) load_x(true);

  const int e3 = t == 3 ? -512 : 512;   // weight of X plane 9 + 2t relative to 4^t (plane 15 is −2^15)
  const float q4 = float(1 << (2 * t));  // 4^t
  const float sum_lane = t == 0 ? 1.0f : 0.0f;  // lane t = 0 adds the (β − Σα)·s·ΣX term
  float yacc[BR][2];
#pragma unroll
  for (int b = 0; b < BR; ++b) yacc[b][0] = yacc[b][1] = 0.0f;
  float yt[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // batch tile: rows g, g + 8 × batch rows 2t, 2t + 1

  int rs = 0, c = wk;  // ring slot (uint4) and chunk of iteration i
  // The chunk loop, built for the kHi planes it multiplies with rows as columns: P, or per-row with up to two
  // rows the batch's highest precision (one instance per count, so that no plane sits behind a run-time
  // check; with four rows the instances spilled registers, so they keep P and the check).
  constexpr bool kLoopPerHi = kRowBits && !kTile && B <= 2;
  constexpr bool kCheckHi = kRowBits && !kLoopPerHi;
  auto chunk_loop = [&](auto hi_c) {
    [[maybe_unused]] constexpr int kHi = decltype(hi_c)::value;  // (rows as columns only)
    for (int i = 0; i < n_my; ++i, c += S) {
      if constexpr (kTile) {
        const int grp0 = kFast ? 0 : min(group_of_column(prm, c * 256), G - 1);
        if constexpr (kRowBits)
          bmma_tile_chunk<P, kStages, true>(
              ring + rs, xb, xs, c, chunks, nbatch, lane, prm.fold_shift(), prm.beta != nullptr,
              [&](const uint4* slot, int u, int p, int b) {
                return rsr.get_at(slot + P * 32, u, (p == pc[0] ? poff[0] : poff[1]) + b, g);
              },
              yt, p_hi, pc);
        else
          bmma_tile_chunk<P, kStages>(
              ring + rs, xb, xs, c, chunks, nbatch, lane, prm.fold_shift(), prm.beta != nullptr,
              [&](const uint4* slot, int u, int b) { return scales2(slot, u, kFast ? 0 : min(grp0 + u, G - 1), b); },
              yt);
      } else {
        uint4 xv[BR];
        float4 sv[BR];
#pragma unroll
        for (int b = 0; b < BR; ++b) {
          xv[b] = nx[b];
          sv[b] = ns[b];
        }
        load_x(i + 1 < n_my);
        cp_async_wait<kStages - 2>();
        __syncwarp();
        const uint4* slot = ring + rs;
        uint4 q[kHi];
#pragma unroll
        for (int b = 0; b < kHi; ++b)
          q[b] = !kCheckHi || b < p_hi ? slot[b * 32 + lane] : make_uint4(0u, 0u, 0u, 0u);
        const int grp0 = kFast ? 0 : min(group_of_column(prm, c * 256), G - 1);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int u = (2 * h) >> prm.fold_shift(), grp = kFast ? 0 : min(grp0 + u, G - 1);
          float acc[BR][2], asum0 = 0.0f, asum1 = 0.0f, rsum[BR][2];  // rsum: kRowBits, Σα per row
#pragma unroll
          for (int b = 0; b < BR; ++b) acc[b][0] = acc[b][1] = rsum[b][0] = rsum[b][1] = 0.0f;
#pragma unroll
          for (int pl = 0; pl < kHi; ++pl) {
            if (kCheckHi && pl >= p_hi) continue;
            std::uint32_t a0, a1;
            bmma_a_operands(component(q[pl], 2 * h), component(q[pl], 2 * h + 1), a0, a1);
            float2 al = make_float2(0.0f, 0.0f);
            if constexpr (!kRowBits) {
              al = scales2(slot, u, grp, pl);
              asum0 += al.x;
              asum1 += al.y;
            }
#pragma unroll
            for (int b = 0; b < BR; ++b) {
              float2 alb = al;
              if constexpr (kRowBits) {
                if (pl >= pr[b]) continue;
                alb = rsr.get_at(slot + P * 32, u, (kHoistOff ? roff[b] : rsr.off(pr[b])) + pl, g);
                rsum[b][0] += alb.x;
                rsum[b][1] += alb.y;
              }
              int dl[4], dh[4];
              bmma16x8x128(dl, a0, a1, component(xv[b], 2 * h));
              bmma16x8x128(dh, a0, a1, component(xv[b], 2 * h + 1));
              const int s0 = dl[0] + 2 * dl[1] + 256 * dh[0] + e3 * dh[1];
              const int s1 = dl[2] + 2 * dl[3] + 256 * dh[2] + e3 * dh[3];
              acc[b][0] = fmaf(alb.x, float(s0), acc[b][0]);
              acc[b][1] = fmaf(alb.y, float(s1), acc[b][1]);
            }
          }
          const float2 be = !kRowBits && prm.beta ? scales2(slot, u, grp, P) : make_float2(0.0f, 0.0f);
#pragma unroll
          for (int b = 0; b < BR; ++b) {
            float o0 = be.x - asum0, o1 = be.y - asum1;
            if constexpr (kRowBits) {
              const float2 bb = prm.beta && pr[b]
                                    ? rsr.get_at(slot + P * 32, u, (kHoistOff ? roff[b] : rsr.off(pr[b])) + pr[b], g)
                                    : make_float2(0.0f, 0.0f);
              o0 = bb.x - rsum[b][0];
              o1 = bb.y - rsum[b][1];
            }
            const float s2 = (h ? sv[b].z : sv[b].x) * q4, sx = (h ? sv[b].w : sv[b].y) * sum_lane;
            yacc[b][0] = fmaf(s2, acc[b][0], fmaf(o0, sx, yacc[b][0]));
            yacc[b][1] = fmaf(s2, acc[b][1], fmaf(o1, sx, yacc[b][1]));
          }
        }
      }
      __syncwarp();
      issue(0);  // refills the slot read in the previous iteration
      rs = rs == (kStages - 1) * kStageU4 ? 0 : rs + kStageU4;
    }
  };
  if constexpr (kLoopPerHi)
    with_planes_up_to<P>(p_hi, chunk_loop);  // (p_hi = 0, no valid row: one plane, no row folds it)
  else
    chunk_loop(std::integral_constant<int, P>{});
  cp_async_wait<0>();

  if constexpr (kTile) {
    // Each lane holds whole sums: rows g, g + 8 of batch rows 2t, 2t + 1.
#pragma unroll
    for (int e = 0; e < 4; ++e) red[((wk * TM + wm) * B + 2 * t + (e & 1)) * 16 + g + 8 * (e >> 1)] = yt[e];
  } else {
    // Lanes t = 0..3 hold shares of the same two rows; then the slices are added in a fixed order.
#pragma unroll
    for (int b = 0; b < B; ++b)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        yacc[b][r] += __shfl_xor_sync(0xFFFFFFFFu, yacc[b][r], 1);
        yacc[b][r] += __shfl_xor_sync(0xFFFFFFFFu, yacc[b][r], 2);
      }
    if (t == 0) {
#pragma unroll
      for (int b = 0; b < B; ++b) {
        red[((wk * TM + wm) * B + b) * 16 + g] = yacc[b][0];
        red[((wk * TM + wm) * B + b) * 16 + g + 8] = yacc[b][1];
      }
    }
  }
  __syncthreads();
  Element* y = static_cast<Element*>(prm.y);
  for (int idx = threadIdx.x; idx < TM * B * 16; idx += blockDim.x) {
    const int r = idx & 15, uu = (idx >> 4) / B, b = (idx >> 4) % B;
    const index_t m = (index_t(blockIdx.x) * TM + uu) * 16 + r;
    if (m >= prm.M || b >= nbatch) continue;
    float sum = 0.0f;
    for (int sl = 0; sl < S; ++sl) sum += red[((sl * TM + uu) * B + b) * 16 + r];
    if (kRowBits && valid_precision<P>(prm, __ldg(prm.row_bits + b)) == 0) sum = __int_as_float(0x7FC00000);  // NaN
    y[index_t(b) * prm.M + m] = from_f32<Element>(sum);
  }
}

// ---- Register-dequantizing warpgroup kernel (wgmma, sm_90a) ---------------------------------------------
// Built only where the device code is compiled for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); the host side
// takes this path only when ANYBCQ_CUDA_SM90A is defined (see Gemm::path).

constexpr int kWgBatch = 128;                  //!< activation rows per packed tile (the wgmma N)
constexpr int kWgTileU4 = kWgBatch * 128 / 16;  //!< one activation tile: 128 rows of 128 bytes (16 KiB)
constexpr int kWgBlockSmem = 113 * 1024;       //!< shared memory per block: two blocks per multiprocessor

//! Chunk slots (planes and scales) per warp for a ring of `stages` words: a chunk's slot is refilled
//! stages + 2 words before the chunk is used, after the last read of the chunk it replaces.
__host__ __device__ constexpr int wg_slots(int stages) { return (stages + 8) / 4; }
//! Shared memory of the warpgroup kernel with `stages` words of nb activation tiles: 1 KiB for the
//! alignment the 128-byte swizzle needs, the tiles, and each warp's chunk slots.
template <class Scale>
__host__ __device__ constexpr int wg_smem_for(int planes, int nb, int stages) {
  return 1024 + stages * nb * kWgTileU4 * 16 + 4 * wg_slots(stages) * stage_u4<Scale>(planes) * 16;
}
//! Words in flight: the most (3..6) that keep two blocks per multiprocessor (p = 2: 5, p = 4: 4, p = 8:
//! 3 with 128-row tiles; 3 with 256-row tiles), else 3.
template <class Scale>
__host__ __device__ constexpr int wg_stages(int planes, int nb) {
  for (int s = 6; s > 3; --s)
    if (wg_smem_for<Scale>(planes, nb, s) <= kWgBlockSmem) return s;
  return 3;
}
template <class Scale>
__host__ __device__ constexpr int wg_smem_bytes(int planes, int nb) {
  return wg_smem_for<Scale>(planes, nb, wg_stages<Scale>(planes, nb));
}

//! Pair index (two activations) of a 64-column word as the A operand of dequant_step consumes it: step
//! s, k positions 16s + 2t + 8e + h hold column 16t + 4s + 2e + h. Returns the column pair behind
//! operand pair ps = 8s + 4e + t.
__host__ __device__ constexpr int wg_column_pair(int ps) { return 8 * (ps & 3) + 2 * (ps >> 3) + ((ps >> 2) & 1); }

//! Precision split on the warpgroup kernel: the sorted rows of each precision q = 1 … kMaxBits (those of
//! split_rows_kernel's segment table `seg`; q = 0, the rows of a precision the weights lack, is not packed)
//! start on a new 128-row packed tile, so that every tile holds rows of one precision. At most
//! ⌈batch / 128⌉ + P − 1 tiles for P precisions. The packed tiles of precision q:
__host__ __device__ inline index_t split_tiles(const int* __restrict__ seg, int q) {
  return (seg[2 * q + 1] + kWgBatch - 1) / kWgBatch;
}
//! … the first packed tile of precision p:
__host__ __device__ inline index_t split_tile_base(const int* __restrict__ seg, int p) {
  index_t base = 0;
  for (int q = 1; q < p; ++q) base += split_tiles(seg, q);
  return base;
}
//! … and the row of x and y at packed row r (row_index[i]: the row at sorted position i), or −1 for a row
//! past its precision's segment or past the last tile.
__host__ __device__ inline index_t split_packed_row(const int* __restrict__ seg, const int* __restrict__ row_index,
                                                    index_t r) {
  const index_t tile = r / kWgBatch;
  index_t base = 0;
  for (int q = 1; q <= kMaxBits; ++q) {
    const index_t n = split_tiles(seg, q);
    if (tile < base + n) {
      const index_t local = (tile - base) * kWgBatch + r % kWgBatch;
      if (local >= seg[2 * q + 1]) return -1;
#if defined(__CUDA_ARCH__)
      return __ldg(row_index + seg[2 * q] + local);
#else
      return row_index[seg[2 * q] + local];
#endif
    }
    base += n;
  }
  return -1;
}

//! Packs x (batch×K) into the operand tiles of the warpgroup kernel: for every 128-row batch block and
//! 64-column word one 16 KiB tile, row r of 128 bytes holding the word's columns in operand order
//! (wg_column_pair), its 16-byte pieces swizzled as the tensor cores read them (piece c at c ^ (r mod 8)).
//! Rows past the batch and columns past K are zeros. kSplit (precision split): packed tile rows are the
//! sorted rows of one precision (split_packed_row); rows past a segment are zeros.
template <class Element, bool kSplit = false>
__global__ void __launch_bounds__(256) wg_pack_x_kernel(const Element* __restrict__ x, uint4* __restrict__ xp,
                                                        index_t batch, int K, int words, index_t total,
                                                        const int* __restrict__ seg,
                                                        const int* __restrict__ row_index) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += index_t(gridDim.x) * blockDim.x) {
    const int piece = int(i & 7), r = int((i >> 3) & (kWgBatch - 1));
    const index_t tile = i >> 10;
    const int j = int(tile % words);
    index_t n = (tile / words) * kWgBatch + r;
    bool valid = n < batch;
    if constexpr (kSplit) {
      const index_t src = split_packed_row(seg, row_index, n);
      valid = src >= 0;
      n = valid ? src : 0;
    }
    const int lc = piece ^ (r & 7);
    std::uint32_t v[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int col = 64 * j + 2 * wg_column_pair(4 * lc + e);
      v[e] = (valid && col < K) ? __ldg(reinterpret_cast<const unsigned*>(x + n * K + col)) : 0u;
    }
    xp[i] = make_uint4(v[0], v[1], v[2], v[3]);
  }
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
//! Makes this thread's ordinary shared-memory writes (cp.async included) visible to the tensor cores.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
//! Keeps the compiler from moving accesses to v across the wgmma fences and waits.
__device__ __forceinline__ void wg_fence_operand(float& v) { asm volatile("" : "+f"(v)::"memory"); }

//! Shared-memory matrix descriptor of a K-major operand tile with 128-byte swizzle: rows of 128 bytes,
//! 8-row groups 1024 bytes apart (the tile starts on 1024 bytes).
__device__ __forceinline__ std::uint64_t wg_desc(unsigned saddr) {
  return std::uint64_t((saddr & 0x3FFFFu) >> 4) | (std::uint64_t(1) << 16) | (std::uint64_t(1024 >> 4) << 32) |
         (std::uint64_t(1) << 62);
}

#define ANYBCQ_WG_D8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
                        "+f"(d[i + 6]), "+f"(d[i + 7])
#define ANYBCQ_WG_DREGS                                                                                            \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
  "%24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "  \
  "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

#define ANYBCQ_WG_MMA(T)                                                                                   \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                      \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." T "." T " " ANYBCQ_WG_DREGS                        \
               ", {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"                                                 \
               : ANYBCQ_WG_D8(0), ANYBCQ_WG_D8(8), ANYBCQ_WG_D8(16), ANYBCQ_WG_D8(24), ANYBCQ_WG_D8(32),         \
                 ANYBCQ_WG_D8(40), ANYBCQ_WG_D8(48), ANYBCQ_WG_D8(56)                                           \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(1))

//! d (64 × 128, fp32, wgmma accumulator layout) += A (64 × 16 from registers, mma A layout per warp) ·
//! B (16 × 128 from the shared-memory tile `desc`, K-major).
template <class E>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], const std::uint32_t (&a)[4], std::uint64_t desc) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if constexpr (std::is_same_v<E, __half>)
    ANYBCQ_WG_MMA("f16");
  else
    ANYBCQ_WG_MMA("bf16");
#else
  (void)d, (void)a, (void)desc;
#endif
}
#undef ANYBCQ_WG_MMA
#undef ANYBCQ_WG_DREGS

//! Register-dequantizing warpgroup kernel (uniform precision kPlanes; sm_90a). Block (row block,
//! batch block): one warpgroup; warp w rebuilds Ŵ_p of row tile 4·blockIdx.x + w (the same register
//! dequantization as dqmma_kernel, one 64-column word at a time) and the warpgroup multiplies its 64
//! rows with the word's activation tiles of kNB·128 batch rows (4·kNB wgmma m64n128k16, fp32
//! accumulators; kNB = 2 halves the dequantization per batch row where registers allow). Two blocks
//! share a multiprocessor. Activation tiles (packed by wg_pack_x_kernel) stream through a ring
//! of kStages words, planes and scales through each warp's kSlots chunk slots one chunk ahead,
//! all by cp.async. A word is dequantized while the tensor cores work on the previous one. K may be
//! split over gridDim.z blocks (slice z takes chunks [z·chunks/Z, (z+1)·chunks/Z)): with one slice the
//! block writes y; with more, it writes its fp32 partial sums to part[z] (batch × M) and
//! wg_reduce_kernel adds the slices in order. Either way each output is written once, no atomics.
//! kSplit (precision split, kNB = 1): this launch takes precision kPlanes's packed tiles (split_tile_base;
//! prm.seg = its segment, prm.row_index the sorted order); batch block y takes the segment's rows
//! 128y … 128y + 127 (a block past the segment leaves at once) and writes row row_index[seg[0] + n] of y,
//! or packed row n of part[z] (prm.batch = the packed rows).
template <class Element, class Scale, int kPlanes, int kNB, bool kSplit = false>
__global__ void __launch_bounds__(128, 1) wgdq_kernel(const FusedParams<Scale> prm, const uint4* __restrict__ xp,
                                                      int words, float* __restrict__ part) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(!kSplit || kNB == 1, "a precision split takes one 128-row tile per block");
  index_t tile_y = blockIdx.y;
  index_t seg_count = 0, seg_first = 0;
  // Precision split: the next precision's launch (programmatic) may start while this one's last blocks
  // run (from their start where prm.early_trigger, else once their main loop is done); it reads nothing
  // this one writes. Block (0, 0, 0) waits for the launch before this one before it leaves, so that each
  // launch completes after the one before it (a kernel that waits for the last one then sees every
  // launch's rows).
  const bool chain = kSplit && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0;
  if constexpr (kSplit) {
    if (prm.early_trigger) pdl_launch_dependents();
    seg_count = prm.seg[1];
    if (index_t(blockIdx.y) * kWgBatch >= seg_count) {
      if (chain) pdl_wait();
      return;
    }
    seg_first = prm.seg[0];
    tile_y += split_tile_base(prm.seg - 2 * kPlanes, kPlanes);
  }
  constexpr int kStages = wg_stages<Scale>(kPlanes, kNB);
  constexpr int kSlots = wg_slots(kStages);
  static_assert(kStages >= 3 && kStages <= 6, "activation ring of 3..6 words (wg_slots)");
  constexpr int kThreads = 128;
  constexpr int kStageU4 = stage_u4<Scale>(kPlanes);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const index_t rt_own = index_t(blockIdx.x) * 4 + warp;
  const index_t rt = rt_own < prm.row_tiles ? rt_own : prm.row_tiles - 1;  // past the end: a copy, not stored
  const index_t n_base = tile_y * (kNB * kWgBatch);
  extern __shared__ uint4 smem_wg[];
  const unsigned sraw = static_cast<unsigned>(__cvta_generic_to_shared(smem_wg));
  const unsigned pad = (1024u - (sraw & 1023u)) & 1023u;
  uint4* xs = smem_wg + pad / 16;
  const unsigned xs_addr = sraw + pad;
  uint4* ring = xs + kStages * kNB * kWgTileU4 + warp * (kSlots * kStageU4);

  const index_t plane_stride = prm.row_tiles * prm.chunks * 32;  // in uint4
  const uint4* wtile = prm.planes + rt * prm.chunks * 32 + lane;
  const TileScaleRuns<Scale> runs(prm, rt, kPlanes);
  const int fold_shift = prm.fold_shift();
  const int ng = 4 >> fold_shift;
  const int nb = kPlanes + (prm.beta ? 1 : 0);
  const int G = int(prm.scales.groups);
  const int c_lo = int(blockIdx.z * prm.chunks / gridDim.z), c_hi = int((blockIdx.z + 1) * prm.chunks / gridDim.z);
  const int j_hi = 4 * c_hi;  // words of this K slice: 4·c_lo … j_hi − 1
  const uint4* xsrc = xp + tile_y * kNB * words * kWgTileU4 + threadIdx.x;

  // Planes and scales of chunk c for this warp, into slot c mod kSlots.
  auto copy_chunk = [&](int c) {
    if (c < c_hi) {
      uint4* slot = ring + (c % kSlots) * kStageU4;
#pragma unroll
      for (int b = 0; b < kPlanes; ++b) cp_async16(slot + b * 32 + lane, wtile + b * plane_stride + index_t(c) * 32);
      copy_scale_windows<kPlanes>(slot + kPlanes * 32, runs, min(group_of_column(prm, c * 256), G - 1), ng, nb, G,
                                  prm.planes, lane);
    }
  };
  // One commit group per 64-column word j: its activation tile and, at the first word of a chunk, the
  // next chunk's planes and scales (dequantizing a word needs its chunk before the word's own wait).
  auto issue = [&](int j) {
    if (j < j_hi) {
#pragma unroll
      for (int h = 0; h < kNB; ++h) {
        uint4* dst = xs + ((j % kStages) * kNB + h) * kWgTileU4 + threadIdx.x;
        const uint4* src = xsrc + (index_t(h) * words + j) * kWgTileU4;
#pragma unroll
        for (int e = 0; e < kWgTileU4 / kThreads; ++e) cp_async16(dst + kThreads * e, src + kThreads * e);
      }
      if ((j & 3) == 0) copy_chunk((j >> 2) + 1);
    }
    cp_async_commit();
  };
  copy_chunk(c_lo);
  cp_async_commit();
#pragma unroll
  for (int j = 0; j < kStages - 2; ++j) issue(4 * c_lo + j);
  cp_async_wait<kStages - 2>();  // chunk c_lo's planes and scales
  __syncwarp();

  float d[kNB][64];
#pragma unroll
  for (int h = 0; h < kNB; ++h)
#pragma unroll
    for (int i = 0; i < 64; ++i) d[h][i] = 0.0f;
  std::uint32_t a[2][4][4];  // A operands of two words (double buffer), 4 steps × 4 registers
  DequantConsts<Element, kPlanes> dc;
  uint4 q[kPlanes];

  for (int c = c_lo; c < c_hi; ++c) {
    const int grp0 = min(group_of_column(prm, c * 256), G - 1);
    const uint4* slot = ring + (c % kSlots) * kStageU4;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const int j = 4 * c + w;
      if (w == 0) {
#pragma unroll
        for (int b = 0; b < kPlanes; ++b) q[b] = slot[b * 32 + lane];
      }
      if ((w & ((1 << fold_shift) - 1)) == 0) {  // first word of a group: its scales
        const int u = w >> fold_shift;
        window_consts(slot + kPlanes * 32, runs, u, min(grp0 + u, G - 1), g, prm.beta != nullptr, dc);
      }
      // Dequantize word j while the tensor cores run word j − 1 (its A registers were freed by the
      // wait of the previous iteration).
      std::uint32_t wd[kPlanes];
#pragma unroll
      for (int b = 0; b < kPlanes; ++b) wd[b] = component(q[b], w);
#pragma unroll
      for (int s = 0; s < 4; ++s) dequant_step<Element, kPlanes>(wd, s, dc, a[w & 1][s]);
      cp_async_wait<kStages - 3>();  // word j's tile landed, and every older group (chunk c + 1's planes at w = 0)
      fence_proxy_async();
      __syncthreads();  // every thread's copies visible; every warp done with word j − 2 (its wgmma waited)
      issue(j + kStages - 2);
      const unsigned tile = xs_addr + unsigned((j % kStages) * kNB * kWgTileU4 * 16);
#pragma unroll
      for (int h = 0; h < kNB; ++h)
#pragma unroll
        for (int i = 0; i < 64; ++i) wg_fence_operand(d[h][i]);
      wgmma_fence();
#pragma unroll
      for (int s = 0; s < 4; ++s)
#pragma unroll
        for (int h = 0; h < kNB; ++h)
          wgmma_m64n128k16<Element>(d[h], a[w & 1][s], wg_desc(tile + unsigned(h * kWgTileU4 * 16) + 32 * s));
      wgmma_commit();
#pragma unroll
      for (int h = 0; h < kNB; ++h)
#pragma unroll
        for (int i = 0; i < 64; ++i) wg_fence_operand(d[h][i]);
      wgmma_wait<1>();  // word j − 1 done: its A registers and (after the next barrier) its tile are free
    }
  }
  wgmma_wait<0>();
#pragma unroll
  for (int h = 0; h < kNB; ++h)
#pragma unroll
    for (int i = 0; i < 64; ++i) wg_fence_operand(d[h][i]);
  cp_async_wait<0>();
  if constexpr (kSplit)
    if (!prm.early_trigger) pdl_launch_dependents();

  if (rt_own < prm.row_tiles) {
    Element* y = static_cast<Element*>(prm.y);
    float* py = part ? part + index_t(blockIdx.z) * prm.batch * prm.M : nullptr;
    const index_t m0 = rt_own * 16 + g;
#pragma unroll
    for (int nb = 0; nb < kNB; ++nb)
#pragma unroll
      for (int i = 0; i < 16; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const index_t m = m0 + 8 * h, n = n_base + nb * kWgBatch + 8 * i + 2 * t + e;
            if constexpr (kSplit) {
              const index_t local = index_t(blockIdx.y) * kWgBatch + 8 * i + 2 * t + e;
              if (m < prm.M && local < seg_count) {
                if (py)
                  py[n * prm.M + m] = d[nb][4 * i + 2 * h + e];
                else
                  y[index_t(__ldg(prm.row_index + seg_first + local)) * prm.M + m] =
                      from_f32<Element>(d[nb][4 * i + 2 * h + e]);
              }
            } else if (m < prm.M && n < prm.batch) {
              if (py)
                py[n * prm.M + m] = d[nb][4 * i + 2 * h + e];
              else
                y[n * prm.M + m] = from_f32<Element>(d[nb][4 * i + 2 * h + e]);
            }
          }
  }
  if (chain) pdl_wait();
#else
  (void)prm, (void)xp, (void)words, (void)part;
#endif
}

//! y = Σ_z part[z] in slice order (z = 0, 1, …), converted once: the K slices of the warpgroup kernel.
//! kSplit (precision split): part holds packed rows of M outputs; each goes to its row of y
//! (split_packed_row), the padding rows nowhere.
template <class Element, bool kSplit = false>
__global__ void __launch_bounds__(256) wg_reduce_kernel(const float* __restrict__ part, Element* __restrict__ y,
                                                        index_t total, int splits, index_t M,
                                                        const int* __restrict__ seg,
                                                        const int* __restrict__ row_index) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += index_t(gridDim.x) * blockDim.x) {
    index_t out = i;
    if constexpr (kSplit) {
      const index_t r = i / M, src = split_packed_row(seg, row_index, r);
      if (src < 0) continue;
      out = src * M + (i - r * M);
    }
    float v = part[i];
    for (int z = 1; z < splits; ++z) v += part[z * total + i];
    y[out] = from_f32<Element>(v);
  }
}

//! d (64 × 256, fp32, wgmma accumulator layout) += A (64 × 16, shared-memory tile `adesc`, K-major) ·
//! B (16 × 256, shared-memory tile `bdesc`, K-major).
#define ANYBCQ_WGSS_MMA256(T)                                                                                         \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"                                                          \
               "wgmma.mma_async.sync.aligned.m64n256k16.f32." T "." T " {"                                            \
               "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "      \
               "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, "      \
               "%40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, "      \
               "%59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, "      \
               "%78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, "      \
               "%97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, "        \
               "%113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127 "            \
               "}, %128, %129, p, 1, 1, 0, 0;\n}\n"                                                                   \
               : ANYBCQ_WG_D8(0), ANYBCQ_WG_D8(8), ANYBCQ_WG_D8(16), ANYBCQ_WG_D8(24), ANYBCQ_WG_D8(32),              \
                 ANYBCQ_WG_D8(40), ANYBCQ_WG_D8(48), ANYBCQ_WG_D8(56), ANYBCQ_WG_D8(64), ANYBCQ_WG_D8(72),            \
                 ANYBCQ_WG_D8(80), ANYBCQ_WG_D8(88), ANYBCQ_WG_D8(96), ANYBCQ_WG_D8(104), ANYBCQ_WG_D8(112),          \
                 ANYBCQ_WG_D8(120)                                                                                    \
               : "l"(adesc), "l"(bdesc), "r"(1))
template <class E>
__device__ __forceinline__ void wgmma_ss(float (&d)[128], std::uint64_t adesc, std::uint64_t bdesc) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if constexpr (std::is_same_v<E, __half>)
    ANYBCQ_WGSS_MMA256("f16");
  else
    ANYBCQ_WGSS_MMA256("bf16");
#else
  (void)d, (void)adesc, (void)bdesc;
#endif
}
#undef ANYBCQ_WGSS_MMA256
#undef ANYBCQ_WG_D8

// ---- Warp-specialized warpgroup kernel (wgmma from shared memory, sm_90a) -------------------------------
// A block has three warpgroups: warpgroup 0 dequantizes, warpgroups 1 and 2 run the tensor cores. They
// meet through a ring of kS stages (one 64-column word each: Ŵ_p of the block's 128 weight rows and the
// word's activation tile of 256 batch rows), each with a "full" and an "empty" mbarrier.

//! mbarrier primitives (shared::cta addresses).
__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
//! Arrives and expects `bytes` more of asynchronous copies (cp.async.bulk) on the current phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
//! Waits until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
  unsigned done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
//! Bulk copy of `bytes` (multiple of 16) from global to shared memory, completing on mbarrier `bar`.
__device__ __forceinline__ void bulk_copy_g2s(unsigned dst, const void* src, unsigned bytes, unsigned bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}

constexpr int kWsThreads = 384;      //!< threads of the warp-specialized kernel (three warpgroups)
constexpr int kWsRows = 128;         //!< weight rows per block (8 row tiles, two per dequantizing warp)
constexpr int kWsBatch = 2 * kWgBatch;  //!< batch rows per block (two packed activation tiles)
constexpr int kWsATileBytes = kWsRows * 128;  //!< one stage's Ŵ_p tile: 128 rows × 64 columns, 128-byte swizzle
constexpr int kWsBTileBytes = kWsBatch * 128;  //!< one stage's activation tile: 256 rows × 64 columns
//! 16-byte pieces of one row tile's scale windows for a 256-column chunk (up to 4 groups × (p + 1)).
template <class Scale>
__host__ __device__ constexpr int ws_scale_u4(int planes) { return 4 * (planes + 1) * scale_window<Scale>(); }
//! Shared memory of the warp-specialized kernel with `stages` stages: 1 KiB for the swizzle alignment,
//! the stages, two chunk slots of scale windows per dequantizing warp and row tile, and 2·stages mbarriers.
template <class Scale>
__host__ __device__ constexpr int ws_smem_for(int planes, int stages) {
  return 1024 + stages * (kWsATileBytes + kWsBTileBytes) + 4 * 2 * 2 * ws_scale_u4<Scale>(planes) * 16 + 2 * stages * 8;
}
//! Stages: the most (2..6) that fit one block per multiprocessor (p ≤ 5: 4, p ≥ 6: 3).
template <class Scale>
__host__ __device__ constexpr int ws_stages(int planes) {
  for (int s = 6; s > 2; --s)
    if (ws_smem_for<Scale>(planes, s) <= 227 * 1024) return s;
  return 2;
}
template <class Scale>
__host__ __device__ constexpr int ws_smem_bytes(int planes) {
  return ws_smem_for<Scale>(planes, ws_stages<Scale>(planes));
}
//! Stores four 8 × 8 matrices of 16-bit values (matrix q from register r[q] of every lane, as the mma A
//! fragment holds them); lane L gives the address of row L mod 8 of matrix L / 8.
__device__ __forceinline__ void stmatrix_x4(unsigned addr, const std::uint32_t (&r)[4]) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r[0]), "r"(r[1]),
               "r"(r[2]), "r"(r[3])
               : "memory");
}

//! Warp-specialized register-dequantizing warpgroup kernel (uniform precision kPlanes; sm_90a). Block
//! (row block, batch block, K slice): 128 weight rows × 256 batch rows.
//!  * Warpgroup 0 (dequantizing): warp w takes row tiles 8·blockIdx.x + 2w and + 2w + 1. Their planes
//!    come from global memory into registers one chunk ahead (p ≤ 4; at the chunk's start above), their
//!    scales through two chunk slots in shared memory (cp.async). Each 64-column word of Ŵ_p is rebuilt
//!    in registers (the same arithmetic as dqmma_kernel) and stored with stmatrix into the stage's A tile,
//!    in the 128-byte-swizzled K-major layout the tensor cores read (columns in the order of
//!    wg_column_pair, as in the packed activations). Thread 0 also starts the bulk copy of the next
//!    word's activation tile (packed by wg_pack_x_kernel) into its stage.
//!  * Warpgroups 1 and 2 (tensor cores): warpgroup 1 + c multiplies weight rows 64c … 64c + 63 with the
//!    stage's activation tile, 4 wgmma m64n256k16 per word from shared memory into fp32 accumulators,
//!    and releases the stage as soon as those have completed.
//! K may be split over gridDim.z blocks (as wgdq_kernel): with more than one slice the block writes its
//! fp32 partial sums to part[z] (batch × M) and wg_reduce_kernel adds them in order. Every output is
//! written once, no atomics.
template <class Element, class Scale, int kPlanes>
__global__ void __launch_bounds__(kWsThreads, 1) wgss_kernel(const FusedParams<Scale> prm, const uint4* __restrict__ xp,
                                                             int words, float* __restrict__ part) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kS = ws_stages<Scale>(kPlanes);
  constexpr int kStageBytes = kWsATileBytes + kWsBTileBytes;
  constexpr int kScaleU4 = ws_scale_u4<Scale>(kPlanes);
  constexpr bool kPrefetch = kPlanes <= 4;  // next chunk's planes in registers
  // p ≤ 3: the next chunk's scale copies and plane loads are issued after the chunk's first word is out
  // (H200, batch 256: 3-8% less time at p = 3), else before its first word (p = 4: 2-4% less time).
  constexpr bool kNextAfterFirst = kPlanes <= 3;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  extern __shared__ uint4 smem_ws[];
  const unsigned sraw = static_cast<unsigned>(__cvta_generic_to_shared(smem_ws));
  const unsigned pad = (1024u - (sraw & 1023u)) & 1023u;
  const unsigned st_addr = sraw + pad;  // stage s: A tile at st_addr + s·kStageBytes, B tile after it
  uint4* ring_all = smem_ws + (pad + kS * kStageBytes) / 16;
  const unsigned bars = sraw + pad + kS * kStageBytes + 4 * 2 * 2 * kScaleU4 * 16;  // full[kS], empty[kS]
  const int c_lo = int(blockIdx.z * prm.chunks / gridDim.z), c_hi = int((blockIdx.z + 1) * prm.chunks / gridDim.z);
  const int j_lo = 4 * c_lo, j_hi = 4 * c_hi;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kS; ++s) {
      mbar_init(bars + 8 * s, 128 + 1);  // full: every dequantizing thread, plus the copy's expect_tx
      mbar_init(bars + 8 * (kS + s), 8);  // empty: one arrival per tensor-core warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warp < 4) {
    // ---- dequantizing warpgroup ----
    const index_t plane_stride = prm.row_tiles * prm.chunks * 32;  // in uint4
    const uint4* wtile[2];
    index_t rt[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const index_t own = index_t(blockIdx.x) * 8 + 2 * warp + i;
      rt[i] = own < prm.row_tiles ? own : prm.row_tiles - 1;  // past the end: a copy, not stored
      wtile[i] = prm.planes + rt[i] * prm.chunks * 32 + lane;
    }
    const TileScaleRuns<Scale> runs0(prm, rt[0], kPlanes), runs1(prm, rt[1], kPlanes);
    const int fold_shift = prm.fold_shift();
    const int ng = 4 >> fold_shift;
    const int nb = kPlanes + (prm.beta ? 1 : 0);
    const int G = int(prm.scales.groups);
    uint4* ring = ring_all + warp * (2 * 2 * kScaleU4);  // [slot][tile]
    auto copy_scales = [&](int c) {
      if (c < c_hi) {
        uint4* slot = ring + (c & 1) * 2 * kScaleU4;
        const int grp0 = min(group_of_column(prm, c * 256), G - 1);
        copy_scale_windows<kPlanes>(slot, runs0, grp0, ng, nb, G, prm.planes, lane);
        copy_scale_windows<kPlanes>(slot + kScaleU4, runs1, grp0, ng, nb, G, prm.planes, lane);
      }
      cp_async_commit();
    };
    auto load_planes = [&](int c, uint4 (&q)[2][kPlanes]) {
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int b = 0; b < kPlanes; ++b) q[i][b] = __ldg(wtile[i] + b * plane_stride + index_t(c) * 32);
    };
    // Activation tile of word j into stage s (thread 0): the stage's previous word must be done.
    const char* xsrc = reinterpret_cast<const char*>(xp);
    const index_t bb = index_t(blockIdx.y);
    auto copy_x = [&](int j, int s, unsigned ph) {
      const unsigned full = bars + 8 * s;
      mbar_wait(bars + 8 * (kS + s), ph ^ 1u);
      mbar_arrive_expect_tx(full, kWsBTileBytes);
      const unsigned b_tile = st_addr + unsigned(s * kStageBytes) + kWsATileBytes;
#pragma unroll
      for (int h = 0; h < 2; ++h)
        bulk_copy_g2s(b_tile + h * (kWgTileU4 * 16), xsrc + ((2 * bb + h) * words + j) * index_t(kWgTileU4 * 16),
                      kWgTileU4 * 16, full);
    };
    // stmatrix addresses: lane L writes row 32·warp + 16·i + 8·((L >> 3) & 1) + (L & 7) of the A tile
    // (tile i), piece 2·step + (L >> 4) of it, swizzled (piece ^ (row mod 8)).
    const unsigned srow = unsigned(32 * warp + 8 * ((lane >> 3) & 1) + (lane & 7));
    unsigned soff[4];
#pragma unroll
    for (int st = 0; st < 4; ++st) soff[st] = srow * 128 + ((unsigned(2 * st + (lane >> 4)) ^ unsigned(lane & 7)) * 16);
    int s = 0;
    unsigned ph = 0;
    if (threadIdx.x == 0) copy_x(j_lo, 0, 0);
    copy_scales(c_lo);
    uint4 q[2][kPlanes], qn[2][kPlanes];
    if constexpr (kPrefetch) load_planes(c_lo, qn);
    for (int c = c_lo; c < c_hi; ++c) {
      if constexpr (kPrefetch) {
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int b = 0; b < kPlanes; ++b) q[i][b] = qn[i][b];
        if constexpr (!kNextAfterFirst)
          if (c + 1 < c_hi) load_planes(c + 1, qn);
      } else {
        load_planes(c, q);
      }
      if constexpr (kNextAfterFirst) {
        cp_async_wait<0>();  // chunk c's scales landed (requested during chunk c − 1)
      } else {
        __syncwarp();  // every lane done with slot (c + 1) & 1 (chunk c − 1)
        copy_scales(c + 1);
        cp_async_wait<1>();  // chunk c's scales landed
      }
      __syncwarp();
      const uint4* slot = ring + (c & 1) * 2 * kScaleU4;
      const int grp0 = min(group_of_column(prm, c * 256), G - 1);
      DequantConsts<Element, kPlanes> dc[2];
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const int j = 4 * c + w;
        if ((w & ((1 << fold_shift) - 1)) == 0) {
          const int u = w >> fold_shift;
          window_consts(slot, runs0, u, min(grp0 + u, G - 1), g, prm.beta != nullptr, dc[0]);
          window_consts(slot + kScaleU4, runs1, u, min(grp0 + u, G - 1), g, prm.beta != nullptr, dc[1]);
        }
        const int s_next = s + 1 == kS ? 0 : s + 1;
        if (threadIdx.x == 0 && j + 1 < j_hi) copy_x(j + 1, s_next, s_next == 0 ? ph ^ 1u : ph);
        const unsigned a_tile = st_addr + unsigned(s * kStageBytes);
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          std::uint32_t wd[kPlanes];
#pragma unroll
          for (int b = 0; b < kPlanes; ++b) wd[b] = component(q[i][b], w);
          std::uint32_t a[4][4];
#pragma unroll
          for (int st = 0; st < 4; ++st) dequant_step<Element, kPlanes>(wd, st, dc[i], a[st]);
          if (i == 0) mbar_wait(bars + 8 * (kS + s), ph ^ 1u);  // the tensor cores are done with the stage's previous word
#pragma unroll
          for (int st = 0; st < 4; ++st) stmatrix_x4(a_tile + unsigned(i * 16 * 128) + soff[st], a[st]);
        }
        fence_proxy_async();  // the stores, visible to the tensor cores
        mbar_arrive(bars + 8 * s);
        s = s_next;
        if (s == 0) ph ^= 1u;
        if constexpr (kNextAfterFirst)
          if (w == 0) {
            __syncwarp();  // every lane done with slot (c + 1) & 1 (chunk c − 1)
            copy_scales(c + 1);
            if constexpr (kPrefetch)
              if (c + 1 < c_hi) load_planes(c + 1, qn);
          }
      }
    }
    cp_async_wait<0>();
  } else {
    // ---- tensor-core warpgroups ----
    const int wg = (warp >> 2) - 1;  // 0 or 1: weight rows 64·wg … 64·wg + 63 of the block
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) d[i] = 0.0f;
    int s = 0;
    unsigned ph = 0;
    for (int j = j_lo; j < j_hi; ++j) {
      const unsigned a_tile = st_addr + unsigned(s * kStageBytes) + unsigned(wg * 64 * 128);
      const unsigned b_tile = st_addr + unsigned(s * kStageBytes) + kWsATileBytes;
      mbar_wait(bars + 8 * s, ph);
#pragma unroll
      for (int i = 0; i < 128; ++i) wg_fence_operand(d[i]);
      wgmma_fence();
#pragma unroll
      for (int st = 0; st < 4; ++st) wgmma_ss<Element>(d, wg_desc(a_tile + 32 * st), wg_desc(b_tile + 32 * st));
      wgmma_commit();
#pragma unroll
      for (int i = 0; i < 128; ++i) wg_fence_operand(d[i]);
      wgmma_wait<0>();  // this word's wgmma have read their stage (the other warpgroup's keep the tensor cores busy)
      if (lane == 0) mbar_arrive(bars + 8 * (kS + s));
      if (++s == kS) s = 0, ph ^= 1u;
    }
    wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < 128; ++i) wg_fence_operand(d[i]);

    const index_t rt_own = index_t(blockIdx.x) * 8 + 4 * wg + (warp & 3);
    if (rt_own < prm.row_tiles) {
      Element* y = static_cast<Element*>(prm.y);
      float* py = part ? part + index_t(blockIdx.z) * prm.batch * prm.M : nullptr;
      const index_t m0 = rt_own * 16 + g;
      const index_t n_base = index_t(blockIdx.y) * kWsBatch;
#pragma unroll
      for (int i = 0; i < kWsBatch / 8; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const index_t m = m0 + 8 * h, n = n_base + 8 * i + 2 * t + e;
            if (m < prm.M && n < prm.batch) {
              if (py)
                py[n * prm.M + m] = d[4 * i + 2 * h + e];
              else
                y[n * prm.M + m] = from_f32<Element>(d[4 * i + 2 * h + e]);
            }
          }
    }
  }
#else
  (void)prm, (void)xp, (void)words, (void)part;
#endif
}

}  // namespace detail

//! y = x·Ŵ_pᵀ with weights in layout::MmaTiled on the device.
//! Element: __half or __nv_bfloat16 (activations and outputs); Scale: the weights' scale type.
//! Usage: can_implement(args) → workspace_size(args) (allocate once) → run(args, ws, bytes, stream).
//! run() allocates nothing, needs no zeroed output, writes every y element, is deterministic and can
//! be captured in a CUDA graph.
template <class Element, class Scale = half_t, class Tuning = DefaultTuning>
class Gemm {
  static_assert(is_element_v<Element>, "Element must be __half or __nv_bfloat16");
  static_assert(is_storage_float_v<Scale>, "Scale must be float, half_t or bfloat16_t");

 public:
  using WeightsView = MultiPrecisionView<layout::MmaTiled, Scale>;

  //! One call's operands. x: batch×K row-major, y: batch×M row-major (device pointers).
  struct Arguments {
    WeightsView weights{};
    const Element* x = nullptr;
    Element* y = nullptr;
    index_t batch = 0;
    int bits = 0;                   //!< precision of every row (used when row_bits is null)
    const int* row_bits = nullptr;  //!< device array of `batch` precisions, one per row of x; or null
    //! Per-row precision: the precisions rows of this call may ask for, bit p for precision p, where the host
    //! knows them (a scheduler that picks each request's precision); 0 = not given. With it the kernels
    //! request the first planes and scale runs those precisions need before they wait for the kernel ahead
    //! of them in the stream (row_bits may be its output), and the splits skip precisions outside it. A row
    //! whose precision is outside the mask gets NaN, as one whose precision the weights lack. Every bit set
    //! must be a precision the weights have.
    unsigned row_bits_mask = 0;
    GemmPath path = GemmPath::kAuto;  //!< force a path (tests, benchmarks); kAuto lets the dispatcher pick
    //! K slices: per block on the register-dequantizing path (1, 2, 4, … ≤ Tuning::kDqWarps) and the LUT
    //! path (1, 2, 4, 8); blocks per output tile on the warpgroup path and split-wg (1, 2, 4, … ≤
    //! Tuning::kWgMaxSplits, at most one per 256-column chunk); 0 = automatic.
    int k_slices = 0;
    //! Binary-mma and register-dequantizing paths and the precision splits: launch with programmatic
    //! dependent launch, so that a kernel starts fetching weights while the one before it in the stream
    //! finishes (split-wg: each precision's launch while the one before it drains); results are
    //! unchanged. A compute capability 9.0 feature: set false for builds that run on older devices.
    bool pdl = true;
    //! Binary-mma path: take the activations' bit planes from the workspace, where an earlier run() with
    //! the same x, batch and K left them, instead of packing x again: for matrices that share an input
    //! (Q, K and V; gate and up), pack once and skip one kernel and one dependency per further call. The
    //! earlier run must be ordered before this one (same stream, or synchronized) and nothing may have
    //! written the workspace in between; x is not read (it may be null).
    bool reuse_packed_x = false;
  };

  Gemm() = default;
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  ~Gemm() {
    if (handle_) cublasDestroy(handle_);
  }

  //! Whether the kernels can take `args`; the message names the bad value and the rule.
  static Check can_implement(const Arguments& a) {
    std::ostringstream os;
    const WeightsView& w = a.weights;
    auto fail = [&](Status s) { return Check{s, "anybcq::cuda::Gemm: " + os.str()}; };
    if (w.rows <= 0 || w.cols <= 0) {
      os << "weights are empty (" << w.rows << " x " << w.cols << ")";
      return fail(Status::kInvalidProblem);
    }
    if (w.rows > (index_t(1) << 30) || w.cols > (index_t(1) << 30)) {
      os << "weights of " << w.rows << " x " << w.cols << " exceed the kernels' limit of 2^30 rows or columns";
      return fail(Status::kInvalidProblem);
    }
    if (w.cols % kWordBits != 0) {
      os << "K = " << w.cols << " is not a multiple of the word width " << kWordBits;
      return fail(Status::kInvalidProblem);
    }
    if (w.group <= 0 || w.cols % w.group != 0) {
      os << "group size " << w.group << " does not divide K = " << w.cols;
      return fail(Status::kInvalidProblem);
    }
    if (!(w.group == 64 || w.group == 128 || w.group % 256 == 0 || w.group == w.cols)) {
      os << "group size " << w.group << " is not supported; use 64, 128, a multiple of 256, or K (= " << w.cols
         << ")";
      return fail(Status::kInvalidProblem);
    }
    if (w.layout.rows != w.rows || w.layout.cols() != w.cols || w.layout.planes != w.p_max()) {
      os << "plane layout (" << w.layout.rows << " x " << w.layout.cols() << ", " << w.layout.planes
         << " planes) disagrees with the weights (" << w.rows << " x " << w.cols << ", p_max " << w.p_max() << ")";
      return fail(Status::kInvalidProblem);
    }
    if (w.scales.rows != w.rows || w.scales.groups != w.cols / w.group || w.p_min() < 1 || w.p_max() > kMaxBits ||
        w.p_min() > w.p_max()) {
      os << "scale layout (rows " << w.scales.rows << ", groups " << w.scales.groups << ", p " << w.p_min() << ".."
         << w.p_max() << ") does not match an " << w.rows << " x " << w.cols << " matrix with group " << w.group;
      return fail(Status::kInvalidProblem);
    }
    if (a.row_bits_mask != 0) {
      const unsigned have = detail::precision_bits(w.p_min(), w.p_max());
      if (!a.row_bits) {
        os << "row_bits_mask = 0x" << std::hex << a.row_bits_mask << std::dec
           << " is given without row_bits (it names the precisions of per-row calls)";
        return fail(Status::kInvalidProblem);
      }
      if (a.row_bits_mask & ~have) {
        os << "row_bits_mask = 0x" << std::hex << a.row_bits_mask << " names precisions the weights lack (they have 0x"
           << have << std::dec << ": p = " << w.p_min() << ".." << w.p_max() << ")";
        return fail(Status::kInvalidProblem);
      }
    }
    const int max_slices = path(a) == GemmPath::kLut            ? detail::kLutMaxSlices
                           : path(a) == GemmPath::kBinaryMma    ? detail::kBmmaMaxSlices
                           : path(a) == GemmPath::kWgmmaDequant || path(a) == GemmPath::kSplitWgmma ? Tuning::kWgMaxSplits
                                                                : Tuning::kDqWarps;
    if (a.k_slices < 0 || a.k_slices > max_slices || (a.k_slices & (a.k_slices - 1)) != 0) {
      os << "k_slices = " << a.k_slices << " must be 0 (auto) or a power of two up to " << max_slices << " on path "
         << to_string(path(a));
      return fail(Status::kInvalidProblem);
    }
    if (a.batch < 0) {
      os << "batch = " << a.batch << " is negative";
      return fail(Status::kInvalidProblem);
    }
    if (!a.row_bits && !w.has(a.bits)) {
      os << "precision p = " << a.bits << " is outside the weights' range " << w.p_min() << ".." << w.p_max();
      return fail(Status::kInvalidProblem);
    }
    if (a.path == GemmPath::kLut && (a.batch > Tuning::kMaxLutBatch || w.group == 64)) {
      os << "path " << to_string(a.path) << " takes batch ≤ " << Tuning::kMaxLutBatch
         << " and group size ≥ 128 (batch = " << a.batch << ", group = " << w.group << ")";
      return fail(Status::kInvalidProblem);
    }
    if (a.path == GemmPath::kBinaryMma && (a.batch > detail::kBmmaMaxBatch || w.group == 64)) {
      os << "path " << to_string(a.path) << " takes batch ≤ " << detail::kBmmaMaxBatch
         << " and group size ≥ 128 (batch = " << a.batch << ", group = " << w.group << ")";
      return fail(Status::kInvalidProblem);
    }
    if (a.reuse_packed_x && path(a) != GemmPath::kBinaryMma) {
      os << "reuse_packed_x needs the binary-mma path (one precision, group size ≥ 128, batch ≤ "
         << Tuning::kMaxBmmaBatch << ", or ≤ " << Tuning::kMaxBmmaBatchTall << " when M > K, or M ≥ "
         << Tuning::kBmmaLargeMinRows << " and M·K ≥ " << Tuning::kBmmaLargeWeights << ", or ≤ " << detail::kBmmaMaxBatch
         << " at p = " << Tuning::kBmmaTileBits << " when M ≥ " << Tuning::kBmmaTileRowsPerCol << "·K and M ≥ "
         << Tuning::kBmmaLargeMinRows << "); this call takes " << to_string(path(a));
      return fail(Status::kInvalidProblem);
    }
    if ((a.path == GemmPath::kWgmmaDequant || a.path == GemmPath::kSplitWgmma) && !kHaveWgmma) {
      os << "path " << to_string(a.path) << " is not in this build (compile the device code for sm_90a and define "
         << "ANYBCQ_CUDA_SM90A)";
      return fail(Status::kInvalidProblem);
    }
    if (needs_fast_decode(a.path, a) && !fast_decode(w)) {
      os << "path " << to_string(a.path) << " needs every |alpha| < " << detail::ExpDecode<Element>::kAlphaLimit
         << " with " << (std::is_same_v<Element, __half> ? "fp16" : "bf16") << " activations at batch " << a.batch;
      if (a.row_bits)
        os << " (per-row precision)";
      else
        os << ", p = " << a.bits;
      os << "; the weights' bound (alpha_max) is " << w.alpha_max << " (DeviceWeights sets it; kAuto takes "
         << to_string(a.row_bits ? GemmPath::kSplitCublas : GemmPath::kDequantCublas) << " then)";
      return fail(Status::kInvalidProblem);
    }
    if ((a.path == GemmPath::kSplitDequant || a.path == GemmPath::kSplitCublas || a.path == GemmPath::kSplitWgmma) &&
        !a.row_bits) {
      os << "path " << to_string(a.path) << " takes per-row precision (row_bits); one precision per call takes "
         << to_string(a.path == GemmPath::kSplitDequant  ? GemmPath::kFusedDequant
                      : a.path == GemmPath::kSplitWgmma ? GemmPath::kWgmmaDequant
                                                          : GemmPath::kDequantCublas);
      return fail(Status::kInvalidProblem);
    }
    if (a.row_bits && ((a.path == GemmPath::kFusedDequant && !dq_per_row(w)) || a.path == GemmPath::kDequantCublas ||
                       a.path == GemmPath::kLut || a.path == GemmPath::kWgmmaDequant ||
                       (a.path == GemmPath::kBinaryMma && !bmma_per_row(a)))) {
      os << "path " << to_string(a.path) << " takes one precision per call here; per-row precision needs "
         << to_string(GemmPath::kFusedBitSerial) << ", " << to_string(GemmPath::kSplitDequant) << ", "
         << to_string(GemmPath::kSplitCublas) << ", " << to_string(GemmPath::kSplitWgmma) << " (sm_90a builds), "
         << to_string(GemmPath::kFusedDequant) << " where p_max ≤ 4 (p_max = " << w.p_max() << "), "
         << to_string(GemmPath::kBinaryMma)
         << " where also M % 16 == 0, group ≥ 128 and the scale tables are 16-byte aligned, or kAuto";
      return fail(Status::kInvalidProblem);
    }
    if (!w.planes || !w.alpha || !detail::aligned(w.planes, 16) || !detail::aligned(w.alpha, alignof(Scale)) ||
        (w.beta && !detail::aligned(w.beta, alignof(Scale)))) {
      os << "weight planes must be non-null and 16-byte aligned, scales non-null and aligned";
      return fail(Status::kMisalignedOperand);
    }
    const bool x_ok = a.reuse_packed_x || (a.x && detail::aligned(a.x, 16));  // x is not read when reused
    if (a.batch > 0 && (!x_ok || !a.y || !detail::aligned(a.y, alignof(Element)))) {
      os << "x must be non-null and 16-byte aligned, y non-null and " << alignof(Element) << "-byte aligned";
      return fail(Status::kMisalignedOperand);
    }
    return Check{};
  }

  //! Where a path rebuilds Ŵ_p with the register dequantization it needs |α| < kAlphaLimit (fp16: 255.9375,
  //! bf16: 2^63): by the scale type (half_t scales with bf16 activations) or by the weights' bound
  //! (MultiPrecisionView::alpha_max); the dispatcher takes dequantize + cuBLAS when neither holds.
  static constexpr bool kScaleBounded =
      (std::is_same_v<Scale, half_t> ? 65504.0f : std::numeric_limits<float>::infinity()) <
      detail::ExpDecode<Element>::kAlphaLimit;
  static bool fast_decode(const WeightsView& w) {
    return kScaleBounded || w.alpha_max < detail::ExpDecode<Element>::kAlphaLimit;
  }
  //! Weights for which the binary-mma kernel takes batches up to kMaxBmmaBatchTall: M > K, or at least
  //! kBmmaLargeWeights weights in at least kBmmaLargeMinRows rows (H200: at batch 3 and 4 it beat the
  //! register-dequantizing kernel on 2048×16384, 2048×32768, 4096×11008, 4096×14336 and 5120×13824 and
  //! lost on 4096×4096 and 1024×32768; docs/perf/gpu.md).
  static bool bmma_up_to_tall(const WeightsView& w) {
    return w.rows > w.cols || (w.rows >= Tuning::kBmmaLargeMinRows && w.rows * w.cols >= Tuning::kBmmaLargeWeights);
  }
  //! Calls for which the batch-tile mode of the binary-mma kernel (batch 5–8) beats the register-
  //! dequantizing kernel: p = kBmmaTileBits on weights with M ≥ kBmmaTileRowsPerCol·K rows (H200: 10–12%
  //! less time on 14336×4096 and 28672×4096 at p = 2; 0.96–1.00× at p = 3; slower at p = 4 and on
  //! 4096×4096, 6144×4096, 4096×14336; docs/perf/gpu.md).
  static bool bmma_tile_wins(const Arguments& a) {
    const WeightsView& w = a.weights;
    return a.batch <= detail::kBmmaMaxBatch && a.bits == Tuning::kBmmaTileBits && w.rows >= Tuning::kBmmaLargeMinRows &&
           w.rows >= Tuning::kBmmaTileRowsPerCol * w.cols;
  }
  //! M % 16 == 0 and 16-byte aligned scale tables: every 16-row run starts on 16 bytes (FusedParams::aligned_scales).
  static bool aligned_scales(const WeightsView& w) {
    return w.rows % 16 == 0 && detail::aligned(w.alpha, 16) && (!w.beta || detail::aligned(w.beta, 16));
  }
  //! Whether per-row precision can take the register-dequantizing kernel (its planes-as-operands mode,
  //! one 8-row batch tile per block): p_max ≤ 4.
  static bool dq_per_row(const WeightsView& w) { return detail::dq_planes_as_operands(8, w.p_max()); }
  //! … and the binary-mma kernel: batch ≤ 8, group ≥ 128, p_max ≤ 4, aligned scale tables whose runs of
  //! every precision fit a ring stage (detail::row_scales_fit).
  static bool bmma_per_row(const Arguments& a) {
    const WeightsView& w = a.weights;
    return a.batch <= detail::kBmmaMaxBatch && w.group != 64 && w.p_max() <= 4 && aligned_scales(w) &&
           detail::row_scales_fit<Scale>(w.p_min(), w.p_max(), w.beta != nullptr, w.group == 128 ? 2 : 1);
  }
  //! Per-row calls on which the precision split on the warpgroup kernel beats the other splits (sm_90a
  //! builds; the fast decode): batch kMinSplitWgBatch … kMaxSplitWgBatch (kMaxSplitWgBatchTall where
  //! M ≥ 2K) on weights with M·K ≥ kSplitWgLargeWeights, kMinSplitWgBatchSmall … kMaxSplitWgBatchSmall on
  //! smaller ones (H200, rows at p = 2, 3, 4: docs/perf/gpu.md).
  static bool split_wg_wins(const Arguments& a) {
    const WeightsView& w = a.weights;
    const bool large = w.rows * w.cols >= Tuning::kSplitWgLargeWeights;
    const index_t hi = !large ? Tuning::kMaxSplitWgBatchSmall
                       : w.rows >= 2 * w.cols ? Tuning::kMaxSplitWgBatchTall
                                              : Tuning::kMaxSplitWgBatch;
    return kHaveWgmma && fast_decode(w) &&
           a.batch >= (large ? Tuning::kMinSplitWgBatch : Tuning::kMinSplitWgBatchSmall) && a.batch <= hi;
  }
  //! Whether path p rebuilds Ŵ_p with the register dequantization for call a (so needs fast_decode()):
  //! the precision split; one-precision calls on the warpgroup kernel and on fused-dq unless it takes the
  //! planes as operands (the per-row modes of the other kernels keep the planes as operands).
  static bool needs_fast_decode(GemmPath p, const Arguments& a) {
    return p == GemmPath::kSplitDequant || p == GemmPath::kSplitWgmma ||
           (!a.row_bits && (p == GemmPath::kWgmmaDequant ||
                            (p == GemmPath::kFusedDequant && !detail::dq_planes_as_operands(a.batch, a.bits))));
  }
  //! Path a call takes: a.path if forced, else per-row precision → binary mma up to batch
  //! Tuning::kMaxRowBitsBmmaBatch where bmma_per_row, the register-dequantizing kernel's per-row mode up to
  //! batch Tuning::kMaxRowBitsDqBatch where dq_per_row,
  //! the precision split on the warpgroup kernel where split_wg_wins, else through cuBLAS from batch
  //! Tuning::kMinSplitCublasBatch or where the fast decode does not hold, else the precision split on the
  //! register-dequantizing kernel (H200, rows at p = 2, 3, 4: docs/perf/gpu.md); group ≥ 128 and batch ≤
  //! Tuning::kMaxBmmaBatch (kMaxBmmaBatchTall where bmma_up_to_tall, 8 where bmma_tile_wins) → binary mma; in sm_90a builds (kHaveWgmma) batch kMaxFusedBatch + 1 … kMaxWgmmaBatch, or kWgmmaEarlyBatch + 1 …
  //! kMaxWgmmaBatch when M ≥ kWgmmaMinRows → warpgroup kernel; batch ≤ kMaxFusedBatch → register-dequantizing;
  //! larger batches → dequantize + cuBLAS. (Crossovers measured on an H100, docs/perf/gpu.md.) A pick that
  //! needs_fast_decode() on weights without fast_decode() becomes dequantize + cuBLAS.
  static GemmPath path(const Arguments& a) {
    if (a.path != GemmPath::kAuto) return a.path;
    if (a.row_bits)
      return a.batch <= Tuning::kMaxRowBitsBmmaBatch && bmma_per_row(a) ? GemmPath::kBinaryMma
             : a.batch <= Tuning::kMaxRowBitsDqBatch && dq_per_row(a.weights)
                 ? GemmPath::kFusedDequant
             : split_wg_wins(a) ? GemmPath::kSplitWgmma
             : a.batch >= Tuning::kMinSplitCublasBatch || !fast_decode(a.weights) ? GemmPath::kSplitCublas
                                                                                   : GemmPath::kSplitDequant;
    if (a.weights.group != 64 &&
        (a.batch <= Tuning::kMaxBmmaBatch || (a.batch <= Tuning::kMaxBmmaBatchTall && bmma_up_to_tall(a.weights)) ||
         bmma_tile_wins(a)))
      return GemmPath::kBinaryMma;
    GemmPath p = a.batch <= Tuning::kMaxFusedBatch ? GemmPath::kFusedDequant : GemmPath::kDequantCublas;
    if (kHaveWgmma && a.batch <= Tuning::kMaxWgmmaBatch &&
        (a.batch > Tuning::kMaxFusedBatch || (a.batch > Tuning::kWgmmaEarlyBatch && a.weights.rows >= Tuning::kWgmmaMinRows)))
      p = GemmPath::kWgmmaDequant;
    return needs_fast_decode(p, a) && !fast_decode(a.weights) ? GemmPath::kDequantCublas : p;
  }

  //! Row tiles × K slices per block of the LUT kernel and 256-column chunks per slice: as many slices
  //! (≤ 8 / batch, ≥ 2 chunks each) as keep the grid at ≤ 2048 warps, then as many row tiles per block
  //! (≤ 16 warps in all) as keep ≥ `min_blocks` blocks; row tiles of one block share the activation
  //! tables. (H100 sweep over five shapes, p = 2–4, batch 1 and 2: within 5 % of the best split.)
  static void lut_shape(index_t row_tiles, index_t chunks, index_t batch, index_t min_blocks, int forced, int& tm,
                        int& ks, int& cps) {
    ks = forced;
    if (ks <= 0) {
      ks = 1;
      while (2 * ks <= detail::kLutMaxSlices / batch && 4 * ks <= chunks && row_tiles * 2 * ks <= 2048) ks *= 2;
    }
    tm = 1;
    while (2 * tm * ks <= detail::kLutMaxWarps && (row_tiles + 2 * tm - 1) / (2 * tm) >= min_blocks) tm *= 2;
    cps = int((chunks + ks - 1) / ks);
  }

  //! Row tiles × K slices per 8-warp block of the binary-mma kernel: the most slices (a power of two ≤ 8,
  //! ≥ 2 chunks each) that keep the grid within `max_blocks` blocks (one wave).
  static void bmma_shape(index_t row_tiles, index_t chunks, index_t max_blocks, int forced, int& tm, int& ks) {
    constexpr int W = detail::kBmmaMaxWarps;
    ks = forced;
    if (ks <= 0) {
      ks = 1;
      while (2 * ks <= W && 4 * ks <= chunks && (row_tiles * 2 * ks + W - 1) / W <= max_blocks) ks *= 2;
    }
    if (ks > W) ks = W;
    tm = W / ks;
  }

  //! Row tiles × K slices per block of the register-dequantizing kernel (tm·ks = kDqWarps): `forced` if
  //! given, else as many slices as keep ≥ 2 chunks each (H100 sweep over five shapes, batch 8–64, p = 2–4:
  //! within 4 % of the best split but for two cells at 9 %), and at most 4 where the planes go to the
  //! tensor cores as operands (nt = 1 batch tile, p ≤ 4) on a grid of at least kDqSerialTallTiles row tiles
  //! per SM, so that each warp's fixed cost spreads over more chunks (H200, 28672×4096, batch 4 and 8:
  //! 7–10% less time than 8 slices; 14336×4096, 6.8 row tiles per SM: −5% to +3% with 4, so left at 8).
  static void dq_shape(index_t row_tiles, index_t chunks, int nt, int bits, index_t sms, int forced, int& tm, int& ks) {
    constexpr int W = Tuning::kDqWarps;
    ks = forced;
    if (ks <= 0) {
      ks = W;
      while (ks > 1 && chunks < 2 * ks) ks /= 2;
      if (detail::dq_planes_as_operands(index_t(nt) * 8, bits) && row_tiles >= index_t(Tuning::kDqSerialTallTiles) * sms &&
          ks > 4)
        ks = 4;
    }
    if (ks > W) ks = W;
    tm = W / ks;
  }

  //! Device bytes run() needs as workspace, 16-byte aligned (0 for the fused paths; the packed activations
  //! and, when K is split, the fp32 partial sums for the warpgroup kernel; Ŵ_p and cuBLAS's own workspace
  //! for dequantize + cuBLAS; the row order for the precision split, and for the split through cuBLAS also
  //! Ŵ_p of every precision, the sorted activations and the runs' outputs: SplitCublasLayout).
  static std::size_t workspace_size(const Arguments& a) {
    if (path(a) == GemmPath::kSplitDequant)
      return round_up(static_cast<std::size_t>(detail::kSplitSegInts + a.batch) * sizeof(int));
    if (path(a) == GemmPath::kSplitCublas) return SplitCublasLayout(a).total;
    if (path(a) == GemmPath::kSplitWgmma) return SplitWgLayout(a).total;
    if (path(a) == GemmPath::kBinaryMma) return round_up(bmma_bits_bytes(a)) + round_up(bmma_scale_bytes(a));
    if (path(a) == GemmPath::kWgmmaDequant) return round_up(wg_packed_bytes(a)) + wg_partial_bytes(a);
    if (path(a) != GemmPath::kDequantCublas) return 0;
    const std::size_t w = static_cast<std::size_t>(a.weights.rows * a.weights.cols) * sizeof(Element);
    return round_up(w) + Tuning::kCublasWorkspace;
  }

  //! Enqueue the call on `stream`. Returns a Status (never throws for bad arguments).
  Status run(const Arguments& a, void* workspace, std::size_t workspace_bytes, cudaStream_t stream,
             std::string* message = nullptr) {
    const Check chk = can_implement(a);
    if (!chk.ok()) {
      if (message) *message = chk.message;
      return chk.status;
    }
    if (a.batch == 0) return Status::kSuccess;
    if (workspace_size(a) > 0 && !detail::aligned(workspace, 16)) {
      if (message) *message = "anybcq::cuda::Gemm: the workspace must be 16-byte aligned (cudaMalloc's is)";
      return Status::kMisalignedOperand;
    }
    if (workspace_bytes < workspace_size(a) || (workspace_size(a) > 0 && !workspace)) {
      if (message) *message = "anybcq::cuda::Gemm: workspace of " + std::to_string(workspace_bytes) +
                              " bytes is smaller than workspace_size() = " + std::to_string(workspace_size(a));
      return Status::kWorkspaceTooSmall;
    }
    detail::FusedParams<Scale> prm = params(a);
    if (path(a) == GemmPath::kLut) {
      int cps = 0;
      lut_shape(prm.row_tiles, prm.chunks, a.batch, 2 * index_t(sm_count()), a.k_slices, prm.tm, prm.ks, cps);
      const Status s = launch_lut(prm, a.bits, cps, stream);
      if (s != Status::kSuccess && message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    }
    if (path(a) == GemmPath::kBinaryMma) {
      bmma_shape(prm.row_tiles, prm.chunks, detail::kDqBlocksPerSm * index_t(sm_count()), a.k_slices, prm.tm, prm.ks);
      uint4* xb = static_cast<uint4*>(workspace);
      auto* xs = reinterpret_cast<float2*>(static_cast<char*>(workspace) + round_up(bmma_bits_bytes(a)));
      const Status s = launch_bmma(prm, a.row_bits ? a.weights.p_max() : a.bits, a.pdl, !a.reuse_packed_x, xb, xs, stream);
      if (s != Status::kSuccess && message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    }
    if (path(a) == GemmPath::kFusedDequant) {
      // Per-row precision: one 8-row tile per block (planes as operands), all p_max planes in the template.
      const int nt = a.row_bits ? 1 : dq_batch_tiles(a.batch);
      const int planes = a.row_bits ? a.weights.p_max() : a.bits;
      prm.batch_blocks = (a.batch + nt * 8 - 1) / (nt * 8);
      dq_shape(prm.row_tiles, prm.chunks, nt, planes, index_t(sm_count()), a.k_slices, prm.tm, prm.ks);
      const Status s = launch_dq(prm, planes, nt, a.pdl, stream);
      if (s != Status::kSuccess && message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    }
    if (path(a) == GemmPath::kSplitCublas) return run_split_cublas(a, static_cast<char*>(workspace), stream, message);
    if (path(a) == GemmPath::kSplitWgmma) {
      const Status s = run_split_wg(a, static_cast<char*>(workspace), stream);
      if (s != Status::kSuccess && message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    }
    if (path(a) == GemmPath::kSplitDequant) {
      const Status s = run_split(a, static_cast<int*>(workspace), stream);
      if (s != Status::kSuccess && message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    }
    if (path(a) == GemmPath::kWgmmaDequant) {
      const Status s = launch_wg(prm, a.bits, wg_splits(a), static_cast<uint4*>(workspace),
                                 reinterpret_cast<float*>(static_cast<char*>(workspace) + round_up(wg_packed_bytes(a))),
                                 stream);
      if (s != Status::kSuccess && message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    }
    if (path(a) == GemmPath::kFusedBitSerial) {
      const int p_planes = a.row_bits ? a.weights.p_max() : a.bits;
      const index_t n_tiles = (a.batch + 7) / 8;
      const int nt = n_tiles <= 1 ? 1 : n_tiles <= 2 ? 2 : Tuning::kMaxTilesN;
      prm.batch_blocks = (a.batch + nt * 8 - 1) / (nt * 8);
      const Status s = launch_fused(prm, p_planes, nt, stream);
      if (s != Status::kSuccess && message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    }
    // Dequantize + cuBLAS.
    Element* wbuf = static_cast<Element*>(workspace);
    const std::size_t wbytes = round_up(static_cast<std::size_t>(a.weights.rows * a.weights.cols) * sizeof(Element));
    const index_t blocks = (prm.row_tiles * prm.chunks + Tuning::kDequantWarps - 1) / Tuning::kDequantWarps;
    if (const Status s = launch_dequant(prm, a.bits, !fast_decode(a.weights), blocks, wbuf, stream); s != Status::kSuccess) {
      if (message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    }
    if (const Status s = cublas_on(stream, static_cast<char*>(workspace) + wbytes, message); s != Status::kSuccess)
      return s;
    const float one = 1.0f, zero = 0.0f;
    const cublasStatus_t st = cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(a.weights.rows),
                        static_cast<int>(a.batch), static_cast<int>(a.weights.cols), &one, wbuf,
                        detail::cuda_data_type<Element>(), static_cast<int>(a.weights.cols), a.x,
                        detail::cuda_data_type<Element>(), static_cast<int>(a.weights.cols), &zero, a.y,
                        detail::cuda_data_type<Element>(), static_cast<int>(a.weights.rows), CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT);
    return cublas_status(st, message);
  }

  //! Create the cuBLAS handle now (outside any graph capture); run() creates it lazily otherwise.
  void initialize() {
    if (!handle_) ANYBCQ_CUBLAS_CHECK(cublasCreate(&handle_));
  }

  //! Like run(), but throws anybcq::Error with the explanation on any failure.
  void operator()(const Arguments& a, void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
    std::string msg;
    const Status s = run(a, workspace, workspace_bytes, stream, &msg);
    ANYBCQ_REQUIRE(s == Status::kSuccess, msg, " (", to_string(s), ")");
  }

 private:
  static std::size_t round_up(std::size_t b) { return (b + 255) / 256 * 256; }
  //! Bytes of the activation bit planes of the binary-mma path (512 per 256 columns and row) and of their
  //! per-half-chunk scales (16 per 256 columns and row).
  static std::size_t bmma_bits_bytes(const Arguments& a) {
    return static_cast<std::size_t>(a.batch * a.weights.layout.chunks()) * 512;
  }
  static std::size_t bmma_scale_bytes(const Arguments& a) {
    return static_cast<std::size_t>(a.batch * a.weights.layout.chunks()) * 16;
  }
  //! Bytes of the activations packed for the warpgroup kernel: 16 KiB per 128 batch rows and 64 columns.
  static std::size_t wg_packed_bytes(const Arguments& a) {
    return static_cast<std::size_t>(wg_tile_rows(a.batch) * a.weights.layout.chunks() * 4) * detail::kWgTileU4 * 16;
  }
  //! 128-row activation tiles packed for the warpgroup kernel: an even number (a block may take two).
  static index_t wg_tile_rows(index_t batch) { return (batch + 2 * detail::kWgBatch - 1) / (2 * detail::kWgBatch) * 2; }
  //! K slices of the warpgroup kernel: a.k_slices if given (at most one per chunk); else as many as bring
  //! the grid (64-row blocks × 128-row batch blocks) up to Tuning::kWgTargetBlocks, at most
  //! Tuning::kWgMaxSplits, each of at least Tuning::kWgMinSplitChunks chunks. A function of the shape
  //! only, so that workspace_size() needs no device.
  static int wg_splits(const Arguments& a) {
    const index_t chunks = a.weights.layout.chunks();
    if (a.k_slices > 0) return static_cast<int>(std::min<index_t>(a.k_slices, chunks));
    const bool ws = a.batch >= Tuning::kWsMinBatch;  // warp-specialized kernel: 128 × 256 per block, one per SM
    const index_t blocks = ws ? (a.weights.layout.row_tiles() + 7) / 8 * (wg_tile_rows(a.batch) / 2)
                              : (a.weights.layout.row_tiles() + 3) / 4 * ((a.batch + detail::kWgBatch - 1) / detail::kWgBatch);
    const index_t target = ws ? Tuning::kWsTargetBlocks : Tuning::kWgTargetBlocks;
    index_t s = std::min<index_t>(Tuning::kWgMaxSplits, target / std::max<index_t>(blocks, 1));
    s = std::min<index_t>(s, chunks / Tuning::kWgMinSplitChunks);
    return static_cast<int>(std::max<index_t>(s, 1));
  }

  //! fp32 partial sums of the warpgroup kernel's K slices (none with one slice).
  static std::size_t wg_partial_bytes(const Arguments& a) {
    const int s = wg_splits(a);
    return s > 1 ? round_up(static_cast<std::size_t>(s * a.batch * a.weights.rows) * sizeof(float)) : 0;
  }

  static detail::FusedParams<Scale> params(const Arguments& a) {
    const WeightsView& w = a.weights;
    detail::FusedParams<Scale> prm;
    prm.planes = reinterpret_cast<const uint4*>(w.planes);
    prm.alpha = w.alpha;
    prm.beta = w.beta;
    prm.scales = w.scales;
    prm.M = w.rows;
    prm.K = w.cols;
    prm.group = w.group;
    prm.row_tiles = w.layout.row_tiles();
    prm.chunks = w.layout.chunks();
    prm.x = a.x;
    prm.y = a.y;
    prm.batch = a.batch;
    prm.bits = a.row_bits ? 0 : a.bits;
    prm.row_bits = a.row_bits;
    prm.row_mask = a.row_bits ? a.row_bits_mask : 0u;
    prm.fold_blocks = w.group == 64 ? 1 : w.group == 128 ? 2 : 4;
    prm.aligned_scales = aligned_scales(w);
    return prm;
  }

  //! Opts `kernel` in to `smem` bytes of dynamic shared memory, launches it and reports any error.
  template <class... P, class... A>
  Status launch(void (*kernel)(P...), index_t blocks, int threads, int smem, cudaStream_t stream, const char* what,
                A... args) {
    return launch_grid(kernel, {blocks, 1, 1}, threads, smem, stream, what, args...);
  }
  //! The same on a blocks[0] × blocks[1] × blocks[2] grid.
  template <class... P, class... A>
  Status launch_grid(void (*kernel)(P...), const index_t (&blocks)[3], int threads, int smem, cudaStream_t stream,
                     const char* what, A... args) {
    return launch_ex(kernel, blocks, threads, smem, false, stream, what, args...);
  }
  //! The same, with programmatic stream serialization when `pdl` (the kernel may launch before the previous
  //! one in the stream has finished; it calls detail::pdl_wait() before reading that kernel's output).
  template <class... P, class... A>
  Status launch_ex(void (*kernel)(P...), const index_t (&blocks)[3], int threads, int smem, bool pdl,
                   cudaStream_t stream, const char* what, A... args) {
    if (blocks[0] > 0x7fffffff || blocks[1] > 65535 || blocks[2] > 65535) {
      last_error_ = "grid of " + std::to_string(blocks[0]) + " x " + std::to_string(blocks[1]) + " x " +
                    std::to_string(blocks[2]) + " blocks is too large";
      return Status::kInvalidProblem;
    }
    if (const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        e != cudaSuccess) {
      last_error_ = std::string("cudaFuncSetAttribute failed: ") + cudaGetErrorString(e);
      return Status::kCudaError;
    }
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(blocks[0]), static_cast<unsigned>(blocks[1]), static_cast<unsigned>(blocks[2]));
    cfg.blockDim = dim3(static_cast<unsigned>(threads));
    cfg.dynamicSmemBytes = static_cast<std::size_t>(smem);
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    if (const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(args)...); e != cudaSuccess) {
      last_error_ = std::string(what) + " launch failed: " + cudaGetErrorString(e);
      return Status::kCudaError;
    }
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) {
      last_error_ = std::string(what) + " launch failed: " + cudaGetErrorString(e);
      return Status::kCudaError;
    }
    return Status::kSuccess;
  }
  //! The one bounded switch over the number of planes read (1..kMaxBits): f(std::integral_constant<int, P>).
  template <class F>
  Status with_planes(int planes, F&& f) {
    static_assert(kMaxBits == 8, "with_planes dispatches planes 1..8");
    switch (planes) {
      case 1: return f(std::integral_constant<int, 1>{});
      case 2: return f(std::integral_constant<int, 2>{});
      case 3: return f(std::integral_constant<int, 3>{});
      case 4: return f(std::integral_constant<int, 4>{});
      case 5: return f(std::integral_constant<int, 5>{});
      case 6: return f(std::integral_constant<int, 6>{});
      case 7: return f(std::integral_constant<int, 7>{});
      case 8: return f(std::integral_constant<int, 8>{});
      default: last_error_ = "precision " + std::to_string(planes) + " outside 1..8"; return Status::kInvalidProblem;
    }
  }

  template <int kPlanes, int NT>
  Status launch_fused_one(const detail::FusedParams<Scale>& prm, cudaStream_t stream) {
    // More than 48 KB of shared memory: static reduction buffer + dynamic ring.
    constexpr int smem = Tuning::kWarps * detail::stages_for(kPlanes) * detail::stage_u4<Scale>(kPlanes) * 16;
    return launch(detail::fused_gemm_kernel<Tuning, Element, Scale, kPlanes, NT>, prm.row_tiles * prm.batch_blocks,
                  Tuning::kWarps * 32, smem, stream, "fused kernel", prm);
  }
  Status launch_fused(const detail::FusedParams<Scale>& prm, int planes, int nt, cudaStream_t stream) {
    return with_planes(planes, [&](auto p) {
      constexpr int kP = decltype(p)::value;
      return nt == 1 ? launch_fused_one<kP, 1>(prm, stream)
           : nt == 2 ? launch_fused_one<kP, 2>(prm, stream)
                     : launch_fused_one<kP, Tuning::kMaxTilesN>(prm, stream);
    });
  }

  template <int kPlanes, int NT, bool kRowBits = false, bool kSplit = false>
  Status launch_dq_one(const detail::FusedParams<Scale>& prm, bool pdl, cudaStream_t stream) {
    constexpr int smem = Tuning::kDqWarps * (detail::stages_for(kPlanes) * detail::stage_u4<Scale>(kPlanes) * 16 +
                                             NT * 4 * 32 * int(sizeof(float)));
    return launch_ex(detail::dqmma_kernel<Tuning, Element, Scale, kPlanes, NT, kRowBits, kSplit>,
                     {(prm.row_tiles + prm.tm - 1) / prm.tm * prm.batch_blocks, 1, 1}, Tuning::kDqWarps * 32, smem, pdl,
                     stream, "register-dequantizing kernel", prm);
  }
  Status launch_dq(const detail::FusedParams<Scale>& prm, int planes, int nt, bool pdl, cudaStream_t stream) {
    return with_planes(planes, [&](auto p) {
      constexpr int kP = decltype(p)::value;
      if constexpr (detail::dq_planes_as_operands(8, kP))
        if (prm.row_bits) return launch_dq_one<kP, 1, true>(prm, pdl, stream);  // per-row precision: nt = 1
      if (prm.seg)  // one launch of a precision split
        return nt == 1 ? launch_dq_one<kP, 1, false, true>(prm, pdl, stream)
             : nt == 2 ? launch_dq_one<kP, 2, false, true>(prm, pdl, stream)
                       : launch_dq_one<kP, 4, false, true>(prm, pdl, stream);
      return nt == 1 ? launch_dq_one<kP, 1>(prm, pdl, stream)
           : nt == 2 ? launch_dq_one<kP, 2>(prm, pdl, stream)
                     : launch_dq_one<kP, 4>(prm, pdl, stream);
    });
  }

  //! The cuBLAS handle (created here if initialize() was not called) on `stream`, with `cublas_ws`
  //! (Tuning::kCublasWorkspace bytes) as its workspace.
  Status cublas_on(cudaStream_t stream, void* cublas_ws, std::string* message) {
    if (!handle_ && cublasCreate(&handle_) != CUBLAS_STATUS_SUCCESS) {
      if (message) *message = "anybcq::cuda::Gemm: cublasCreate failed";
      return Status::kCublasError;
    }
    cublasStatus_t st = cublasSetStream(handle_, stream);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasSetWorkspace(handle_, cublas_ws, Tuning::kCublasWorkspace);
    return cublas_status(st, message);
  }
  static Status cublas_status(cublasStatus_t st, std::string* message) {
    if (st == CUBLAS_STATUS_SUCCESS) return Status::kSuccess;
    if (message) *message = std::string("anybcq::cuda::Gemm: cuBLAS failed: ") + cublasGetStatusString(st);
    return Status::kCublasError;
  }

  //! 8-row batch tiles per block of the one-precision register-dequantizing kernel (1, 2 or 4).
  static int dq_batch_tiles(index_t batch) {
    const index_t n_tiles = (batch + 7) / 8;
    return n_tiles <= 1 ? 1 : n_tiles <= 2 ? 2 : 4;
  }
  //! Sorts a per-row call's rows by precision into seg (segment table) and order (detail::split_rows_kernel).
  Status launch_split_rows(const Arguments& a, int* seg, int* order, cudaStream_t stream) {
    const WeightsView& w = a.weights;
    return launch_ex(detail::split_rows_kernel<Element>, {1, 1, 1}, detail::kSplitThreads, 0, a.pdl, stream,
                     "precision split", a.row_bits, int(a.batch), w.p_min(), w.p_max(), a.row_bits_mask, seg, order,
                     a.y, w.rows);
  }
  //! Whether a split of per-row call a launches precision p's kernels (p_min ≤ p ≤ p_max): those it serves.
  static bool split_takes(const Arguments& a, int p) {
    return detail::serves_precision(p, a.weights.p_min(), a.weights.p_max(), a.row_bits_mask);
  }
  //! One-precision parameters (p) of a split per-row call, on precision p's segment of the table `seg`.
  static detail::FusedParams<Scale> split_params(const Arguments& a, int p, const int* seg) {
    Arguments ap = a;
    ap.row_bits = nullptr;
    ap.bits = p;
    detail::FusedParams<Scale> prm = params(ap);
    prm.seg = seg + 2 * p;
    return prm;
  }

  //! Precision split: split_rows_kernel sorts the rows by precision into the workspace (segment table, then
  //! the order), then the uniform register-dequantizing kernel runs once per precision the weights have,
  //! highest first (it reads the planes from memory, and the lower precisions find their planes in L2
  //! where they fit), each on its segment of the sorted rows; a launch whose segment is empty or ends
  //! before a block's rows leaves at once. The batch tile follows the whole batch.
  Status run_split(const Arguments& a, int* ws, cudaStream_t stream) {
    const WeightsView& w = a.weights;
    int* seg = ws;
    int* order = ws + detail::kSplitSegInts;
    if (const Status s = launch_split_rows(a, seg, order, stream); s != Status::kSuccess)
      return s;
    const int nt = dq_batch_tiles(a.batch);
    for (int p = w.p_max(); p >= w.p_min(); --p) {
      if (!split_takes(a, p)) continue;
      detail::FusedParams<Scale> prm = split_params(a, p, seg);
      prm.row_index = order;
      prm.batch_blocks = (a.batch + nt * 8 - 1) / (nt * 8);
      dq_shape(prm.row_tiles, prm.chunks, nt, p, index_t(sm_count()), a.k_slices, prm.tm, prm.ks);
      if (const Status s = launch_dq(prm, p, nt, a.pdl, stream); s != Status::kSuccess) return s;
    }
    return Status::kSuccess;
  }

  //! Workspace of the precision split on the warpgroup kernel: segment table and order (ints); the packed
  //! activations, ⌈batch / 128⌉ + P − 1 tiles for P precisions (split_tile_base); with K split, the fp32
  //! partial sums of those tiles' rows.
  struct SplitWgLayout {
    index_t tiles = 0;
    int splits = 1;
    std::size_t xp = 0, part = 0, total = 0;
    explicit SplitWgLayout(const Arguments& a) {
      const WeightsView& w = a.weights;
      tiles = (a.batch + detail::kWgBatch - 1) / detail::kWgBatch + (w.p_max() - w.p_min());
      Arguments one = a;  // K slices as for one 128-row tile of one precision: the usual segment
      one.row_bits = nullptr;
      one.batch = std::min<index_t>(a.batch, detail::kWgBatch);
      splits = wg_splits(one);
      xp = round_up(static_cast<std::size_t>(detail::kSplitSegInts + a.batch) * sizeof(int));
      part = xp + round_up(static_cast<std::size_t>(tiles * w.layout.chunks() * 4) * detail::kWgTileU4 * 16);
      total = part + (splits > 1 ? round_up(static_cast<std::size_t>(splits * tiles * detail::kWgBatch * w.rows) *
                                            sizeof(float))
                                 : 0);
    }
  };

  //! Precision split on the warpgroup kernel: split_rows_kernel sorts the rows by precision; the packing
  //! kernel puts each precision's rows in tiles of their own; the warpgroup kernel runs once per precision
  //! the weights have, highest first, each block on one tile of its segment (blocks past the segment leave
  //! at once), each launch after the first starting while the one before it drains (Arguments::pdl); with
  //! K split, one reduction writes every row to its place.
  Status run_split_wg(const Arguments& a, char* ws, cudaStream_t stream) {
    if (!sm90_device(GemmPath::kSplitWgmma)) return Status::kInvalidProblem;
    const WeightsView& w = a.weights;
    const SplitWgLayout lay(a);
    int* seg = reinterpret_cast<int*>(ws);
    int* order = seg + detail::kSplitSegInts;
    uint4* xp = reinterpret_cast<uint4*>(ws + lay.xp);
    float* part = lay.splits > 1 ? reinterpret_cast<float*>(ws + lay.part) : nullptr;
    if (const Status s = launch_split_rows(a, seg, order, stream); s != Status::kSuccess) return s;
    if (const Status s = launch_wg_pack<true>(params(a), lay.tiles, xp, stream, seg, order); s != Status::kSuccess)
      return s;
    const int words = int(w.layout.chunks() * 4);
    const index_t grid[3] = {(w.layout.row_tiles() + 3) / 4, (a.batch + detail::kWgBatch - 1) / detail::kWgBatch,
                             lay.splits};
    bool first = true;
    for (int p = w.p_max(); p >= w.p_min(); --p) {
      if (!split_takes(a, p)) continue;
      detail::FusedParams<Scale> prm = split_params(a, p, seg);
      prm.row_index = order;
      prm.batch = lay.tiles * detail::kWgBatch;  // the packed rows: the stride of part
      prm.early_trigger = a.batch > Tuning::kSplitWgEarlyTriggerBatch;
      // After the first, each launch is programmatic: it starts as the one before it drains (wgdq_kernel;
      // H200: triggered from the blocks' start above batch kSplitWgEarlyTriggerBatch, up to 12% less time
      // at batch 512 and 768 than without the overlap, up to 12% more at 128 and 256, where the trigger
      // after the main loop gives 0–3% less).
      const Status s = with_planes(p, [&](auto pc) {
        return launch_wg_one<decltype(pc)::value, 1, true>(prm, xp, words, grid, part, stream, a.pdl && !first);
      });
      if (s != Status::kSuccess) return s;
      first = false;
    }
    if (lay.splits == 1) return Status::kSuccess;
    return launch_wg_reduce<true>(part, a.y, lay.tiles * detail::kWgBatch, w.rows, lay.splits, stream, seg, order);
  }

  //! Workspace of the precision split through cuBLAS: segment table, order and problem bases (ints); the
  //! problems' pointers; the sorted activations (batch + T rows); the problems' outputs (T·M each); Ŵ_p
  //! for every precision the weights have; cuBLAS's own workspace. Rows go in runs of T = 64 (batch ≤
  //! 512) or 128 of one precision: at most ⌈batch/T⌉ + P − 1 problems for P precisions.
  struct SplitCublasLayout {
    index_t T = 0, problems = 0;
    std::size_t ptrs = 0, xs = 0, yt = 0, w = 0, cublas = 0, total = 0;
    explicit SplitCublasLayout(const Arguments& a) {
      const WeightsView& wv = a.weights;
      T = a.batch <= 512 ? 64 : 128;
      problems = (a.batch + T - 1) / T + (wv.p_max() - wv.p_min());
      const std::size_t e = sizeof(Element);
      ptrs = round_up(static_cast<std::size_t>(detail::kSplitSegInts + a.batch + kMaxBits + 1) * sizeof(int));
      xs = ptrs + round_up(static_cast<std::size_t>(3 * problems) * sizeof(void*));
      yt = xs + round_up(static_cast<std::size_t>((a.batch + T) * wv.cols) * e);
      w = yt + round_up(static_cast<std::size_t>(problems * T * wv.rows) * e);
      cublas = w + round_up(static_cast<std::size_t>(index_t(wv.p_max() - wv.p_min() + 1) * wv.rows * wv.cols) * e);
      total = cublas + Tuning::kCublasWorkspace;
    }
  };

  //! Precision split through cuBLAS: split_rows_kernel sorts the rows; Ŵ_p is dequantized for every
  //! precision a row asks for (the kernel of an absent one leaves at once); the sorted activations and
  //! the problem table are written; one cublasGemmBatchedEx computes every run of T rows against its Ŵ_p;
  //! each row's result goes back to its place in y.
  Status run_split_cublas(const Arguments& a, char* ws, cudaStream_t stream, std::string* message) {
    const WeightsView& w = a.weights;
    const SplitCublasLayout lay(a);
    int* seg = reinterpret_cast<int*>(ws);
    int* order = seg + detail::kSplitSegInts;
    detail::SplitProblems<Element> sp{};
    sp.a = reinterpret_cast<const Element**>(ws + lay.ptrs);
    sp.b = sp.a + lay.problems;
    sp.c = reinterpret_cast<Element**>(ws + lay.ptrs + 2 * lay.problems * index_t(sizeof(void*)));
    sp.base = order + a.batch;
    sp.w = reinterpret_cast<const Element*>(ws + lay.w);
    sp.xs = reinterpret_cast<Element*>(ws + lay.xs);
    sp.yt = reinterpret_cast<Element*>(ws + lay.yt);
    sp.problems = int(lay.problems);
    sp.T = int(lay.T);
    sp.p_min = w.p_min();
    sp.p_max = w.p_max();
    sp.M = w.rows;
    sp.K = w.cols;
    auto fail = [&](Status s) {
      if (message) *message = "anybcq::cuda::Gemm: " + last_error_;
      return s;
    };
    if (const Status s = launch_split_rows(a, seg, order, stream); s != Status::kSuccess)
      return fail(s);
    for (int p = w.p_min(); p <= w.p_max(); ++p) {
      if (!split_takes(a, p)) continue;  // (no run of rows points at its Ŵ_p)
      const detail::FusedParams<Scale> prm = split_params(a, p, seg);
      const index_t blocks = (prm.row_tiles * prm.chunks + Tuning::kDequantWarps - 1) / Tuning::kDequantWarps;
      Element* wp = reinterpret_cast<Element*>(ws + lay.w) + index_t(p - w.p_min()) * w.rows * w.cols;
      if (const Status s = launch_dequant(prm, p, !fast_decode(w), blocks, wp, stream); s != Status::kSuccess)
        return fail(s);
    }
    if (const Status s = launch(detail::split_gather_kernel<Element>, a.batch, 128, 0, stream, "precision split gather",
                                a.x, static_cast<const int*>(seg), static_cast<const int*>(order), sp);
        s != Status::kSuccess)
      return fail(s);
    if (const Status s = cublas_on(stream, ws + lay.cublas, message); s != Status::kSuccess) return s;
    const float one = 1.0f, zero = 0.0f;
    const cublasStatus_t st = cublasGemmBatchedEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), static_cast<int>(lay.T),
                               static_cast<int>(w.cols), &one, reinterpret_cast<const void* const*>(sp.a),
                               detail::cuda_data_type<Element>(), static_cast<int>(w.cols),
                               reinterpret_cast<const void* const*>(sp.b), detail::cuda_data_type<Element>(),
                               static_cast<int>(w.cols), &zero, reinterpret_cast<void* const*>(sp.c),
                               detail::cuda_data_type<Element>(), static_cast<int>(w.rows), static_cast<int>(lay.problems),
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (const Status s = cublas_status(st, message); s != Status::kSuccess) return s;
    if (const Status s = launch(detail::split_scatter_kernel<Element>, a.batch, 256, 0, stream, "precision split scatter",
                                static_cast<const int*>(seg), static_cast<const int*>(order), sp, a.y);
        s != Status::kSuccess)
      return fail(s);
    return Status::kSuccess;
  }

  Status launch_lut(const detail::FusedParams<Scale>& prm, int planes, int cps, cudaStream_t stream) {
    return with_planes(planes, [&](auto p) {
      constexpr int kP = decltype(p)::value;
      const index_t blocks = (prm.row_tiles + prm.tm - 1) / prm.tm;
      const int threads = prm.tm * prm.ks * 32, smem = prm.ks * 2 * int(prm.batch) * detail::kLutTableBytes;
      return prm.batch == 1 ? launch(detail::lut_mma_kernel<Element, Scale, kP, 1>, blocks, threads, smem, stream,
                                     "LUT kernel", prm, cps)
                            : launch(detail::lut_mma_kernel<Element, Scale, kP, 2>, blocks, threads, smem, stream,
                                     "LUT kernel", prm, cps);
    });
  }

  //! Turns the activations into bit planes (xb, xs) unless `pack` is false (they are there from an earlier
  //! call), then runs the binary-mma kernel.
  Status launch_bmma(const detail::FusedParams<Scale>& prm, int planes, bool pdl, bool pack, uint4* xb, float2* xs,
                     cudaStream_t stream) {
    if (pack)
      if (const Status s = launch_ex(detail::bmma_pack_x_kernel<Element>, {(2 * prm.chunks + 3) / 4, prm.batch, 1}, 128, 0,
                                     pdl, stream, "activation bit planes", static_cast<const Element*>(prm.x), xb, xs,
                                     int(prm.K), int(prm.chunks));
          s != Status::kSuccess)
        return s;
    const auto* xs4 = reinterpret_cast<const float4*>(xs);
    return with_planes(planes, [&](auto p) {
      constexpr int kP = decltype(p)::value;
      const index_t blocks = (prm.row_tiles + prm.tm - 1) / prm.tm;
      constexpr int smem = detail::kBmmaMaxWarps * detail::stages_for(kP) * detail::stage_u4<Scale>(kP) * 16;
      auto go = [&](auto kernel) {
        return launch_ex(kernel, {blocks, 1, 1}, detail::kBmmaMaxWarps * 32, smem, pdl, stream, "binary-mma kernel", prm,
                         static_cast<const uint4*>(xb), xs4);
      };
      if (prm.row_bits) {  // per-row precision (bmma_per_row: p ≤ 4, aligned scale tables)
        if constexpr (kP <= 4) {
          switch (prm.batch) {
            case 1: return go(detail::bmma_gemv_kernel<Element, Scale, kP, 1, false, true>);
            case 2: return go(detail::bmma_gemv_kernel<Element, Scale, kP, 2, false, true>);
            case 3:
            case 4: return go(detail::bmma_gemv_kernel<Element, Scale, kP, 4, false, true>);
            default: return go(detail::bmma_gemv_kernel<Element, Scale, kP, 8, false, true>);
          }
        }
        last_error_ = "binary-mma kernel: per-row precision needs p_max <= 4";
        return Status::kInvalidProblem;
      }
      // Rows past the batch (B rounded up) count zeros. The fast kernels need aligned scale runs that a
      // chunk's 32 lanes copy in one piece each.
      const bool tile = prm.batch > std::min(Tuning::kBmmaRowsMaxBatch, 4);
      if (!prm.aligned_scales || prm.chunk_scale_pieces(kP) > 32)
        return tile ? go(detail::bmma_gemv_kernel<Element, Scale, kP, 8, false>)
                    : go(detail::bmma_gemv_kernel<Element, Scale, kP, 4, false>);
      if (tile) return go(detail::bmma_gemv_kernel<Element, Scale, kP, 8, true>);
      switch (prm.batch) {
        case 1: return go(detail::bmma_gemv_kernel<Element, Scale, kP, 1, true>);
        case 2: return go(detail::bmma_gemv_kernel<Element, Scale, kP, 2, true>);
        default: return go(detail::bmma_gemv_kernel<Element, Scale, kP, 4, true>);
      }
    });
  }

  //! Whether the current device runs sm_90a code (compute capability 9.0); else sets last_error_ for `path`.
  bool sm90_device(GemmPath path) {
    if (cc_ == 0) {
      int dev = 0, major = 0, minor = 0;
      if (cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
          cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess)
        cc_ = 10 * major + minor;
    }
    if (cc_ == 90) return true;
    last_error_ = std::string("path ") + to_string(path) + " needs a compute capability 9.0 device (this one: " +
                  std::to_string(cc_ / 10) + "." + std::to_string(cc_ % 10) + ")";
    return false;
  }
  //! Launches the activation packing of the warpgroup kernel over `tiles` 128-row tiles (kSplit: the sorted
  //! rows of each precision from a tile of their own, seg and order from split_rows_kernel).
  template <bool kSplit = false>
  Status launch_wg_pack(const detail::FusedParams<Scale>& prm, index_t tiles, uint4* xp, cudaStream_t stream,
                        const int* seg = nullptr, const int* order = nullptr) {
    const int words = int(prm.chunks * 4);
    const index_t total = tiles * words * detail::kWgTileU4;
    const index_t pack_blocks = std::min<index_t>((total + 255) / 256, index_t(sm_count()) * 16);
    return launch(detail::wg_pack_x_kernel<Element, kSplit>, pack_blocks, 256, 0, stream, "activation packing",
                  static_cast<const Element*>(prm.x), xp, prm.batch, int(prm.K), words, total, seg, order);
  }
  //! Packs the activations into `xp`, then runs the warpgroup kernel over `splits` K slices (more than
  //! one: partial sums in `part`, then wg_reduce_kernel). Checks first that the device is compute
  //! capability 9.0 (the only one sm_90a code runs on).
  Status launch_wg(const detail::FusedParams<Scale>& prm, int planes, int splits, uint4* xp, float* part,
                   cudaStream_t stream) {
    if (!sm90_device(GemmPath::kWgmmaDequant)) return Status::kInvalidProblem;
    const int words = int(prm.chunks * 4);
    const index_t bblocks = wg_tile_rows(prm.batch);
    if (const Status s = launch_wg_pack(prm, bblocks, xp, stream); s != Status::kSuccess) return s;
    const index_t row_blocks = (prm.row_tiles + 3) / 4;
    const Status s = with_planes(planes, [&](auto pc) {
      constexpr int kP = decltype(pc)::value;
      if (prm.batch >= Tuning::kWsMinBatch) {
        const index_t grid[3] = {(prm.row_tiles + 7) / 8, bblocks / 2, splits};
        return launch_ws_one<kP>(prm, xp, words, grid, splits > 1 ? part : nullptr, stream);
      }
      // 256 batch rows per block above 128 rows (half the dequantization per row) while that still gives
      // every multiprocessor a block (then K is not split); at p ≤ 2 only (at p = 3, 4 it fits the
      // registers but measured slower). Only reachable where the warp-specialized kernel starts above 129.
      if constexpr (kP <= 2 && Tuning::kWsMinBatch > detail::kWgBatch + 1)
        if (splits == 1 && prm.batch > detail::kWgBatch && row_blocks * (bblocks / 2) >= sm_count())
          return launch_wg_one<kP, 2>(prm, xp, words, {row_blocks, bblocks / 2, 1}, nullptr, stream);
      return launch_wg_one<kP, 1>(prm, xp, words,
                                  {row_blocks, (prm.batch + detail::kWgBatch - 1) / detail::kWgBatch, splits},
                                  splits > 1 ? part : nullptr, stream);
    });
    if (s != Status::kSuccess || splits == 1) return s;
    return launch_wg_reduce<false>(part, prm.y, prm.batch, prm.M, splits, stream);
  }
  //! Adds the `splits` K slices of the warpgroup kernel's fp32 partial sums (rows × M outputs each) into y
  //! (wg_reduce_kernel; kSplit: rows are packed rows of the precision split, seg and order from
  //! split_rows_kernel).
  template <bool kSplit>
  Status launch_wg_reduce(const float* part, void* y, index_t rows, index_t M, int splits, cudaStream_t stream,
                          const int* seg = nullptr, const int* order = nullptr) {
    const index_t outputs = rows * M;
    return launch(detail::wg_reduce_kernel<Element, kSplit>,
                  std::min<index_t>((outputs + 255) / 256, index_t(sm_count()) * 8), 256, 0, stream,
                  "K-slice reduction", part, static_cast<Element*>(y), outputs, splits, M, seg, order);
  }
  template <int kPlanes>
  Status launch_ws_one(const detail::FusedParams<Scale>& prm, const uint4* xp, int words, const index_t (&grid)[3],
                       float* part, cudaStream_t stream) {
    return launch_grid(detail::wgss_kernel<Element, Scale, kPlanes>, grid, detail::kWsThreads,
                       detail::ws_smem_bytes<Scale>(kPlanes), stream, "warp-specialized warpgroup kernel", prm,
                       xp, words, part);
  }
  template <int kPlanes, int kNB, bool kSplit = false>
  Status launch_wg_one(const detail::FusedParams<Scale>& prm, const uint4* xp, int words, const index_t (&grid)[3],
                       float* part, cudaStream_t stream, bool pdl = false) {
    return launch_ex(detail::wgdq_kernel<Element, Scale, kPlanes, kNB, kSplit>, grid, 128,
                     detail::wg_smem_bytes<Scale>(kPlanes, kNB), pdl, stream, "warpgroup kernel", prm, xp, words, part);
  }

  Status launch_dequant(const detail::FusedParams<Scale>& prm, int p, bool wide, index_t blocks, Element* out,
                        cudaStream_t stream) {
    return with_planes(p, [&](auto pc) {
      constexpr int kP = decltype(pc)::value;
      if constexpr (!kScaleBounded)  // the wide decode only where the scale type does not rule it out
        if (wide)
          return launch(detail::dequantize_kernel<Tuning, Element, Scale, kP, true>, blocks, Tuning::kDequantWarps * 32,
                        Tuning::kDequantWarps * detail::kDequantWarpBytes, stream, "dequantize", prm, out);
      (void)wide;
      return launch(detail::dequantize_kernel<Tuning, Element, Scale, kP, false>, blocks, Tuning::kDequantWarps * 32,
                    Tuning::kDequantWarps * detail::kDequantWarpBytes, stream, "dequantize", prm, out);
    });
  }

  //! Multiprocessors of the current device (queried once; 132 if the query fails).
  int sm_count() {
    if (sms_ == 0) {
      int dev = 0, n = 0;
      sms_ = (cudaGetDevice(&dev) == cudaSuccess &&
              cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess && n > 0)
                 ? n
                 : 132;
    }
    return sms_;
  }

  cublasHandle_t handle_ = nullptr;
  int sms_ = 0;
  int cc_ = 0;  //!< compute capability of the current device (10·major + minor), queried on first use
  std::string last_error_;
};

}  // namespace cuda
ANYBCQ_NAMESPACE_END
