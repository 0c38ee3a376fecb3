// AnyBCQ — the published kernel's bit-plane layout.
#pragma once
#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace layout {

//! Words ordered [K/32][P][M]: word (kw, b, m) holds bits 32·kw..32·kw+31 of plane b, row m;
//! bit j of a word is input feature 32·kw + j. A bit value 1 encodes +1, 0 encodes −1.
//! offset(b, kw, m) = (kw·P + b)·M + m
struct Interleaved {
  index_t rows = 0;     //!< M, output features
  index_t k_words = 0;  //!< K / 32
  int planes = 0;       //!< P, planes stored (highest precision)

  static constexpr const char* name() { return "kpm32"; }
  ANYBCQ_HOST_DEVICE constexpr index_t word_offset(int plane, index_t k_word, index_t row) const {
    return (k_word * planes + plane) * rows + row;
  }
  ANYBCQ_HOST_DEVICE constexpr index_t size_words() const { return k_words * planes * rows; }
  //! Words a call at precision p touches (it reads p of every P planes' words).
  ANYBCQ_HOST_DEVICE constexpr index_t words_read(int p) const { return k_words * p * rows; }
};

}  // namespace layout
ANYBCQ_NAMESPACE_END
