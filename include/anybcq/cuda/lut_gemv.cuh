// AnyBCQ — memory-bound CUDA-core GEMV (batch 1 … 4) over the GemvTiled layout, with activation lookup tables.
//
// One warp = 32 consecutive output rows (lane = row); the warps of a block split K into contiguous runs of
// 128-column chunks. Per chunk a lane issues one 16-byte load per plane (128 weight bits), so a warp reads
// 512 contiguous bytes per plane. Activations enter through a per-warp table in shared memory: for each of
// the chunk's 32 groups of 4 inputs, the 16 signed sums ±x0±x1±x2±x3 (stride 17 floats: conflict-free
// stores; lookups of one nibble position hit 16 consecutive words: conflict-free or broadcast). A weight
// nibble then costs one PRMT (table address), one LDS and one FADD. Per chunk the fp32 plane partials are
// folded as y += Σ_i α^p_i·partial_i + β^p·Σx. Warp partials are reduced through shared memory in a fixed
// order (deterministic, no atomics), and y is written once. The next chunk's planes, scales and
// activations are loaded one chunk ahead into registers, so every lane has 2·p independent 16-byte loads
// in flight.
#pragma once
#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "anybcq/core/weights.hpp"
#include "anybcq/cuda/common.cuh"
#include "anybcq/cuda/device_weights.cuh"
#include "anybcq/layout/gemv_tiled.hpp"
#include "anybcq/layout/pack.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cuda {
namespace detail {

//! Bytes of one warp's lookup table for one activation row: 32 nibble positions × 17 floats, rounded up to a
//! multiple of 256 so that a table address is one PRMT of (weight byte, table base).
constexpr int kGemvTableBytes = 2304;
constexpr int kGemvTableStride = 68;  //!< bytes between nibble positions (17 floats, odd: conflict-free stores)
constexpr int kGemvMaxWarps = 16;

//! Largest warp count per block whose tables fit in 48 KB of shared memory for batch B.
constexpr int gemv_max_warps(int batch) {
  return std::min(kGemvMaxWarps, (48 * 1024) / (kGemvTableBytes * batch));
}

template <class Scale>
using gemv_scale_raw_t = std::conditional_t<sizeof(Scale) == 2, unsigned short, float>;

template <class Scale>
__device__ __forceinline__ gemv_scale_raw_t<Scale> gemv_load_scale(const Scale* p) {
  return __ldg(reinterpret_cast<const gemv_scale_raw_t<Scale>*>(p));
}
template <class Scale>
__device__ __forceinline__ float gemv_scale_float(gemv_scale_raw_t<Scale> r) {
  if constexpr (std::is_same_v<Scale, half_t>) {
    return __half2float(__ushort_as_half(r));
  } else if constexpr (std::is_same_v<Scale, bfloat16_t>) {
    return __uint_as_float(std::uint32_t(r) << 16);
  } else {
    return r;
  }
}

//! Four 16-bit activations (one uint2) → four floats.
template <class E>
__device__ __forceinline__ void gemv_unpack4(uint2 r, float (&v)[4]) {
  if constexpr (std::is_same_v<E, __half>) {
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&r.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&r.y));
    v[0] = a.x; v[1] = a.y; v[2] = b.x; v[3] = b.y;
  } else {
    v[0] = __uint_as_float(r.x << 16);
    v[1] = __uint_as_float(r.x & 0xFFFF0000u);
    v[2] = __uint_as_float(r.y << 16);
    v[3] = __uint_as_float(r.y & 0xFFFF0000u);
  }
}

__device__ __forceinline__ std::uint32_t gemv_word(const uint4& w, int t) {
  return t == 0 ? w.x : t == 1 ? w.y : t == 2 ? w.z : w.w;
}

//! Stores the lookup table of four inputs (raw 16-bit activations) at t[0 … 15]: entry e is Σ_j ±v_j with
//! +v_j where bit j of e is set. Returns v0 + v1 + v2 + v3.
template <class E>
__device__ __forceinline__ float gemv_store_quad_table(uint2 raw, float* t) {
  float v[4];
  gemv_unpack4<E>(raw, v);
  const float lo[4] = {-v[0] - v[1], v[0] - v[1], v[1] - v[0], v[0] + v[1]};
  const float hi[4] = {-v[2] - v[3], v[2] - v[3], v[3] - v[2], v[2] + v[3]};
#pragma unroll
  for (int e = 0; e < 16; ++e) t[e] = lo[e & 3] + hi[e >> 2];
  return lo[3] + hi[3];
}

