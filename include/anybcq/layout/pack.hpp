// AnyBCQ — moving ±1 codes in and out of any bit-plane layout.
#pragma once
#include <cstdint>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/layout/concepts.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace layout {

//! Bit (0 ⇒ −1, 1 ⇒ +1) of plane b, row m, input feature k.
template <class L>
ANYBCQ_HOST_DEVICE inline int get_bit(const L& l, const std::uint32_t* words, int b, index_t m, index_t k) {
  return static_cast<int>((words[l.word_offset(b, k / kWordBits, m)] >> (k % kWordBits)) & 1u);
}

//! ±1 code of plane b, row m, input feature k.
template <class L>
ANYBCQ_HOST_DEVICE inline int get_code(const L& l, const std::uint32_t* words, int b, index_t m, index_t k) {
  return 2 * get_bit(l, words, b, m, k) - 1;
}

//! Pack codes laid out [P][M][K] (int8, each −1 or +1) into `words` (l.size_words() entries).
template <class L>
void pack(const L& l, const std::int8_t* codes, std::uint32_t* words) {
  const index_t K = l.k_words * kWordBits;
  for (int b = 0; b < l.planes; ++b)
    for (index_t m = 0; m < l.rows; ++m)
      for (index_t kw = 0; kw < l.k_words; ++kw) {
        const std::int8_t* c = codes + (index_t(b) * l.rows + m) * K + kw * kWordBits;
        std::uint32_t w = 0;
        for (int j = 0; j < kWordBits; ++j) {
          ANYBCQ_REQUIRE(c[j] == 1 || c[j] == -1, "pack: code at plane ", b, ", row ", m, ", column ",
                         kw * kWordBits + j, " is ", int(c[j]), "; codes must be -1 or +1");
          w |= std::uint32_t(c[j] > 0) << j;
        }
        words[l.word_offset(b, kw, m)] = w;
      }
}

//! Unpack `words` into codes laid out [P][M][K] (int8, −1 or +1).
template <class L>
void unpack(const L& l, const std::uint32_t* words, std::int8_t* codes) {
  const index_t K = l.k_words * kWordBits;
  for (int b = 0; b < l.planes; ++b)
    for (index_t m = 0; m < l.rows; ++m)
      for (index_t kw = 0; kw < l.k_words; ++kw) {
        const std::uint32_t w = words[l.word_offset(b, kw, m)];
        std::int8_t* c = codes + (index_t(b) * l.rows + m) * K + kw * kWordBits;
        for (int j = 0; j < kWordBits; ++j) c[j] = ((w >> j) & 1u) ? 1 : -1;
      }
}

//! Copy words between two layouts of the same shape (rows, k_words, planes).
template <class From, class To>
void repack(const From& from, const std::uint32_t* src, const To& to, std::uint32_t* dst) {
  ANYBCQ_REQUIRE(from.rows == to.rows && from.k_words == to.k_words && from.planes == to.planes,
                 "repack: layouts disagree in shape (rows ", from.rows, " vs ", to.rows, ", k_words ",
                 from.k_words, " vs ", to.k_words, ", planes ", from.planes, " vs ", to.planes, ")");
  for (int b = 0; b < from.planes; ++b)
    for (index_t m = 0; m < from.rows; ++m)
      for (index_t kw = 0; kw < from.k_words; ++kw)
        dst[to.word_offset(b, kw, m)] = src[from.word_offset(b, kw, m)];
}

}  // namespace layout
ANYBCQ_NAMESPACE_END
