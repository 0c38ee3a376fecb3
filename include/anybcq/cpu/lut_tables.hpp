// AnyBCQ — activation lookup tables for the bit-serial CPU kernels: for every 4 consecutive input
// features, the 16 signed sums ±x0±x1±x2±x3, quantized to int8 with one scale per activation block.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/memory.hpp"
#include "anybcq/core/numeric.hpp"
#include "anybcq/cpu/isa.hpp"
#include "anybcq/cpu/thread_pool.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {

//! Bytes of int8 table per 32 input features: 8 nibble tables of 16 entries, ordered
//! [lo: T0 T2 T4 T6][hi: T1 T3 T5 T7] so that one 64-byte vector serves the low (high) nibbles of
//! the 4 bytes of a 32-bit plane word. int16 tables take twice this: the low bytes of the entries in
//! that order, then their high bytes.
inline constexpr index_t kLutBytesPerWord = 128;

//! Entry type of the activation tables.
enum class LutTables {
  kInt8,   //!< one byte per entry, scale max/127 per block: fastest (NMSE ≈ 1e-4 with outliers)
  kInt16,  //!< two bytes per entry, scale max/32767: twice the lookups, error ≈ float rounding
};

//! Tables for fewer features than this (rows × K) are built on the calling thread alone.
inline constexpr index_t kLutParallelFeatures = 8192;

//! Default activation block for a weight group size g: the largest multiple of 32 that is ≤ 128
//! and divides g (so a block never straddles a group).
inline index_t default_act_block(index_t group) {
  for (index_t b = 128; b >= 32; b -= 32)
    if (group % b == 0) return b;
  return 32;
}

namespace detail {

//! Uninitialized storage from BulkAllocator (64-byte aligned; huge pages from 2 MiB).
template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) : data_(n ? BulkAllocator<T>().allocate(n) : nullptr), size_(n) {}
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = o.data_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { release(); }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void release() {
    if (data_) BulkAllocator<T>().deallocate(data_, size_);
    data_ = nullptr;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// Entry v of the table of x0..x3: (s0·x0 + s1·x1) + (s2·x2 + s3·x3), s_t = +1 if bit t of v is set,
// else −1. Every path computes this exact expression, so tables agree bit for bit.
inline void lut_entries_scalar(const float* x, float* t) {
  for (int v = 0; v < 16; ++v) {
    const float a = (v & 1) ? x[0] : -x[0], b = (v & 2) ? x[1] : -x[1];
    const float c = (v & 4) ? x[2] : -x[2], d = (v & 8) ? x[3] : -x[3];
    t[v] = (a + b) + (c + d);
  }
}

[[noreturn]] inline void throw_non_finite(index_t row, index_t k0, index_t k1) {
  ::anybcq::detail::throw_error("anybcq: activation row ", row, " has a non-finite value (or one whose 4-sums overflow) in features [",
              k0, ", ", k1, "); the lookup-table kernels need finite activations");
}

// Sum of 32 features in the fixed order every path uses: lane l = x[l] + x[16 + l], then lanes
// folded l += l + w for w = 8, 4, 2, 1.
inline float sum32_scalar(const float* x) {
  float s[16];
  for (int l = 0; l < 16; ++l) s[l] = x[l] + x[16 + l];
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) s[l] = s[l] + s[l + w];
  return s[0];
}

inline void table_offset(index_t j, bool wide, index_t& off) {
  const index_t kw = j / 8, jj = j % 8;
  off = kw * kLutBytesPerWord * (wide ? 2 : 1) + (jj % 2) * 64 + (jj / 2) * 16;
}

// One activation block of one row (x points at feature k0; ab features): tables and scale.
inline void build_block_scalar(const float* x, index_t row, index_t k0, index_t ab, bool wide, std::int8_t* tab,
                               float* scale, float* tmp) {
  const index_t nj = ab / 4;
  float mx = 0.0f;
  bool finite = true;
  for (index_t j = 0; j < nj; ++j) {
    lut_entries_scalar(x + 4 * j, tmp + 16 * j);
    for (int v = 0; v < 16; ++v) {
      const float a = std::fabs(tmp[16 * j + v]);
      finite = finite && a <= std::numeric_limits<float>::max();
      mx = a > mx ? a : mx;
    }
  }
  if (!finite) throw_non_finite(row, k0, k0 + ab);
  const float qmax = wide ? 32767.0f : 127.0f;
  const float inv = mx > 0.0f ? qmax / mx : 0.0f;
  *scale = mx / qmax;
  for (index_t j = 0; j < nj; ++j) {
    index_t off;
    table_offset(k0 / 4 + j, wide, off);
    for (int v = 0; v < 16; ++v) {
      const int q = static_cast<int>(std::nearbyint(tmp[16 * j + v] * inv));
      if (wide) {
        tab[off + v] = static_cast<std::int8_t>(static_cast<std::uint8_t>(q & 0xFF));
        tab[off + 128 + v] = static_cast<std::int8_t>((q - (q & 0xFF)) / 256);
      } else {
        tab[off + v] = static_cast<std::int8_t>(q);
      }
    }
  }
}

