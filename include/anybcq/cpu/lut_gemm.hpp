// AnyBCQ — fast CPU GEMV/GEMM y = x·Ŵ_pᵀ by bit-serial table lookup, precision chosen per call and
// per activation row, multi-threaded, SIMD level chosen at run time (AVX-512 VBMI+VNNI, AVX2, scalar;
// all give the same bits).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/numeric.hpp"
#include "anybcq/core/weights.hpp"
#include "anybcq/cpu/isa.hpp"
#include "anybcq/cpu/lut_kernels.hpp"
#include "anybcq/cpu/lut_tables.hpp"
#include "anybcq/cpu/lut_weights.hpp"
#include "anybcq/cpu/thread_pool.hpp"
#include "anybcq/layout/row_tiled.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {

//! Knobs of the lookup-table GEMM; all are run-time values.
struct LutOptions {
  Isa isa = Isa::kAuto;   //!< kernel level (kAuto: best supported)
  index_t act_block = 0;  //!< features sharing one table scale (0: default_act_block(group))
  LutTables tables = LutTables::kInt8;  //!< table entries: int8 (fast) or int16 (≈ exact, twice the lookups)
  int threads = 0;        //!< pool workers to use (≤ 0: the whole pool; ignored without a pool)
};

//! True when the lookup-table kernels can run on `mv` (group size a multiple of 32).
template <class Scale>
bool can_implement(const MultiPrecisionView<layout::RowTiled, Scale>& mv) {
  return mv.group > 0 && mv.group % kWordBits == 0 && mv.cols % mv.group == 0;
}

