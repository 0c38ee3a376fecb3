// AnyBCQ — tensor-core fragment-ordered bit-plane layout for the CUDA kernels.
#pragma once
#include <cstdint>
#include <vector>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/parallel.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace layout {

//! Position of one bit inside a word array.
struct BitLocation {
  index_t word = 0;  //!< word index from the start of the plane array
  int bit = 0;       //!< bit 0..31 inside that word
};

//! Row/column of one bit inside a 16-row × 256-column fragment block.
struct FragmentCoord {
  int row = 0;  //!< 0..15 inside the row tile
  int col = 0;  //!< 0..255 inside the K chunk
};

//! Planes cut into blocks of 16 rows × 256 input features, each block 128 words (512 bytes) ordered
//! so that lane l of a warp loads words 4l..4l+3 with one 16-byte load and holds, bit for bit, the
//! A operands of sixteen m16n8k16 tensor-core steps (rows g, g+8 with g = l/4; see FragmentCoord).
//! Blocks are ordered [plane][row tile][K chunk], so precision p reads the first p planes only.
//! Rows are padded to a multiple of 16 and K to a multiple of 256; padding bits are 0.
//! word_offset(b, R, C, l, w) = ((b·RT + R)·CH + C)·128 + 4·l + w; inside word w of lane l = 4g + t,
//! bit i = j + 16·h (j = 4s + r) holds row g + 8·(r mod 2), column 64·w + 16·t + 4·s + 2·(r div 2) + h.
struct MmaTiled {
  index_t rows = 0;     //!< M, output features (unpadded)
  index_t k_words = 0;  //!< K / 32 (unpadded)
  int planes = 0;       //!< P, planes stored

  static constexpr int kTileRows = 16;       //!< rows per fragment block
  static constexpr int kChunkCols = 256;     //!< input features per fragment block
  static constexpr int kBlockWords = 128;    //!< words per fragment block (16·256 bits)
  static constexpr int kWordsPerLane = 4;    //!< one 16-byte load per lane

  static constexpr const char* name() { return "mma16x256"; }

  ANYBCQ_HOST_DEVICE constexpr index_t cols() const { return k_words * kWordBits; }
  ANYBCQ_HOST_DEVICE constexpr index_t row_tiles() const { return (rows + kTileRows - 1) / kTileRows; }
  ANYBCQ_HOST_DEVICE constexpr index_t chunks() const { return (cols() + kChunkCols - 1) / kChunkCols; }
  //! Words of one plane (padded).
  ANYBCQ_HOST_DEVICE constexpr index_t plane_words() const { return row_tiles() * chunks() * kBlockWords; }
  ANYBCQ_HOST_DEVICE constexpr index_t size_words() const { return plane_words() * planes; }
  //! Words a call at precision p touches: the first p planes.
  ANYBCQ_HOST_DEVICE constexpr index_t words_read(int p) const { return plane_words() * p; }
  //! First word of the fragment block (plane, row tile, chunk).
  ANYBCQ_HOST_DEVICE constexpr index_t block_offset(int plane, index_t row_tile, index_t chunk) const {
    return ((index_t(plane) * row_tiles() + row_tile) * chunks() + chunk) * kBlockWords;
  }

  //! Where bit (plane, row, column k) lives.
  ANYBCQ_HOST_DEVICE constexpr BitLocation locate(int plane, index_t row, index_t k) const {
    const int mr = static_cast<int>(row % kTileRows), kk = static_cast<int>(k % kChunkCols);
    const int g = mr & 7, rlo = mr >> 3;
    const int w = kk >> 6, t = (kk >> 4) & 3, e = kk & 15;
    const int s = e >> 2, rhi = (e >> 1) & 1, h = e & 1;
    const int r = 2 * rhi + rlo;
    const int lane = 4 * g + t;
    BitLocation loc{};
    loc.word = block_offset(plane, row / kTileRows, k / kChunkCols) + 4 * lane + w;
    loc.bit = 4 * s + r + 16 * h;
    return loc;
  }
  //! Inverse of locate inside one block: which (row, column) bit `bit` of word `word` of lane `lane` holds.
  ANYBCQ_HOST_DEVICE static constexpr FragmentCoord coord(int lane, int word, int bit) {
    const int g = lane >> 2, t = lane & 3;
    const int j = bit & 15, h = bit >> 4, s = j >> 2, r = j & 3;
    FragmentCoord c{};
    c.row = g + 8 * (r & 1);
    c.col = 64 * word + 16 * t + 4 * s + 2 * (r >> 1) + h;
    return c;
  }
  //! Bit (0 ⇒ −1, 1 ⇒ +1) of plane b, row m, input feature k.
  ANYBCQ_HOST_DEVICE constexpr int get_bit(const std::uint32_t* words, int plane, index_t row, index_t k) const {
    const BitLocation loc = locate(plane, row, k);
    return static_cast<int>((words[loc.word] >> loc.bit) & 1u);
  }
};

