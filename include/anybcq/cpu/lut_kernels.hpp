// AnyBCQ — bit-serial lookup-table tile kernels (scalar, AVX2, AVX-512 VBMI+VNNI) over the
// layout::RowTiled planes. A tile is 16 output rows; every path produces the same bits.
//
// Per tile, activation row n, plane b and segment (min(group, act_block) features):
//   S = Σ_kw Σ_c T_lo[kw][c][byte_c & 15] + T_hi[kw][c][byte_c >> 4]     (exact int32; int8 or int16
//       entries, the int16 ones stored as a low-byte and a high-byte table: S = 256·S_high + S_low)
//   z_b = fma(float(S), α^p[g][b][m] · scale[n][block], z_b)   (z_b = 0 first; segments in order)
// then y = (((0 + z_0) + z_1) + …) + z_{p−1}, and finally y = fma(β^p[g][m], Σx[n][g], y) for g = 0..G−1.
#pragma once
#include <cmath>
#include <cstdint>

#include "anybcq/core/config.hpp"
#include "anybcq/core/numeric.hpp"
#include "anybcq/cpu/isa.hpp"
#include "anybcq/cpu/lut_tables.hpp"
#include "anybcq/cpu/lut_weights.hpp"
#include "anybcq/layout/row_tiled.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {
namespace detail {

//! Everything a tile kernel needs for one precision p.
template <class Scale>
struct LutTileArgs {
  const std::uint32_t* planes = nullptr;  //!< plane 0, tile 0 of the RowTiled words
  index_t plane_words = 0;                //!< words per plane
  index_t k_words = 0;                    //!< K / 32
  index_t rows = 0;                       //!< M
  index_t seg_words = 0;                  //!< words per segment: min(group, act_block) / 32
  index_t group_words = 0;                //!< group / 32
  index_t block_words = 0;                //!< act_block / 32
  index_t groups = 0;                     //!< G
  int bits = 0;                           //!< p
  LutScaleView<Scale> scales;             //!< α^p and β^p (β nullptr when symmetric)
  const LutActivations* acts = nullptr;
  const float* xsum = nullptr;            //!< [n][G] activation sums per group
};

//! Tables and table scales of the NB activation rows act[0..NB-1].
template <int NB, class Scale>
ANYBCQ_FORCEINLINE void lut_act_rows(const LutTileArgs<Scale>& a, const index_t* act, const std::int8_t* (&tabs)[NB],
                                     const float* (&sc)[NB]) {
  for (int n = 0; n < NB; ++n) {
    tabs[n] = a.acts->tables(act[n]);
    sc[n] = a.acts->scales(act[n]);
  }
}

template <class Scale>
inline void lut_tile_scalar(const LutTileArgs<Scale>& a, index_t tile, const index_t* act, int nb, float* ybuf) {
  const index_t m0 = tile * layout::RowTiled::kTileRows;
  const index_t valid = a.rows - m0 < 16 ? a.rows - m0 : 16;
  const bool wide = a.acts->table_type() == LutTables::kInt16;
  const index_t stride = a.acts->bytes_per_word();
  for (int n = 0; n < nb; ++n) {
    const std::int8_t* tab = a.acts->tables(act[n]);
    const float* sc = a.acts->scales(act[n]);
    const float* xs = a.xsum + act[n] * a.groups;
    for (index_t i = 0; i < valid; ++i) {
      float y = 0.0f;
      for (int b = 0; b < a.bits; ++b) {
        const std::uint32_t* wp = a.planes + b * a.plane_words + tile * a.k_words * 16 + i;
        float z = 0.0f;
        for (index_t s0 = 0; s0 < a.k_words; s0 += a.seg_words) {
          std::int32_t s = 0;
          for (index_t kw = s0; kw < s0 + a.seg_words; ++kw) {
            const std::uint32_t w = wp[kw * 16];
            const std::int8_t* t = tab + kw * stride;
            for (int c = 0; c < 4; ++c) {
              const unsigned byte = (w >> (8 * c)) & 0xFFu;
              const int lo = 16 * c + int(byte & 15u), hi = 64 + 16 * c + int(byte >> 4);
              if (wide) {
                s += 256 * t[128 + lo] + static_cast<std::uint8_t>(t[lo]);
                s += 256 * t[128 + hi] + static_cast<std::uint8_t>(t[hi]);
              } else {
                s += t[lo] + t[hi];
              }
            }
          }
          const index_t g = s0 / a.group_words, blk = s0 / a.block_words;
          const float f = to_float(a.scales.alpha_at(tile, g, b)[i]) * sc[blk];
          z = std::fma(static_cast<float>(s), f, z);
        }
        y = y + z;
      }
      if (a.scales.beta)
        for (index_t g = 0; g < a.groups; ++g) y = std::fma(to_float(a.scales.beta_at(tile, g)[i]), xs[g], y);
      ybuf[n * 16 + i] = y;
    }
  }
}

#if ANYBCQ_CPU_SIMD
ANYBCQ_SIMD_DIAGNOSTICS_BEGIN
// ---- AVX-512: vpermb looks up 64 bytes (16 rows × 4 word bytes) in 4 tables at once; vpdpbusd sums
// the 4 bytes of a row into its int32 lane.

template <class Scale>
ANYBCQ_TARGET_AVX512 ANYBCQ_FORCEINLINE __m512 load16_avx512(const Scale* p, __mmask16 k) {
  if constexpr (std::is_same_v<Scale, float>) {
    return _mm512_maskz_loadu_ps(k, p);
  } else if constexpr (std::is_same_v<Scale, half_t>) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p));
  } else {
    const __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
  }
}

