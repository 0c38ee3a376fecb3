// AnyBCQ — CPU layout: each bit-plane stored as row tiles of 16 words, so one 64-byte load holds
// 32 input features of 16 rows and a call at precision p reads p sequential streams.
#pragma once
#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace layout {

//! Words ordered [P][T][K/32][16] with T = ⌈M/16⌉ row tiles: word (b, kw, m) is bits 32·kw..32·kw+31
//! of plane b, row m, stored at slot m mod 16 of tile m/16. Plane b is one contiguous stream of
//! T·16·K/32 words; rows past M in the last tile are padding (zero words, never read back as results).
//! Bit j of a word is input feature 32·kw + j; 1 encodes +1, 0 encodes −1.
//! offset(b, kw, m) = ((b·T + m/16)·(K/32) + kw)·16 + m mod 16
struct RowTiled {
  static constexpr index_t kTileRows = 16;  //!< rows per tile (one 64-byte vector of words)

  index_t rows = 0;
  index_t k_words = 0;
  int planes = 0;

  static constexpr const char* name() { return "rt16k32"; }
  //! Number of row tiles T = ⌈M/16⌉.
  ANYBCQ_HOST_DEVICE constexpr index_t tiles() const { return (rows + kTileRows - 1) / kTileRows; }
  //! Words of one plane (all tiles, padding included).
  ANYBCQ_HOST_DEVICE constexpr index_t plane_words() const { return tiles() * kTileRows * k_words; }
  ANYBCQ_HOST_DEVICE constexpr index_t word_offset(int plane, index_t k_word, index_t row) const {
    return ((plane * tiles() + row / kTileRows) * k_words + k_word) * kTileRows + row % kTileRows;
  }
  ANYBCQ_HOST_DEVICE constexpr index_t size_words() const { return planes * plane_words(); }
  //! Words a call at precision p touches: the first p planes, padding rows included.
  ANYBCQ_HOST_DEVICE constexpr index_t words_read(int p) const { return p * plane_words(); }
};

}  // namespace layout
ANYBCQ_NAMESPACE_END