//! Looks up the 8 nibbles of one 32-bit plane word for activation rows b < B and adds them to plane i's
//! partials: even nibbles to part[b][i][0], odd ones to part[b][i][S − 1]. Nibble n reads table position
//! pos0 + n (pos_bytes apart) of row b's tables, which start at byte tab0 + b·table_bytes of `smem` (a
//! multiple of 256, so the address is one PRMT of the index byte and the table base); `cls` is OR-ed into
//! every index byte.
template <int B, int P, int S>
__device__ __forceinline__ void gemv_lookup_word(const unsigned char* smem, std::uint32_t word, std::uint32_t cls,
                                                 std::uint32_t tab0, int table_bytes, int pos0, int pos_bytes, int i,
                                                 float (&part)[B][P][S]) {
  const std::uint32_t ev = ((word << 2) & 0x3C3C3C3Cu) | cls;  // byte q: 4 × nibble 2q
  const std::uint32_t od = ((word >> 2) & 0x3C3C3C3Cu) | cls;  // byte q: 4 × nibble 2q + 1
#pragma unroll
  for (int q = 0; q < 4; ++q)
#pragma unroll
    for (int b = 0; b < B; ++b) {
      const std::uint32_t tb = tab0 + std::uint32_t(b * table_bytes);
      const std::uint32_t oe = __byte_perm(ev, tb, 0x7650u | std::uint32_t(q));
      const std::uint32_t oo = __byte_perm(od, tb, 0x7650u | std::uint32_t(q));
      const int pos = pos0 + 2 * q;
      part[b][i][0] += *reinterpret_cast<const float*>(smem + oe + pos * pos_bytes);
      part[b][i][S - 1] += *reinterpret_cast<const float*>(smem + oo + (pos + 1) * pos_bytes);
    }
}

//! Zeroes the partials that gemv_lookup_word accumulates into.
template <int B, int P, int S>
__device__ __forceinline__ void gemv_clear_parts(float (&part)[B][P][S]) {
#pragma unroll
  for (int b = 0; b < B; ++b)
#pragma unroll
    for (int i = 0; i < P; ++i)
#pragma unroll
      for (int s = 0; s < S; ++s) part[b][i][s] = 0.0f;
}
//! The partial of row b and plane i: its S chains added in a fixed order.
template <int B, int P, int S>
__device__ __forceinline__ float gemv_part_sum(const float (&part)[B][P][S], int b, int i) {
  return S == 2 ? part[b][i][0] + part[b][i][S - 1] : part[b][i][0];
}