namespace detail {

template <bool W, class Scale>
void lut_tile_dispatch(Isa isa, const LutTileArgs<Scale>& a, index_t tile, const index_t* act, int nb, float* ybuf) {
#if ANYBCQ_CPU_SIMD
  if (isa == Isa::kAvx512 && nb == 1) {  // AVX-512 batches: lut_block_avx512 (lut_block_dispatch)
    switch (a.bits) {                     // precision as a compile-time plane count, one bounded switch
      case 1: return lut_tile1_avx512<1, W>(a, tile, act, ybuf);
      case 2: return lut_tile1_avx512<2, W>(a, tile, act, ybuf);
      case 3: return lut_tile1_avx512<3, W>(a, tile, act, ybuf);
      case 4: return lut_tile1_avx512<4, W>(a, tile, act, ybuf);
      case 5: return lut_tile1_avx512<5, W>(a, tile, act, ybuf);
      case 6: return lut_tile1_avx512<6, W>(a, tile, act, ybuf);
      case 7: return lut_tile1_avx512<7, W>(a, tile, act, ybuf);
      default: return lut_tile1_avx512<8, W>(a, tile, act, ybuf);
    }
  }
  if (isa == Isa::kAvx2) {  // whole-tile kernels with regrouped word bytes (both kinds of tables)
    switch (nb) {
      case 1:
        switch (a.bits) {
          case 1: return lut_tile1_avx2<1, W>(a, tile, act, ybuf);
          case 2: return lut_tile1_avx2<2, W>(a, tile, act, ybuf);
          case 3: return lut_tile1_avx2<3, W>(a, tile, act, ybuf);
          case 4: return lut_tile1_avx2<4, W>(a, tile, act, ybuf);
          default: return lut_tile16_avx2<1, W>(a, tile, act, ybuf);
        }
      case 2: return lut_tile16_avx2<2, W>(a, tile, act, ybuf);
      case 3: return lut_tile16_avx2<3, W>(a, tile, act, ybuf);
      default: return lut_tile16_avx2<4, W>(a, tile, act, ybuf);
    }
  }
#else
  (void)isa;
#endif
  lut_tile_scalar(a, tile, act, nb, ybuf);
}

inline int lut_max_batch(Isa isa) { return isa == Isa::kAvx2 ? 4 : 8; }

inline constexpr int kLutMaxBlockTiles = 8;                //!< tiles per block of the AVX-512 batch kernel
inline constexpr index_t kLutBlockFloats = 4096;           //!< its z buffer, [tiles][p][rows][16] floats (16 KiB)
inline constexpr index_t kLutChunkTableBytes = 16 * 1024;  //!< its tables per K chunk, all rows (stay in L1)

//! Tiles per block for a batch chunk of nb rows at precision p (1 where the per-tile kernels run).
inline int lut_block_tiles(Isa isa, int p, int nb) {
  if (isa != Isa::kAvx512 || nb < 2) return 1;
  return static_cast<int>(std::clamp<index_t>(kLutBlockFloats / (index_t(p) * nb * 16), 1, kLutMaxBlockTiles));
}

// Tiles t0..t0+tb−1 for nb activation rows: ybuf gets [tb][nb][16] floats. zbuf: kLutBlockFloats floats,
// 64-byte aligned, with tb ≤ lut_block_tiles(isa, a.bits, nb).
template <bool W, class Scale>
void lut_block_dispatch(Isa isa, const LutTileArgs<Scale>& a, index_t t0, int tb, const index_t* act, int nb,
                        float* zbuf, float* ybuf) {
#if ANYBCQ_CPU_SIMD
  if (isa == Isa::kAvx512 && nb >= 2) {
    const index_t stride = W ? 2 * kLutBytesPerWord : kLutBytesPerWord;
    const index_t cw = std::max<index_t>(1, kLutChunkTableBytes / (nb * stride * a.seg_words)) * a.seg_words;
    switch (nb) {
      case 2: return lut_block_avx512<2, W>(a, t0, tb, cw, act, zbuf, ybuf);
      case 3: return lut_block_avx512<3, W>(a, t0, tb, cw, act, zbuf, ybuf);
      case 4: return lut_block_avx512<4, W>(a, t0, tb, cw, act, zbuf, ybuf);
      case 5: return lut_block_avx512<5, W>(a, t0, tb, cw, act, zbuf, ybuf);
      case 6: return lut_block_avx512<6, W>(a, t0, tb, cw, act, zbuf, ybuf);
      case 7: return lut_block_avx512<7, W>(a, t0, tb, cw, act, zbuf, ybuf);
      default: return lut_block_avx512<8, W>(a, t0, tb, cw, act, zbuf, ybuf);
    }
  }
#else
  (void)zbuf;
#endif
  for (int t = 0; t < tb; ++t) lut_tile_dispatch<W>(isa, a, t0 + t, act, nb, ybuf + index_t(t) * nb * 16);
}

}  // namespace detail