#if ANYBCQ_CPU_SIMD
ANYBCQ_SIMD_DIAGNOSTICS_BEGIN
ANYBCQ_TARGET_AVX512 inline void build_block_avx512(const float* x, index_t row, index_t k0, index_t ab, bool wide,
                                                    std::int8_t* tab, float* scale, float* tmp) {
  const __m512 one = _mm512_set1_ps(1.0f), neg = _mm512_set1_ps(-1.0f);
  const __m512 s0 = _mm512_mask_blend_ps(0xAAAA, neg, one), s1 = _mm512_mask_blend_ps(0xCCCC, neg, one);
  const __m512 s2 = _mm512_mask_blend_ps(0xF0F0, neg, one), s3 = _mm512_mask_blend_ps(0xFF00, neg, one);
  const __m512 fmax = _mm512_set1_ps(std::numeric_limits<float>::max());
  const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF);
  const index_t nj = ab / 4;
  __m512 mx = _mm512_setzero_ps();
  __mmask16 ok = 0xFFFF;
  for (index_t j = 0; j < nj; ++j) {
    const float* xj = x + 4 * j;
    const __m512 l = _mm512_fmadd_ps(_mm512_set1_ps(xj[1]), s1, _mm512_mul_ps(_mm512_set1_ps(xj[0]), s0));
    const __m512 h = _mm512_fmadd_ps(_mm512_set1_ps(xj[3]), s3, _mm512_mul_ps(_mm512_set1_ps(xj[2]), s2));
    const __m512 t = _mm512_add_ps(l, h);
    _mm512_store_ps(tmp + 16 * j, t);
    const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(t), absmask));
    ok &= _mm512_cmp_ps_mask(a, fmax, _CMP_LE_OQ);
    mx = _mm512_max_ps(mx, a);
  }
  if (ok != 0xFFFF) throw_non_finite(row, k0, k0 + ab);
  const float m = _mm512_reduce_max_ps(mx);  // max is exact in any order
  const float qmax = wide ? 32767.0f : 127.0f;
  const float inv = m > 0.0f ? qmax / m : 0.0f;
  *scale = m / qmax;
  const __m512 vinv = _mm512_set1_ps(inv);
  for (index_t j = 0; j < nj; ++j) {
    index_t off;
    table_offset(k0 / 4 + j, wide, off);
    const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_load_ps(tmp + 16 * j), vinv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tab + off), _mm512_cvtepi32_epi8(q));  // (low) byte
    if (wide)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tab + off + 128), _mm512_cvtepi32_epi8(_mm512_srai_epi32(q, 8)));
  }
}

ANYBCQ_TARGET_AVX512 inline float sum32_avx512(const float* x) {
  __m512 s = _mm512_add_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(x + 16));
  __m256 a = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_shuffle_ps(b, b, 1));
  return _mm_cvtss_f32(b);
}