//! y[b][m] = Σ_k Ŵ_P[m][k]·x[b][k] for P planes, B activation rows.
//! planes: GemvTiled words as uint4 (one per row, plane, 128-column chunk); alpha/beta: the P-level tables.
template <class E, class Scale, int P, int B>
__global__ void __launch_bounds__(kGemvMaxWarps * 32)
    lut_gemv_kernel(const uint4* __restrict__ planes, const Scale* __restrict__ alpha, const Scale* __restrict__ beta,
                    const E* __restrict__ x, E* __restrict__ y, int M, int K, int planes_total, int group_chunks,
                    int chunks_per_warp) {
  extern __shared__ __align__(256) unsigned char gemv_smem[];
  using Raw = gemv_scale_raw_t<Scale>;
  constexpr int kSplit = (P * B <= 8) ? 2 : 1;  // independent FADD chains per (row, plane)

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  const int m = blockIdx.x * 32 + lane;
  const int mr = m < M ? m : M - 1;  // rows past M read row M−1 (in bounds) and write nothing
  const int nchunks = K >> 7;
  const int c0 = warp * chunks_per_warp;
  const int c1 = min(c0 + chunks_per_warp, nchunks);
  const std::uint32_t tab0 = std::uint32_t(warp * B * kGemvTableBytes);
  const bool has_beta = beta != nullptr;

  float acc[B];
#pragma unroll
  for (int b = 0; b < B; ++b) acc[b] = 0.0f;

  uint4 nw[P];
  Raw na[P];
  Raw nb = 0;
  uint2 nx[B];
  // Running 32-bit offsets of the next chunk to load (chunks are loaded in order c0, c0+1, …; can_implement
  // keeps every offset below 2^31): no division and no 64-bit math per chunk.
  const std::uint32_t chunk_stride = std::uint32_t(planes_total) * std::uint32_t(M);
  int cn = c0;  // next chunk to load
  const int grp0 = c0 / group_chunks;
  int in_group = c0 - grp0 * group_chunks;
  std::uint32_t ao = std::uint32_t(grp0) * std::uint32_t(P * M) + std::uint32_t(mr);
  std::uint32_t bo = std::uint32_t(grp0) * std::uint32_t(M) + std::uint32_t(mr);
  auto load = [&]() {
    const std::uint32_t wo = std::uint32_t(cn) * chunk_stride + std::uint32_t(mr);
    const std::uint32_t xo = std::uint32_t(cn) * 128u + std::uint32_t(lane) * 4u;
#pragma unroll
    for (int i = 0; i < P; ++i) nw[i] = __ldg(planes + (wo + std::uint32_t(i) * std::uint32_t(M)));
#pragma unroll
    for (int i = 0; i < P; ++i) na[i] = gemv_load_scale<Scale>(alpha + (ao + std::uint32_t(i) * std::uint32_t(M)));
    if (has_beta) nb = gemv_load_scale<Scale>(beta + bo);
#pragma unroll
    for (int b = 0; b < B; ++b) nx[b] = __ldg(reinterpret_cast<const uint2*>(x + (xo + std::uint32_t(b) * std::uint32_t(K))));
    ++cn;
    if (++in_group == group_chunks) {
      in_group = 0;
      ao += std::uint32_t(P * M);
      bo += std::uint32_t(M);
    }
  };

  if (c0 < c1) load();
  for (int c = c0; c < c1; ++c) {
    uint4 w[P];
    Raw a[P];
    const Raw bt = nb;
    uint2 xr[B];
#pragma unroll
    for (int i = 0; i < P; ++i) { w[i] = nw[i]; a[i] = na[i]; }
#pragma unroll
    for (int b = 0; b < B; ++b) xr[b] = nx[b];
    if (c + 1 < c1) load();

    // Lane j builds the 16 signed sums of inputs 4j … 4j+3 of this chunk, for every activation row.
    float sx[B];
    __syncwarp();  // the previous chunk's lookups are done before the tables are overwritten
#pragma unroll
    for (int b = 0; b < B; ++b)
      sx[b] = gemv_store_quad_table<E>(
          xr[b], reinterpret_cast<float*>(gemv_smem + tab0 + b * kGemvTableBytes + lane * kGemvTableStride));
    if (has_beta) {
#pragma unroll
      for (int b = 0; b < B; ++b) sx[b] = warp_all_reduce(sx[b], [](float u, float v) { return u + v; });
    }
    __syncwarp();

    float part[B][P][kSplit];
    gemv_clear_parts(part);
#pragma unroll
    for (int i = 0; i < P; ++i)
#pragma unroll
      for (int t = 0; t < 4; ++t)
        gemv_lookup_word(gemv_smem, gemv_word(w[i], t), 0u, tab0, kGemvTableBytes, 8 * t, kGemvTableStride, i, part);
#pragma unroll
    for (int b = 0; b < B; ++b) {
      float s = has_beta ? gemv_scale_float<Scale>(bt) * sx[b] : 0.0f;
#pragma unroll
      for (int i = 0; i < P; ++i) s = fmaf(gemv_scale_float<Scale>(a[i]), gemv_part_sum(part, b, i), s);
      acc[b] += s;
    }
  }

  // Deterministic reduction over warps (fixed order), reusing the table memory.
  __syncthreads();
  float* red = reinterpret_cast<float*>(gemv_smem);
#pragma unroll
  for (int b = 0; b < B; ++b) red[(warp * B + b) * 32 + lane] = acc[b];
  __syncthreads();
  if (warp == 0 && m < M) {
#pragma unroll
    for (int b = 0; b < B; ++b) {
      float s = 0.0f;
      for (int w = 0; w < warps; ++w) s += red[(w * B + b) * 32 + lane];
      y[std::size_t(b) * M + m] = from_f32<E>(s);
    }
  }
}

}  // namespace detail