// Scales of tiles t0..t0+nt−1 (every group, all p planes and β), line by line. Tiled scales: one
// contiguous run; canonical: G·(p + 1) runs of nt·16 rows, M rows apart.
template <class Scale>
ANYBCQ_FORCEINLINE void lut_prefetch_scales(const LutScaleView<Scale>& s, index_t t0, index_t nt, index_t groups, int p,
                                            int hint) {
  auto fetch = [hint](const Scale* b, const Scale* e) {
    for (const char* q = reinterpret_cast<const char*>(b); q < reinterpret_cast<const char*>(e); q += 64) {
      if (hint == _MM_HINT_T0)
        _mm_prefetch(q, _MM_HINT_T0);
      else
        _mm_prefetch(q, _MM_HINT_T1);
    }
  };
  if (s.tiled) {
    fetch(s.alpha_at(t0, 0, 0), s.alpha_at(t0 + nt, 0, 0));
    if (s.beta) fetch(s.beta_at(t0, 0), s.beta_at(t0 + nt, 0));
    return;
  }
  for (index_t g = 0; g < groups; ++g) {
    for (int b = 0; b < p; ++b) fetch(s.alpha_at(t0, g, b), s.alpha_at(t0 + nt, g, b));
    if (s.beta) fetch(s.beta_at(t0, g), s.beta_at(t0 + nt, g));
  }
}

// One weight vector (16 rows × 32 features of one plane) against NB activation rows. int8 tables:
// acc[.][0] += low-nibble lookups, acc[.][1] += high-nibble lookups. int16 tables (W): acc[.][0] sums
// the unsigned low bytes, acc[.][1] the signed high bytes.
template <bool W>
ANYBCQ_TARGET_AVX512 ANYBCQ_FORCEINLINE void lut_lookup_avx512(__m512i ilo, __m512i ihi, const std::int8_t* t,
                                                               __m512i& a0, __m512i& a1) {
  const __m512i ones = _mm512_set1_epi8(1);
  if constexpr (!W) {
    a0 = _mm512_dpbusd_epi32(a0, ones, _mm512_permutexvar_epi8(ilo, _mm512_load_si512(t)));
    a1 = _mm512_dpbusd_epi32(a1, ones, _mm512_permutexvar_epi8(ihi, _mm512_load_si512(t + 64)));
  } else {
    a0 = _mm512_dpbusd_epi32(a0, _mm512_permutexvar_epi8(ilo, _mm512_load_si512(t)), ones);
    a0 = _mm512_dpbusd_epi32(a0, _mm512_permutexvar_epi8(ihi, _mm512_load_si512(t + 64)), ones);
    a1 = _mm512_dpbusd_epi32(a1, ones, _mm512_permutexvar_epi8(ilo, _mm512_load_si512(t + 128)));
    a1 = _mm512_dpbusd_epi32(a1, ones, _mm512_permutexvar_epi8(ihi, _mm512_load_si512(t + 192)));
  }
}

