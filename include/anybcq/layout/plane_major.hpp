// AnyBCQ — plane-major bit-plane layout: the first p planes are one contiguous prefix.
#pragma once
#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace layout {

//! Words ordered [P][M][K/32]: each plane is a row-major M×(K/32) bit matrix, planes one after
//! another, so precision p reads exactly the first p·M·K/32 words. Bit j of word (b, m, kw) is input
//! feature 32·kw + j; 1 encodes +1, 0 encodes −1.
//! offset(b, kw, m) = (b·M + m)·(K/32) + kw
struct PlaneMajor {
  index_t rows = 0;
  index_t k_words = 0;
  int planes = 0;

  static constexpr const char* name() { return "pmk32"; }
  ANYBCQ_HOST_DEVICE constexpr index_t word_offset(int plane, index_t k_word, index_t row) const {
    return (plane * rows + row) * k_words + k_word;
  }
  ANYBCQ_HOST_DEVICE constexpr index_t size_words() const { return k_words * planes * rows; }
  ANYBCQ_HOST_DEVICE constexpr index_t words_read(int p) const { return k_words * p * rows; }
};

}  // namespace layout
ANYBCQ_NAMESPACE_END