//! Batch-1…4 GEMV y = x·Ŵ_pᵀ on CUDA cores over GemvTiled planes (CUTLASS-style adapter; stateless).
//! Element: __half or __nv_bfloat16 activations/outputs; Scale: half_t, bfloat16_t or float.
//! Requires K % 128 == 0 and group % 128 == 0. No workspace, no atomics, no allocation; graph-capturable.
template <class Element, class Scale = half_t>
class LutGemv {
  static_assert(is_element_v<Element>, "Element must be __half or __nv_bfloat16");
  static_assert(is_storage_float_v<Scale>, "Scale must be float, half_t or bfloat16_t");

 public:
  static constexpr index_t kMaxBatch = 4;  //!< largest batch (activation rows) one call takes
  using WeightsView = MultiPrecisionView<layout::GemvTiled, Scale>;

  struct Arguments {
    WeightsView weights{};
    const Element* x = nullptr;  //!< batch × K, row-major
    Element* y = nullptr;        //!< batch × M, row-major; every element is written
    int bits = 0;                //!< precision p (p_min ≤ p ≤ p_max)
    index_t batch = 1;           //!< 1 … kMaxBatch
    int warps = 0;               //!< tuning: warps per block, each taking a share of K (0 = automatic)
  };

  //! Whether run(args) can execute; the message names the bad value and the rule.
  static Check can_implement(const Arguments& a) {
    const auto& w = a.weights;
    auto bad = [](Status s, const auto&... parts) {
      std::ostringstream os;
      os << "LutGemv: ";
      (os << ... << parts);
      return Check{s, os.str()};
    };
    if (!w.planes || !w.alpha) return bad(Status::kMisalignedOperand, "weights.planes or weights.alpha is null");
    if (!a.x || !a.y) return bad(Status::kMisalignedOperand, "x or y is null");
    if (w.rows <= 0 || w.cols <= 0) return bad(Status::kInvalidProblem, "empty matrix (M = ", w.rows, ", K = ", w.cols, ")");
    if (w.cols % 128 != 0) return bad(Status::kInvalidProblem, "K = ", w.cols, " is not a multiple of 128");
    if (w.group <= 0 || w.group % 128 != 0 || w.cols % w.group != 0)
      return bad(Status::kInvalidProblem, "group size ", w.group, " must be a multiple of 128 that divides K = ", w.cols);
    if (a.bits < 1 || a.bits > kMaxBits || !w.has(a.bits))
      return bad(Status::kInvalidProblem, "precision p = ", a.bits, " is outside ", w.p_min(), "..", w.p_max());
    if (w.layout.rows != w.rows || w.layout.k_words * kWordBits != w.cols || w.layout.planes < w.p_max())
      return bad(Status::kInvalidProblem, "layout (rows ", w.layout.rows, ", k_words ", w.layout.k_words, ", planes ",
                 w.layout.planes, ") does not match the view (M = ", w.rows, ", K = ", w.cols, ", p_max = ", w.p_max(), ")");
    if (w.scales.rows != w.rows || w.scales.groups != w.cols / w.group)
      return bad(Status::kInvalidProblem, "scale layout (rows ", w.scales.rows, ", groups ", w.scales.groups,
                 ") does not match M = ", w.rows, ", K / group = ", w.cols / w.group);
    if (a.batch < 1 || a.batch > kMaxBatch)
      return bad(Status::kInvalidProblem, "batch = ", a.batch, " is outside 1..", kMaxBatch);
    if (a.warps < 0 || a.warps > detail::gemv_max_warps(int(a.batch)))
      return bad(Status::kInvalidProblem, "warps = ", a.warps, " is outside 0..", detail::gemv_max_warps(int(a.batch)),
                 " for batch ", a.batch);
    if (w.layout.size_words() / 4 >= (index_t(1) << 31) || w.scales.alpha_size() >= (index_t(1) << 31) ||
        index_t(kMaxBatch) * w.cols >= (index_t(1) << 31))
      return bad(Status::kInvalidProblem, "M = ", w.rows, ", K = ", w.cols, ": the kernel's 32-bit offsets would overflow");
    if (reinterpret_cast<std::uintptr_t>(w.planes) % 16 != 0)
      return bad(Status::kMisalignedOperand, "weights.planes is not 16-byte aligned");
    if (reinterpret_cast<std::uintptr_t>(a.x) % 8 != 0) return bad(Status::kMisalignedOperand, "x is not 8-byte aligned");
    if (reinterpret_cast<std::uintptr_t>(a.y) % alignof(Element) != 0)
      return bad(Status::kMisalignedOperand, "y is not aligned to its element size");
    return {};
  }