ANYBCQ_TARGET_AVX2 inline void build_block_avx2(const float* x, index_t row, index_t k0, index_t ab, bool wide,
                                                std::int8_t* tab, float* scale, float* tmp) {
  const __m256 s0 = _mm256_setr_ps(-1, 1, -1, 1, -1, 1, -1, 1), s1 = _mm256_setr_ps(-1, -1, 1, 1, -1, -1, 1, 1);
  const __m256 s2 = _mm256_setr_ps(-1, -1, -1, -1, 1, 1, 1, 1);
  const __m256 fmax = _mm256_set1_ps(std::numeric_limits<float>::max());
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const index_t nj = ab / 4;
  __m256 mx = _mm256_setzero_ps();
  int ok = 0xFF;
  for (index_t j = 0; j < nj; ++j) {
    const float* xj = x + 4 * j;
    const __m256 l = _mm256_fmadd_ps(_mm256_set1_ps(xj[1]), s1, _mm256_mul_ps(_mm256_set1_ps(xj[0]), s0));
    const __m256 x2 = _mm256_mul_ps(_mm256_set1_ps(xj[2]), s2);
    // entries 0..7 have s3 = −1, entries 8..15 have s3 = +1
    const __m256 t0 = _mm256_add_ps(l, _mm256_sub_ps(x2, _mm256_set1_ps(xj[3])));
    const __m256 t1 = _mm256_add_ps(l, _mm256_add_ps(x2, _mm256_set1_ps(xj[3])));
    _mm256_store_ps(tmp + 16 * j, t0);
    _mm256_store_ps(tmp + 16 * j + 8, t1);
    const __m256 a0 = _mm256_and_ps(t0, absmask), a1 = _mm256_and_ps(t1, absmask);
    ok &= _mm256_movemask_ps(_mm256_cmp_ps(a0, fmax, _CMP_LE_OQ)) & _mm256_movemask_ps(_mm256_cmp_ps(a1, fmax, _CMP_LE_OQ));
    mx = _mm256_max_ps(mx, _mm256_max_ps(a0, a1));
  }
  if (ok != 0xFF) throw_non_finite(row, k0, k0 + ab);
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
  const float m = _mm_cvtss_f32(m4);
  const float qmax = wide ? 32767.0f : 127.0f;
  const float inv = m > 0.0f ? qmax / m : 0.0f;
  *scale = m / qmax;
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i lowmask = _mm256_set1_epi32(0xFF);
  for (index_t j = 0; j < nj; ++j) {
    index_t off;
    table_offset(k0 / 4 + j, wide, off);
    const __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(tmp + 16 * j), vinv));
    const __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(tmp + 16 * j + 8), vinv));
    if (!wide) {
      const __m256i p16 = _mm256_packs_epi32(q0, q1);  // [q0 0-3, q1 0-3 | q0 4-7, q1 4-7]
      const __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tab + off), _mm_shuffle_epi32(p8, _MM_SHUFFLE(3, 1, 2, 0)));
    } else {
      // low bytes (0..255, unsigned packs) and high bytes (−128..127, signed packs)
      const __m256i l16 = _mm256_packus_epi32(_mm256_and_si256(q0, lowmask), _mm256_and_si256(q1, lowmask));
      const __m128i l8 = _mm_packus_epi16(_mm256_castsi256_si128(l16), _mm256_extracti128_si256(l16, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tab + off), _mm_shuffle_epi32(l8, _MM_SHUFFLE(3, 1, 2, 0)));
      const __m256i h16 = _mm256_packs_epi32(_mm256_srai_epi32(q0, 8), _mm256_srai_epi32(q1, 8));
      const __m128i h8 = _mm_packs_epi16(_mm256_castsi256_si128(h16), _mm256_extracti128_si256(h16, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tab + off + 128), _mm_shuffle_epi32(h8, _MM_SHUFFLE(3, 1, 2, 0)));
    }
  }
}

ANYBCQ_TARGET_AVX2 inline float sum32_avx2(const float* x) {
  const __m256 s0 = _mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 16));
  const __m256 s1 = _mm256_add_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(x + 24));
  const __m256 a = _mm256_add_ps(s0, s1);
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_shuffle_ps(b, b, 1));
  return _mm_cvtss_f32(b);
}
ANYBCQ_SIMD_DIAGNOSTICS_END
#endif

}  // namespace detail

//! Activations prepared once for the lookup-table kernels; reusable across every matrix that takes
//! the same input (Q/K/V, gate/up). Immutable after build; safe to share between threads.
class LutActivations {
 public:
  LutActivations() = default;

  //! Tables for n rows of K features (x row-major n×K; float, half_t or bfloat16_t). act_block: features
  //! sharing one table scale (multiple of 32 dividing K). isa: level used to build (results identical).
  template <class In>
  static LutActivations build(const In* x, index_t n, index_t cols, index_t act_block, Isa isa = Isa::kAuto,
                              ThreadPool* pool = nullptr, int threads = 0, LutTables type = LutTables::kInt8) {
    static_assert(is_storage_float_v<In>, "activations must be float, half_t or bfloat16_t");
    ANYBCQ_REQUIRE(n >= 0, "LutActivations: batch n = ", n, " is negative");
    ANYBCQ_REQUIRE(cols > 0 && cols % kWordBits == 0, "LutActivations: K = ", cols, " must be a positive multiple of ",
                   kWordBits);
    ANYBCQ_REQUIRE(act_block > 0 && act_block % kWordBits == 0 && cols % act_block == 0,
                   "LutActivations: activation block ", act_block, " must be a positive multiple of ", kWordBits,
                   " dividing K = ", cols);
    isa = resolve_isa(isa);
    LutActivations a;
    a.rows_ = n;
    a.cols_ = cols;
    a.act_block_ = act_block;
    a.isa_ = isa;
    a.type_ = type;
    a.tables_ = detail::AlignedBuffer<std::int8_t>(static_cast<std::size_t>(n * a.row_stride()));
    a.scales_.resize(static_cast<std::size_t>(n * (cols / act_block)));
    a.sum32_.resize(static_cast<std::size_t>(n * (cols / 32)));
    // (row, block) pairs are independent: split them over the pool's workers.
    const index_t blocks = cols / act_block, total = n * blocks;
    auto work = [&](int w, int nw) {
      detail::AlignedBuffer<float> tmp(static_cast<std::size_t>(act_block * 5));
      float* conv = tmp.data() + act_block * 4;
      for (index_t i = total * w / nw; i < total * (w + 1) / nw; ++i) {
        const index_t r = i / blocks, k0 = (i % blocks) * act_block;
        const float* xb;
        if constexpr (std::is_same_v<In, float>) {
          xb = x + r * cols + k0;
        } else {
          for (index_t k = 0; k < act_block; ++k) conv[k] = to_float(x[r * cols + k0 + k]);
          xb = conv;
        }
        a.build_block(xb, r, k0, tmp.data());
      }
    };
    // Splitting pays only above a few µs of work (≈ 8K features) on the machines measured.
    int nw = 1;
    if (pool && n * cols >= kLutParallelFeatures)
      nw = static_cast<int>(std::min<index_t>(threads > 0 ? std::min(threads, pool->size()) : pool->size(), total));
    if (nw > 1) {
      pool->run(work, nw);
    } else if (total > 0) {
      work(0, 1);
    }
    return a;
  }