namespace detail {

//! What a call reads: the RowTiled view and, for LutWeights, the tiled scale copy.
template <class Scale>
struct LutSource {
  MultiPrecisionView<layout::RowTiled, Scale> mv;
  const LutScales<Scale>* tiled = nullptr;
};
template <class Scale>
LutSource<Scale> lut_source(const MultiPrecisionView<layout::RowTiled, Scale>& v) {
  return {v, nullptr};
}
template <class Scale>
LutSource<Scale> lut_source(const MultiPrecisionWeights<layout::RowTiled, Scale>& w) {
  return {w.multi_view(), nullptr};
}
template <class Scale>
LutSource<Scale> lut_source(const LutWeights<Scale>& w) {
  return {w.multi_view(), &w.scales()};
}
//! True for the weight types the lookup-table functions take: LutWeights (fastest: tiled scales),
//! MultiPrecisionWeights<layout::RowTiled, S> and MultiPrecisionView<layout::RowTiled, S>.
template <class W, class = void>
struct is_lut_weights : std::false_type {};
template <class W>
struct is_lut_weights<W, std::void_t<decltype(lut_source(std::declval<const W&>()))>> : std::true_type {};
template <class W>
using enable_lut_weights = std::enable_if_t<is_lut_weights<W>::value, int>;

template <class Scale, class Out>
void lut_gemm_run(const LutSource<Scale>& src, const int* bits, const LutActivations& acts, Out* y, ThreadPool* pool,
                  const LutOptions& opt) {
  static_assert(is_storage_float_v<Out>, "outputs must be float, half_t or bfloat16_t");
  const MultiPrecisionView<layout::RowTiled, Scale>& mv = src.mv;
  const index_t n = acts.rows();
  ANYBCQ_REQUIRE(can_implement(mv), "lut_gemm: group size ", mv.group,
                 " is not a multiple of 32; the lookup-table kernels need whole 32-feature words per group");
  ANYBCQ_REQUIRE(acts.cols() == mv.cols, "lut_gemm: activations have K = ", acts.cols(), " but the weights have K = ",
                 mv.cols);
  const index_t ab = acts.act_block(), grp = mv.group;
  ANYBCQ_REQUIRE(ab % grp == 0 || grp % ab == 0, "lut_gemm: activation block ", ab, " and weight group ", grp,
                 " must divide one another");
  for (index_t r = 0; r < n; ++r)
    ANYBCQ_REQUIRE(mv.has(bits[r]), "lut_gemm: row ", r, " asks for precision ", bits[r],
                   ", outside the weight's range ", mv.p_min(), "..", mv.p_max());
  if (n == 0) return;
  const Isa isa = resolve_isa(opt.isa);
  const index_t M = mv.rows, KW = mv.cols / 32, G = mv.cols / grp, gw = grp / 32;

  // Σx per (row, group), summed from the per-32 sums in order (identical on every path).
  std::vector<float> xsum(static_cast<std::size_t>(n * G));
  for (index_t r = 0; r < n; ++r)
    for (index_t g = 0; g < G; ++g) {
      float s = 0.0f;
      for (index_t kw = g * gw; kw < (g + 1) * gw; ++kw) s += acts.sum32(r, kw);
      xsum[std::size_t(r * G + g)] = s;
    }

  // Activation rows sorted by precision (descending), cut into chunks of one p and ≤ max_nb rows;
  // every chunk reuses each weight load of a tile across its rows.
  std::vector<index_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return bits[a] > bits[b]; });
  struct Chunk {
    int p;
    index_t begin;
    int count;
  };
  std::vector<Chunk> chunks;
  const int max_nb = detail::lut_max_batch(isa);
  for (index_t i = 0; i < n;) {
    const int p = bits[order[std::size_t(i)]];
    index_t e = i;
    while (e < n && bits[order[std::size_t(e)]] == p && e - i < max_nb) ++e;
    chunks.push_back({p, i, static_cast<int>(e - i)});
    i = e;
  }
  std::vector<LutTileArgs<Scale>> args(static_cast<std::size_t>(kMaxBits + 1));
  for (int p = mv.p_min(); p <= mv.p_max(); ++p) {
    const auto v = mv.at(p);
    auto& a = args[std::size_t(p)];
    a.planes = mv.planes;
    a.plane_words = mv.layout.plane_words();
    a.k_words = KW;
    a.rows = M;
    a.seg_words = std::min(grp, ab) / 32;
    a.group_words = gw;
    a.block_words = ab / 32;
    a.groups = G;
    a.bits = p;
    a.scales = src.tiled ? src.tiled->view(p) : LutScaleView<Scale>::from_canonical(v);
    a.acts = &acts;
    a.xsum = xsum.data();
  }

  const index_t T = mv.layout.tiles();
  const bool wide = acts.table_type() == LutTables::kInt16;
  int tb = detail::kLutMaxBlockTiles;  // one block size for all chunks of the call
  for (const Chunk& c : chunks) tb = std::min(tb, detail::lut_block_tiles(isa, c.p, c.count));
  auto work = [&](index_t t0, index_t t1) {
    alignas(64) float ybuf[detail::kLutMaxBlockTiles * 8 * 16];
    alignas(64) float zbuf[detail::kLutBlockFloats];
    for (index_t b0 = t0; b0 < t1; b0 += tb) {
      const int nt = static_cast<int>(std::min<index_t>(tb, t1 - b0));
      for (const Chunk& c : chunks) {
        const index_t* act = order.data() + c.begin;
        if (wide) {
          detail::lut_block_dispatch<true>(isa, args[std::size_t(c.p)], b0, nt, act, c.count, zbuf, ybuf);
        } else {
          detail::lut_block_dispatch<false>(isa, args[std::size_t(c.p)], b0, nt, act, c.count, zbuf, ybuf);
        }
        for (int t = 0; t < nt; ++t) {
          const index_t m0 = (b0 + t) * 16, valid = std::min<index_t>(16, M - m0);
          for (int j = 0; j < c.count; ++j) {
            const float* src = ybuf + (t * c.count + j) * 16;
            Out* dst = y + act[j] * M + m0;
            if constexpr (std::is_same_v<Out, float>) {
              std::memcpy(dst, src, static_cast<std::size_t>(valid) * sizeof(float));
            } else {
              for (index_t i = 0; i < valid; ++i) dst[i] = from_float<Out>(src[i]);
            }
          }
        }
      }
    }
  };
  const int nw = pool ? (opt.threads > 0 ? std::min(opt.threads, pool->size()) : pool->size()) : 1;
  if (nw <= 1) {
    work(0, T);
  } else {
    pool->parallel_for(T, std::max<index_t>(std::max(4, tb), T / (8 * nw)), work, nw);
  }
}