// S from the two accumulators (see lut_lookup_avx512).
template <bool W>
ANYBCQ_TARGET_AVX512 ANYBCQ_FORCEINLINE __m512i lut_sum_avx512(__m512i a0, __m512i a1) {
  if constexpr (W) return _mm512_add_epi32(_mm512_slli_epi32(a1, 8), a0);
  return _mm512_add_epi32(a0, a1);
}

// Batch kernels with int8 tables and NB ≥ 4 rows add both nibbles' lookups into acc[.][0] (lut_lookup_avx512
// with one accumulator for both; the same integer sum as acc[.][0] + acc[.][1]; NB rows give enough
// independent vpdpbusd chains): one vector add less per row and segment. lut_batch_sum reads the sum either way.
template <int NB, bool W>
inline constexpr bool kLutOneAcc = !W && NB >= 4;

template <int NB, bool W>
ANYBCQ_TARGET_AVX512 ANYBCQ_FORCEINLINE void lut_step_avx512(const std::uint32_t* wp, const std::int8_t* const* tabs,
                                                             index_t kw, __m512i (&acc)[NB][2]) {
  constexpr index_t kStride = W ? 2 * kLutBytesPerWord : kLutBytesPerWord;
  const __m512i m0f = _mm512_set1_epi8(0x0F);
  const __m512i cbits = _mm512_set1_epi32(0x30201000);  // byte c of a word selects table c
  const __m512i w = _mm512_loadu_si512(wp + kw * 16);
  const __m512i ilo = _mm512_ternarylogic_epi32(w, m0f, cbits, 0xEA);  // (w & 0x0F) | c<<4
  const __m512i ihi = _mm512_ternarylogic_epi32(_mm512_srli_epi32(w, 4), m0f, cbits, 0xEA);
  for (int n = 0; n < NB; ++n)
    lut_lookup_avx512<W>(ilo, ihi, tabs[n] + kw * kStride, acc[n][0], acc[n][kLutOneAcc<NB, W> ? 0 : 1]);
}
template <int NB, bool W>
ANYBCQ_TARGET_AVX512 ANYBCQ_FORCEINLINE __m512i lut_batch_sum(const __m512i (&acc)[2]) {
  if constexpr (kLutOneAcc<NB, W>) return acc[0];
  return lut_sum_avx512<W>(acc[0], acc[1]);
}