  //! Launch on `stream` (checks can_implement first; a failed launch returns kCudaError).
  static Check run(const Arguments& a, cudaStream_t stream = nullptr) {
    Check c = can_implement(a);
    if (!c) return c;
    switch (a.bits) {
      case 1: return dispatch_batch<1>(a, stream);
      case 2: return dispatch_batch<2>(a, stream);
      case 3: return dispatch_batch<3>(a, stream);
      case 4: return dispatch_batch<4>(a, stream);
      case 5: return dispatch_batch<5>(a, stream);
      case 6: return dispatch_batch<6>(a, stream);
      case 7: return dispatch_batch<7>(a, stream);
      case 8: return dispatch_batch<8>(a, stream);
      default: return Check{Status::kInvalidProblem, "LutGemv: unreachable precision"};
    }
  }

  //! Warps per block and 128-column chunks per warp the launch uses for M, K and batch.
  static std::pair<int, int> launch_shape(index_t M, index_t K, index_t batch, int warps_wanted = 0) {
    const int nchunks = int(K / 128);
    const int max_w = detail::gemv_max_warps(int(batch));
    // Automatic: 16 warps per block while that gives under 2048 warps in all, else 8 (H100 sweep, batch 1:
    // 8 beats 16 by 5–10 % from M = 14336 on, 16 beats 8 by 10–25 % at M = 4096); at least two chunks per warp.
    const index_t row_groups = (M + 31) / 32;
    const int auto_w = row_groups * 8 < 2048 ? 16 : 8;
    int warps = warps_wanted > 0 ? std::min(warps_wanted, nchunks) : std::max(1, std::min({max_w, nchunks / 2, auto_w}));
    const int cpw = (nchunks + warps - 1) / warps;
    warps = (nchunks + cpw - 1) / cpw;
    return {warps, cpw};
  }

 private:
  template <int P>
  static Check dispatch_batch(const Arguments& a, cudaStream_t stream) {
    switch (a.batch) {
      case 1: return launch<P, 1>(a, stream);
      case 2: return launch<P, 2>(a, stream);
      case 3: return launch<P, 3>(a, stream);
      default: return launch<P, 4>(a, stream);
    }
  }

  template <int P, int B>
  static Check launch(const Arguments& a, cudaStream_t stream) {
    const auto& w = a.weights;
    const auto [warps, cpw] = launch_shape(w.rows, w.cols, B, a.warps);
    const WeightView<layout::GemvTiled, Scale> v = w.at(P);
    const dim3 grid(unsigned((w.rows + 31) / 32));
    const dim3 block(unsigned(warps * 32));
    const std::size_t smem = std::size_t(warps) * B * detail::kGemvTableBytes;
    detail::lut_gemv_kernel<Element, Scale, P, B><<<grid, block, smem, stream>>>(
        reinterpret_cast<const uint4*>(w.planes), v.alpha, v.beta, a.x, a.y, int(w.rows), int(w.cols),
        int(w.layout.planes), int(w.group / 128), cpw);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return Check{Status::kCudaError, std::string("LutGemv: launch failed: ") + cudaGetErrorString(e)};
    return {};
  }
};

//! Device copy of multi-precision weights in the GemvTiled layout (planes repacked on the host), for LutGemv.
template <class Scale = half_t>
using GemvWeights = DeviceWeights<Scale, layout::GemvTiled>;

}  // namespace cuda
ANYBCQ_NAMESPACE_END
