// AnyBCQ — GEMV-tiled bit-plane layout: one 16-byte load per row, per plane, per 128 input features.
#pragma once
#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace layout {

//! Words ordered [K/128][P][M][4]: for each 128-column block kb, plane b and row m, four consecutive
//! words (16 bytes) hold columns 128·kb … 128·kb+127 (bit j of word t is column 128·kb + 32·t + j;
//! 1 encodes +1). A warp whose lanes are 32 consecutive rows reads 512 contiguous bytes per (kb, plane),
//! and a call at precision p touches only planes < p of every block.
//! offset(b, kw, m) = ((⌊kw/4⌋·P + b)·M + m)·4 + kw mod 4
//! K need not be a multiple of 128 for the index math (the last block is padded, size_words() counts the
//! padding), but the CUDA GEMV that reads this layout requires K % 128 == 0.
struct GemvTiled {
  static constexpr index_t kBlockWords = 4;  //!< 32-bit words per row, per plane, per 128-column block
  index_t rows = 0;
  index_t k_words = 0;
  int planes = 0;

  static constexpr const char* name() { return "gemv128"; }
  ANYBCQ_HOST_DEVICE constexpr index_t k_blocks() const { return (k_words + kBlockWords - 1) / kBlockWords; }
  ANYBCQ_HOST_DEVICE constexpr index_t word_offset(int plane, index_t k_word, index_t row) const {
    return (((k_word / kBlockWords) * planes + plane) * rows + row) * kBlockWords + k_word % kBlockWords;
  }
  //! Offset of the first of the four words of (block kb, plane, row).
  ANYBCQ_HOST_DEVICE constexpr index_t block_offset(int plane, index_t k_block, index_t row) const {
    return ((k_block * planes + plane) * rows + row) * kBlockWords;
  }
  ANYBCQ_HOST_DEVICE constexpr index_t size_words() const { return k_blocks() * kBlockWords * planes * rows; }
  //! Words a call at precision p reads (planes < p of every block; not one contiguous prefix).
  ANYBCQ_HOST_DEVICE constexpr index_t words_read(int p) const { return k_blocks() * kBlockWords * p * rows; }
};

}  // namespace layout
ANYBCQ_NAMESPACE_END