// Batch kernel over a block of tb tiles (NB ≥ 2 activation rows). K is walked in chunks of cw words
// whose NB tables stay in L1; within a chunk every tile and plane of the block is done, so a table
// byte comes from L2 once per block and chunk instead of once per tile and plane (for NB = 8 and
// K = 4096 the tables are 128 KiB, far more than L1). z_b of every (tile, plane, row) waits in zbuf
// ([tb][p][NB][16], L1) between chunks; each output sees the same float operations, in the same
// order, as in lut_tile_scalar.
template <int NB, bool W, class Scale>
ANYBCQ_TARGET_AVX512 void lut_block_avx512(const LutTileArgs<Scale>& a, index_t t0, int tb, index_t cw,
                                           const index_t* act, float* zbuf, float* ybuf) {
  const int P = a.bits;
  const std::int8_t* tabs[NB];
  const float* sc[NB];
  lut_act_rows<NB>(a, act, tabs, sc);
  for (index_t i = 0; i < index_t(tb) * P * NB * 16; i += 16) _mm512_store_ps(zbuf + i, _mm512_setzero_ps());
  if ((t0 + tb) * 16 < a.rows) lut_prefetch_scales(a.scales, t0 + tb, tb, a.groups, P, _MM_HINT_T0);  // next block
  const index_t tiles = (a.rows + 15) / 16, first = cw < a.k_words ? cw : a.k_words;
  for (index_t c0 = 0; c0 < a.k_words; c0 += cw) {
    const index_t c1 = c0 + cw < a.k_words ? c0 + cw : a.k_words;
    const index_t n1 = c1 + cw < a.k_words ? c1 + cw : a.k_words;  // next chunk, fetched into L2 now
    for (int t = 0; t < tb; ++t) {
      const index_t m0 = (t0 + t) * 16;
      const index_t valid = a.rows - m0 < 16 ? a.rows - m0 : 16;
      const __mmask16 k = static_cast<__mmask16>((1u << valid) - 1u);
      // in the last chunk, the first chunk of the same tile and plane of the next block (4-5% cold)
      const bool ahead = c1 == a.k_words && t0 + tb + t < tiles;
      for (int b = 0; b < P; ++b) {
        const std::uint32_t* wp = a.planes + b * a.plane_words + (t0 + t) * a.k_words * 16;
        // word kw's line of the next chunk (or, in the last chunk, of the next block's first chunk) is
        // requested as kw is done, so that the requests spread over the chunk's work
        const std::uint32_t* pf = ahead ? wp + (index_t(tb) * a.k_words - c0) * 16 : wp + (c1 - c0) * 16;
        const index_t pf_end = ahead ? c0 + first : c0 + (n1 - c1);
        float* zp = zbuf + (index_t(t) * P + b) * NB * 16;
        __m512 z[NB];
        for (int n = 0; n < NB; ++n) z[n] = _mm512_load_ps(zp + n * 16);
        for (index_t s0 = c0; s0 < c1; s0 += a.seg_words) {
          __m512i acc[NB][2];
          for (int n = 0; n < NB; ++n) acc[n][0] = acc[n][1] = _mm512_setzero_si512();
          for (index_t kw = s0; kw < s0 + a.seg_words; ++kw) {
            if (kw < pf_end) _mm_prefetch(reinterpret_cast<const char*>(pf + kw * 16), _MM_HINT_T1);
            lut_step_avx512<NB, W>(wp, tabs, kw, acc);
          }
          const index_t g = s0 / a.group_words, blk = s0 / a.block_words;
          const __m512 al = load16_avx512(a.scales.alpha_at(t0 + t, g, b), k);
          for (int n = 0; n < NB; ++n)
            z[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lut_batch_sum<NB, W>(acc[n])),
                                   _mm512_mul_ps(al, _mm512_set1_ps(sc[n][blk])), z[n]);
        }
        // a last chunk shorter than the next block's first one: the lines its words did not cover
        for (index_t kw = c1; kw < pf_end; ++kw) _mm_prefetch(reinterpret_cast<const char*>(pf + kw * 16), _MM_HINT_T1);
        for (int n = 0; n < NB; ++n) _mm512_store_ps(zp + n * 16, z[n]);
      }
    }
  }
  for (int t = 0; t < tb; ++t) {
    const index_t m0 = (t0 + t) * 16;
    const index_t valid = a.rows - m0 < 16 ? a.rows - m0 : 16;
    const __mmask16 k = static_cast<__mmask16>((1u << valid) - 1u);
    __m512 y[NB];
    for (int n = 0; n < NB; ++n) y[n] = _mm512_setzero_ps();
    for (int b = 0; b < P; ++b)
      for (int n = 0; n < NB; ++n) y[n] = _mm512_add_ps(y[n], _mm512_load_ps(zbuf + ((index_t(t) * P + b) * NB + n) * 16));
    if (a.scales.beta)
      for (index_t g = 0; g < a.groups; ++g) {
        const __m512 be = load16_avx512(a.scales.beta_at(t0 + t, g), k);
        for (int n = 0; n < NB; ++n) y[n] = _mm512_fmadd_ps(be, _mm512_set1_ps(a.xsum[act[n] * a.groups + g]), y[n]);
      }
    for (int n = 0; n < NB; ++n) _mm512_storeu_ps(ybuf + (index_t(t) * NB + n) * 16, y[n]);
  }
}

// GEMV (one activation row) at precision P: all P plane streams advance together, word by word, so
// each plane is read as one sequential stream across tiles; one table load serves every plane.
template <int P, bool W>
ANYBCQ_TARGET_AVX512 ANYBCQ_FORCEINLINE void lut_gemv_step_avx512(const std::uint32_t* const* wp, const std::int8_t* tab,
                                                                  index_t kw, __m512i (&acc)[P][2]) {
  constexpr index_t kStride = W ? 2 * kLutBytesPerWord : kLutBytesPerWord;
  const __m512i m0f = _mm512_set1_epi8(0x0F);
  const __m512i cbits = _mm512_set1_epi32(0x30201000);
  const std::int8_t* t = tab + kw * kStride;
  for (int b = 0; b < P; ++b) {
    const __m512i w = _mm512_loadu_si512(wp[b] + kw * 16);
    const __m512i ilo = _mm512_ternarylogic_epi32(w, m0f, cbits, 0xEA);
    const __m512i ihi = _mm512_ternarylogic_epi32(_mm512_srli_epi32(w, 4), m0f, cbits, 0xEA);
    lut_lookup_avx512<W>(ilo, ihi, t, acc[b][0], acc[b][1]);
  }
}