  index_t rows() const { return rows_; }
  index_t cols() const { return cols_; }
  index_t act_block() const { return act_block_; }
  Isa isa() const { return isa_; }
  LutTables table_type() const { return type_; }
  //! Table bytes per 32 features: 128 (int8) or 256 (int16).
  index_t bytes_per_word() const { return type_ == LutTables::kInt16 ? 2 * kLutBytesPerWord : kLutBytesPerWord; }
  //! Bytes from one row's tables to the next: the row's K/32·bytes_per_word(), plus 512 when that is a
  //! multiple of 4 KiB. Otherwise the same K chunk of every row falls into the same L1 sets, and the batch
  //! kernel's tables of 5–8 rows (16 KiB per chunk) lose lines to the weight stream (batch 8: 6–12% slower).
  index_t row_stride() const {
    const index_t bytes = (cols_ / 32) * bytes_per_word();
    return bytes % 4096 == 0 ? bytes + 512 : bytes;
  }
  //! Tables of row r: [K/32][bytes_per_word()] (see kLutBytesPerWord); rows are row_stride() bytes apart.
  const std::int8_t* tables(index_t r) const { return tables_.data() + r * row_stride(); }
  //! Scale of row r, activation block a: a table entry e stands for e·scale.
  float scale(index_t r, index_t a) const { return scales_[std::size_t(r * (cols_ / act_block_) + a)]; }
  const float* scales(index_t r) const { return scales_.data() + r * (cols_ / act_block_); }
  //! Float sum of row r's features 32·kw..32·kw+31 (fixed summation order, see detail::sum32_scalar).
  float sum32(index_t r, index_t kw) const { return sum32_[std::size_t(r * (cols_ / 32) + kw)]; }

 private:
  // Tables, scale and per-32 sums of row r, features [k0, k0 + act_block) (xb points at feature k0).
  void build_block(const float* xb, index_t r, index_t k0, float* tmp) {
    std::int8_t* tab = tables_.data() + r * row_stride();
    const bool wide = type_ == LutTables::kInt16;
    float* sc = scales_.data() + r * (cols_ / act_block_) + k0 / act_block_;
    float* s32 = sum32_.data() + r * (cols_ / 32) + k0 / 32;
    switch (isa_) {
#if ANYBCQ_CPU_SIMD
      case Isa::kAvx512: detail::build_block_avx512(xb, r, k0, act_block_, wide, tab, sc, tmp); break;
      case Isa::kAvx2: detail::build_block_avx2(xb, r, k0, act_block_, wide, tab, sc, tmp); break;
#endif
      default: detail::build_block_scalar(xb, r, k0, act_block_, wide, tab, sc, tmp); break;
    }
    for (index_t kw = 0; kw < act_block_ / 32; ++kw) {
      switch (isa_) {
#if ANYBCQ_CPU_SIMD
        case Isa::kAvx512: s32[kw] = detail::sum32_avx512(xb + 32 * kw); break;
        case Isa::kAvx2: s32[kw] = detail::sum32_avx2(xb + 32 * kw); break;
#endif
        default: s32[kw] = detail::sum32_scalar(xb + 32 * kw); break;
      }
    }
  }

  index_t rows_ = 0, cols_ = 0, act_block_ = 0;
  Isa isa_ = Isa::kScalar;
  LutTables type_ = LutTables::kInt8;
  detail::AlignedBuffer<std::int8_t> tables_;
  std::vector<float> scales_;
  std::vector<float> sum32_;
};

}  // namespace cpu
ANYBCQ_NAMESPACE_END