//! MmaTiled for an M×K matrix with P planes.
constexpr MmaTiled make_mma_tiled(index_t rows, index_t cols, int planes) {
  MmaTiled l{};
  l.rows = rows;
  l.k_words = cols / kWordBits;
  l.planes = planes;
  return l;
}

//! Repack words of a word-granular layout (PlaneMajor, Interleaved, …) into MmaTiled (padding zeroed).
//! `dst` must hold to.size_words() words.
template <class From>
void repack_to_mma(const From& from, const std::uint32_t* src, const MmaTiled& to, std::uint32_t* dst,
                   int threads = 0) {
  ANYBCQ_REQUIRE(from.rows == to.rows && from.k_words == to.k_words && from.planes == to.planes,
                 "repack_to_mma: layouts disagree in shape (rows ", from.rows, " vs ", to.rows, ", k_words ",
                 from.k_words, " vs ", to.k_words, ", planes ", from.planes, " vs ", to.planes, ")");
  const index_t RT = to.row_tiles(), CH = to.chunks(), K = to.cols();
  detail::parallel_for(index_t(to.planes) * RT, threads, [&](index_t begin, index_t end, int) {
    for (index_t pr = begin; pr < end; ++pr) {
      const int b = static_cast<int>(pr / RT);
      const index_t rt = pr % RT;
      for (index_t c = 0; c < CH; ++c) {
        std::uint32_t* blk = dst + to.block_offset(b, rt, c);
        for (int lane = 0; lane < 32; ++lane)
          for (int w = 0; w < MmaTiled::kWordsPerLane; ++w) {
            std::uint32_t word = 0;
            for (int bit = 0; bit < 32; ++bit) {
              const FragmentCoord fc = MmaTiled::coord(lane, w, bit);
              const index_t m = rt * MmaTiled::kTileRows + fc.row;
              const index_t k = c * MmaTiled::kChunkCols + fc.col;
              if (m >= to.rows || k >= K) continue;
              const std::uint32_t v = (src[from.word_offset(b, k / kWordBits, m)] >> (k % kWordBits)) & 1u;
              word |= v << bit;
            }
            blk[4 * lane + w] = word;
          }
      }
    }
  });
}

//! Repack MmaTiled words back into a word-granular layout (the inverse of repack_to_mma).
template <class To>
void repack_from_mma(const MmaTiled& from, const std::uint32_t* src, const To& to, std::uint32_t* dst) {
  ANYBCQ_REQUIRE(from.rows == to.rows && from.k_words == to.k_words && from.planes == to.planes,
                 "repack_from_mma: layouts disagree in shape (rows ", from.rows, " vs ", to.rows, ", k_words ",
                 from.k_words, " vs ", to.k_words, ", planes ", from.planes, " vs ", to.planes, ")");
  for (int b = 0; b < to.planes; ++b)
    for (index_t m = 0; m < to.rows; ++m)
      for (index_t kw = 0; kw < to.k_words; ++kw) {
        std::uint32_t word = 0;
        for (int j = 0; j < kWordBits; ++j)
          word |= std::uint32_t(from.get_bit(src, b, m, kw * kWordBits + j)) << j;
        dst[to.word_offset(b, kw, m)] = word;
      }
}

}  // namespace layout
ANYBCQ_NAMESPACE_END