template <int P, bool W, class Scale>
ANYBCQ_TARGET_AVX512 void lut_tile1_avx512(const LutTileArgs<Scale>& a, index_t tile, const index_t* act,
                                           float* ybuf) {
  const index_t m0 = tile * 16;
  const index_t valid = a.rows - m0 < 16 ? a.rows - m0 : 16;
  const __mmask16 k = static_cast<__mmask16>((1u << valid) - 1u);
  constexpr int U = P <= 4 ? 2 : 1;  // two accumulator sets per plane hide vpdpbusd latency
  const std::int8_t* tab = a.acts->tables(act[0]);
  const float* sc = a.acts->scales(act[0]);
  const std::uint32_t* wp[P];
  for (int b = 0; b < P; ++b) wp[b] = a.planes + b * a.plane_words + tile * a.k_words * 16;
  // The next-but-one tile's scales, into L2 (canonical scales into L1: the G·(p + 1) lines per tile
  // displaced the plane stream, p = 3, 4 measured 20-30% slower at M = 65536).
  if (m0 + 32 < a.rows) lut_prefetch_scales(a.scales, tile + 2, 1, a.groups, P, _MM_HINT_T1);
  __m512 z[P];
  for (int b = 0; b < P; ++b) z[b] = _mm512_setzero_ps();
  for (index_t s0 = 0; s0 < a.k_words; s0 += a.seg_words) {
    __m512i acc[U][P][2];
    for (int u = 0; u < U; ++u)
      for (int b = 0; b < P; ++b) acc[u][b][0] = acc[u][b][1] = _mm512_setzero_si512();
    const index_t end = s0 + a.seg_words;
    index_t kw = s0;
    for (; kw + U <= end; kw += U)
      for (int u = 0; u < U; ++u) lut_gemv_step_avx512<P, W>(wp, tab, kw + u, acc[u]);
    for (; kw < end; ++kw) lut_gemv_step_avx512<P, W>(wp, tab, kw, acc[0]);
    for (int u = 1; u < U; ++u)
      for (int b = 0; b < P; ++b) {
        acc[0][b][0] = _mm512_add_epi32(acc[0][b][0], acc[u][b][0]);
        acc[0][b][1] = _mm512_add_epi32(acc[0][b][1], acc[u][b][1]);
      }
    const index_t g = s0 / a.group_words, blk = s0 / a.block_words;
    const __m512 s = _mm512_set1_ps(sc[blk]);
    for (int b = 0; b < P; ++b) {
      const __m512 al = load16_avx512(a.scales.alpha_at(tile, g, b), k);
      z[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lut_sum_avx512<W>(acc[0][b][0], acc[0][b][1])), _mm512_mul_ps(al, s),
                             z[b]);
    }
  }
  __m512 y = _mm512_setzero_ps();
  for (int b = 0; b < P; ++b) y = _mm512_add_ps(y, z[b]);
  if (a.scales.beta)
    for (index_t g = 0; g < a.groups; ++g)
      y = _mm512_fmadd_ps(load16_avx512(a.scales.beta_at(tile, g), k), _mm512_set1_ps(a.xsum[act[0] * a.groups + g]), y);
  _mm512_storeu_ps(ybuf, y);
}

// ---- AVX2: vpshufb has one 16-entry table per 128-bit lane.

template <class Scale>
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE __m256 load8_avx2(const Scale* p, index_t valid) {
  if (valid >= 8) {
    if constexpr (std::is_same_v<Scale, float>) {
      return _mm256_loadu_ps(p);
    } else if constexpr (std::is_same_v<Scale, half_t>) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    } else {
      const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
  }
  alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (index_t i = 0; i < valid; ++i) tmp[i] = to_float(p[i]);
  return _mm256_load_ps(tmp);
}