//! y = x·Ŵᵀ, row r at precision bits[r]; x is N×K (float, half_t or bfloat16_t), y is N×M.
}  // namespace detail

//! y = x·Ŵᵀ with prepared activations: row r of y (N×M, row-major) uses precision bits[r]
//! (p_min ≤ bits[r] ≤ p_max). w: LutWeights (fastest), or RowTiled weights or a view of them.
//! pool: workers to share the row tiles (nullptr: the calling thread). The activation block and
//! table type are those `acts` was built with (opt.act_block/tables unused).
template <class Weights, class Out, detail::enable_lut_weights<Weights> = 0>
void lut_gemm(const Weights& w, const int* bits, const LutActivations& acts, Out* y, ThreadPool* pool = nullptr,
              const LutOptions& opt = {}) {
  detail::lut_gemm_run(detail::lut_source(w), bits, acts, y, pool, opt);
}

//! The same from raw activations x (N×K, row-major; float, half_t or bfloat16_t).
template <class Weights, class In, class Out, detail::enable_lut_weights<Weights> = 0>
void lut_gemm(const Weights& w, const int* bits, const In* x, index_t n, Out* y, ThreadPool* pool = nullptr,
              const LutOptions& opt = {}) {
  const auto src = detail::lut_source(w);
  const index_t ab = opt.act_block > 0 ? opt.act_block : default_act_block(src.mv.group);
  const LutActivations acts = LutActivations::build(x, n, src.mv.cols, ab, opt.isa, pool, opt.threads, opt.tables);
  detail::lut_gemm_run(src, bits, acts, y, pool, opt);
}

//! y = x·Ŵ_pᵀ for N rows at one precision p.
template <class Weights, class In, class Out, detail::enable_lut_weights<Weights> = 0>
void lut_gemm(const Weights& w, int p, const In* x, index_t n, Out* y, ThreadPool* pool = nullptr,
              const LutOptions& opt = {}) {
  const auto src = detail::lut_source(w);
  ANYBCQ_REQUIRE(src.mv.has(p), "lut_gemm: precision ", p, " is outside the weight's range ", src.mv.p_min(), "..",
                 src.mv.p_max());
  const std::vector<int> bits(static_cast<std::size_t>(n), p);
  lut_gemm(w, bits.data(), x, n, y, pool, opt);
}

//! y = Ŵ_p·x for one activation row (GEMV).
template <class Weights, class In, class Out, detail::enable_lut_weights<Weights> = 0>
void lut_gemv(const Weights& w, int p, const In* x, Out* y, ThreadPool* pool = nullptr, const LutOptions& opt = {}) {
  lut_gemm(w, p, x, 1, y, pool, opt);
}

}  // namespace cpu
ANYBCQ_NAMESPACE_END