// AVX2, whole 16-row tiles: the 64 bytes of a word vector (16 rows × 4 word bytes) are regrouped (one
// in-lane byte shuffle per half, a dword unpack and a qword permute) so that a 128-bit lane holds word
// byte c of all 16 rows; one vpshufb then looks up 16 rows in table c, 4 per row and word instead of 16
// (int16 tables: 8, low and high bytes). The low- and high-nibble lookups of a row are interleaved and
// summed by vpmaddubsw into int16 (at most 8 words at a time, then widened to int32); int16 tables keep
// the sums of their unsigned low bytes and signed high bytes apart, S = 256·high + low, as the AVX-512
// kernels do: the same exact integer sums as the other paths, and the same float epilogue.
struct LutIdx16Avx2 {
  __m256i lo01, hi01, lo23, hi23;  // nibble indices; lanes: word byte 0 | 1, and 2 | 3, of rows 0..15
};
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE LutIdx16Avx2 lut_regroup_avx2(const std::uint32_t* wv) {
  const __m256i grp = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                       0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i m0f = _mm256_set1_epi8(0x0F);
  const __m128i* v = reinterpret_cast<const __m128i*>(wv);
  const __m256i A = _mm256_shuffle_epi8(  // rows 0-3 | rows 8-11, each lane ordered by word byte
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(v)), _mm_loadu_si128(v + 2), 1), grp);
  const __m256i B = _mm256_shuffle_epi8(  // rows 4-7 | rows 12-15
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(v + 1)), _mm_loadu_si128(v + 3), 1), grp);
  const __m256i u01 = _mm256_permute4x64_epi64(_mm256_unpacklo_epi32(A, B), 0xD8);
  const __m256i u23 = _mm256_permute4x64_epi64(_mm256_unpackhi_epi32(A, B), 0xD8);
  LutIdx16Avx2 ix;
  ix.lo01 = _mm256_and_si256(u01, m0f);
  ix.hi01 = _mm256_and_si256(_mm256_srli_epi16(u01, 4), m0f);
  ix.lo23 = _mm256_and_si256(u23, m0f);
  ix.hi23 = _mm256_and_si256(_mm256_srli_epi16(u23, 4), m0f);
  return ix;
}
// One word's lookups in the 128 table bytes at t, added to int16 sums of rows 0-7 (r0) and 8-15 (r1);
// lanes hold word bytes 0 + 2 | 1 + 3. kUnsigned: the entries are unsigned bytes (int16 tables' low bytes;
// at most 8 words of 4 × 2 × 255 fit in int16).
template <bool kUnsigned>
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE __m256i lut_pairs_avx2(__m256i v) {  // int16 sums of byte pairs
  const __m256i ones8 = _mm256_set1_epi8(1);
  if constexpr (kUnsigned) return _mm256_maddubs_epi16(v, ones8);
  return _mm256_maddubs_epi16(ones8, v);
}
template <bool kUnsigned = false>
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE void lut_lookup16_avx2(const LutIdx16Avx2& ix, const std::int8_t* t, __m256i& r0,
                                                             __m256i& r1) {
  const __m256i l01 = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(t)), ix.lo01);
  const __m256i h01 = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(t + 64)), ix.hi01);
  const __m256i l23 = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(t + 32)), ix.lo23);
  const __m256i h23 = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(t + 96)), ix.hi23);
  r0 = _mm256_add_epi16(r0, _mm256_add_epi16(lut_pairs_avx2<kUnsigned>(_mm256_unpacklo_epi8(l01, h01)),
                                             lut_pairs_avx2<kUnsigned>(_mm256_unpacklo_epi8(l23, h23))));
  r1 = _mm256_add_epi16(r1, _mm256_add_epi16(lut_pairs_avx2<kUnsigned>(_mm256_unpackhi_epi8(l01, h01)),
                                             lut_pairs_avx2<kUnsigned>(_mm256_unpackhi_epi8(l23, h23))));
}
// Both kinds of tables: part 0 of r sums int8 entries or int16 tables' low bytes, part 1 (W) the high bytes.
template <bool W>
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE void lut_word16_avx2(const LutIdx16Avx2& ix, const std::int8_t* t,
                                                           __m256i (&r)[W ? 2 : 1][2]) {
  lut_lookup16_avx2<W>(ix, t, r[0][0], r[0][1]);
  if constexpr (W) lut_lookup16_avx2<false>(ix, t + kLutBytesPerWord, r[1][0], r[1][1]);
}
// The exact int32 sum S of the parts (int16 tables: 256·high + low).
template <bool W>
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE __m256i lut_parts_avx2(const __m256i (&acc)[W ? 2 : 1]) {
  if constexpr (W) return _mm256_add_epi32(_mm256_slli_epi32(acc[1], 8), acc[0]);
  return acc[0];
}
// acc (int32, 8 rows) += the two lanes of r (int16) added.
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE void lut_widen16_avx2(__m256i& acc, __m256i r) {
  acc = _mm256_add_epi32(acc, _mm256_cvtepi16_epi32(_mm_add_epi16(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1))));
}
// The float epilogue of one plane and segment for the two 8-row halves.
template <int NB, class Scale>
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE void lut_epilogue16_avx2(const LutTileArgs<Scale>& a, index_t tile, int b,
                                                               index_t s0, const index_t (&valid)[2],
                                                               const float* const* sc, const __m256i (&acc)[2][NB],
                                                               __m256 (&z)[2][NB]) {
  const index_t g = s0 / a.group_words, blk = s0 / a.block_words;
  for (int h = 0; h < 2; ++h) {
    if (valid[h] <= 0) continue;
    const __m256 al = load8_avx2(a.scales.alpha_at(tile, g, b) + 8 * h, valid[h]);
    for (int n = 0; n < NB; ++n)
      z[h][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[h][n]), _mm256_mul_ps(al, _mm256_set1_ps(sc[n][blk])), z[h][n]);
  }
}
// β·Σx per group and the stores of the tile's rows (ybuf: [NB][16]).
template <int NB, class Scale>
ANYBCQ_TARGET_AVX2 ANYBCQ_FORCEINLINE void lut_finish16_avx2(const LutTileArgs<Scale>& a, index_t tile,
                                                             const index_t* act, const index_t (&valid)[2],
                                                             __m256 (&y)[2][NB], float* ybuf) {
  for (int h = 0; h < 2; ++h) {
    if (valid[h] > 0 && a.scales.beta)
      for (index_t g = 0; g < a.groups; ++g) {
        const __m256 be = load8_avx2(a.scales.beta_at(tile, g) + 8 * h, valid[h]);
        for (int n = 0; n < NB; ++n) y[h][n] = _mm256_fmadd_ps(be, _mm256_set1_ps(a.xsum[act[n] * a.groups + g]), y[h][n]);
      }
    for (int n = 0; n < NB; ++n) _mm256_storeu_ps(ybuf + n * 16 + 8 * h, valid[h] > 0 ? y[h][n] : _mm256_setzero_ps());
  }
}

// NB activation rows, planes one after another.
template <int NB, bool W, class Scale>
ANYBCQ_TARGET_AVX2 void lut_tile16_avx2(const LutTileArgs<Scale>& a, index_t tile, const index_t* act, float* ybuf) {
  constexpr int kParts = W ? 2 : 1;
  constexpr index_t kStride = W ? 2 * kLutBytesPerWord : kLutBytesPerWord;
  const index_t m0 = tile * 16;
  const std::int8_t* tabs[NB];
  const float* sc[NB];
  lut_act_rows<NB>(a, act, tabs, sc);
  const index_t valid[2] = {a.rows - m0 < 8 ? a.rows - m0 : 8, a.rows - m0 - 8 < 8 ? a.rows - m0 - 8 : 8};
  __m256 y[2][NB];
  for (int h = 0; h < 2; ++h)
    for (int n = 0; n < NB; ++n) y[h][n] = _mm256_setzero_ps();
  for (int b = 0; b < a.bits; ++b) {
    const std::uint32_t* wp = a.planes + b * a.plane_words + tile * a.k_words * 16;
    __m256 z[2][NB];
    for (int h = 0; h < 2; ++h)
      for (int n = 0; n < NB; ++n) z[h][n] = _mm256_setzero_ps();
    for (index_t s0 = 0; s0 < a.k_words; s0 += a.seg_words) {
      const index_t s1 = s0 + a.seg_words;
      __m256i acc[NB][2][kParts];  // [row][half][part], int32
      for (int n = 0; n < NB; ++n)
        for (int h = 0; h < 2; ++h)
          for (int q = 0; q < kParts; ++q) acc[n][h][q] = _mm256_setzero_si256();
      for (index_t k0 = s0; k0 < s1; k0 += 8) {  // int16 sums of at most 8 words (no overflow)
        __m256i r[NB][kParts][2];
        for (int n = 0; n < NB; ++n)
          for (int q = 0; q < kParts; ++q) r[n][q][0] = r[n][q][1] = _mm256_setzero_si256();
        const index_t k1 = k0 + 8 < s1 ? k0 + 8 : s1;
        for (index_t kw = k0; kw < k1; ++kw) {
          const LutIdx16Avx2 ix = lut_regroup_avx2(wp + kw * 16);
          for (int n = 0; n < NB; ++n) lut_word16_avx2<W>(ix, tabs[n] + kw * kStride, r[n]);
        }
        for (int n = 0; n < NB; ++n)
          for (int h = 0; h < 2; ++h)
            for (int q = 0; q < kParts; ++q) lut_widen16_avx2(acc[n][h][q], r[n][q][h]);
      }
      __m256i sum[2][NB];
      for (int h = 0; h < 2; ++h)
        for (int n = 0; n < NB; ++n) sum[h][n] = lut_parts_avx2<W>(acc[n][h]);
      lut_epilogue16_avx2<NB>(a, tile, b, s0, valid, sc, sum, z);
    }
    for (int h = 0; h < 2; ++h)
      for (int n = 0; n < NB; ++n) y[h][n] = _mm256_add_ps(y[h][n], z[h][n]);
  }
  lut_finish16_avx2<NB>(a, tile, act, valid, y, ybuf);
}

// One activation row at precision P: all P plane streams advance together, word by word (as in
// lut_tile1_avx512), so each plane is read as one sequential stream across tiles.
template <int P, bool W, class Scale>
ANYBCQ_TARGET_AVX2 void lut_tile1_avx2(const LutTileArgs<Scale>& a, index_t tile, const index_t* act, float* ybuf) {
  constexpr int kParts = W ? 2 : 1;
  constexpr index_t kStride = W ? 2 * kLutBytesPerWord : kLutBytesPerWord;
  const index_t m0 = tile * 16;
  const std::int8_t* tab = a.acts->tables(act[0]);
  const float* const sc[1] = {a.acts->scales(act[0])};
  const index_t valid[2] = {a.rows - m0 < 8 ? a.rows - m0 : 8, a.rows - m0 - 8 < 8 ? a.rows - m0 - 8 : 8};
  const std::uint32_t* wp[P];
  for (int b = 0; b < P; ++b) wp[b] = a.planes + b * a.plane_words + tile * a.k_words * 16;
  if (m0 + 32 < a.rows) lut_prefetch_scales(a.scales, tile + 2, 1, a.groups, P, _MM_HINT_T1);
  __m256 z[P][2][1];
  for (int b = 0; b < P; ++b) z[b][0][0] = z[b][1][0] = _mm256_setzero_ps();
  for (index_t s0 = 0; s0 < a.k_words; s0 += a.seg_words) {
    const index_t s1 = s0 + a.seg_words;
    __m256i acc[P][2][kParts];  // [plane][half][part], int32
    for (int b = 0; b < P; ++b)
      for (int h = 0; h < 2; ++h)
        for (int q = 0; q < kParts; ++q) acc[b][h][q] = _mm256_setzero_si256();
    for (index_t k0 = s0; k0 < s1; k0 += 8) {
      __m256i r[P][kParts][2];
      for (int b = 0; b < P; ++b)
        for (int q = 0; q < kParts; ++q) r[b][q][0] = r[b][q][1] = _mm256_setzero_si256();
      const index_t k1 = k0 + 8 < s1 ? k0 + 8 : s1;
      for (index_t kw = k0; kw < k1; ++kw)
        for (int b = 0; b < P; ++b) lut_word16_avx2<W>(lut_regroup_avx2(wp[b] + kw * 16), tab + kw * kStride, r[b]);
      for (int b = 0; b < P; ++b)
        for (int h = 0; h < 2; ++h)
          for (int q = 0; q < kParts; ++q) lut_widen16_avx2(acc[b][h][q], r[b][q][h]);
    }
    for (int b = 0; b < P; ++b) {
      const __m256i sum[2][1] = {{lut_parts_avx2<W>(acc[b][0])}, {lut_parts_avx2<W>(acc[b][1])}};
      lut_epilogue16_avx2<1>(a, tile, b, s0, valid, sc, sum, z[b]);
    }
  }
  __m256 y[2][1] = {{_mm256_setzero_ps()}, {_mm256_setzero_ps()}};
  for (int b = 0; b < P; ++b)
    for (int h = 0; h < 2; ++h) y[h][0] = _mm256_add_ps(y[h][0], z[b][h][0]);
  lut_finish16_avx2<1>(a, tile, act, valid, y, ybuf);
}

ANYBCQ_SIMD_DIAGNOSTICS_END
#endif

}  // namespace detail
}  // namespace cpu
ANYBCQ_NAMESPACE_END
