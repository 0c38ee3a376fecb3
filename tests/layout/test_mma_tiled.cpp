#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "anybcq/layout/mma_tiled.hpp"
#include "anybcq/layout/plane_major.hpp"
#include "support/random.hpp"

using anybcq::index_t;
using anybcq::layout::MmaTiled;

// Index math is constexpr: check a few hand-computed positions at compile time.
static_assert(MmaTiled::coord(0, 0, 0).row == 0 && MmaTiled::coord(0, 0, 0).col == 0);
static_assert(MmaTiled::coord(0, 0, 16).col == 1);              // high half: next column
static_assert(MmaTiled::coord(0, 0, 1).row == 8);               // r = 1: row g + 8
static_assert(MmaTiled::coord(0, 0, 2).col == 2);               // r = 2: columns 2t + 8 of the mma
static_assert(MmaTiled::coord(5, 3, 4).row == 1 && MmaTiled::coord(5, 3, 4).col == 64 * 3 + 16 + 4);
static_assert(anybcq::layout::make_mma_tiled(17, 96, 3).row_tiles() == 2);
static_assert(anybcq::layout::make_mma_tiled(17, 96, 3).chunks() == 1);
static_assert(anybcq::layout::make_mma_tiled(17, 96, 3).size_words() == 3 * 2 * 1 * 128);

TEST_CASE("MmaTiled: locate and coord are inverse bijections on every block") {
  const auto l = anybcq::layout::make_mma_tiled(16, 256, 1);
  std::set<std::pair<index_t, int>> seen;
  for (int row = 0; row < 16; ++row)
    for (int k = 0; k < 256; ++k) {
      const auto loc = l.locate(0, row, k);
      REQUIRE(loc.word >= 0);
      REQUIRE(loc.word < 128);
      REQUIRE(loc.bit >= 0);
      REQUIRE(loc.bit < 32);
      CHECK(seen.insert({loc.word, loc.bit}).second);
      const auto c = MmaTiled::coord(static_cast<int>(loc.word / 4), static_cast<int>(loc.word % 4), loc.bit);
      CHECK(c.row == row);
      CHECK(c.col == k);
    }
  CHECK(seen.size() == 16u * 256u);
}

TEST_CASE("MmaTiled: each m16n8k16 step reads 16 columns of one 64-column block") {
  // Bits j = 4s + r of word w, over all lanes, feed one mma step: 16 distinct columns that lie in one
  // 64-column block (so a step never straddles a scale group of 64, 128 or 256 columns).
  for (int w = 0; w < 4; ++w)
    for (int s = 0; s < 4; ++s) {
      std::set<int> cols;
      for (int lane = 0; lane < 32; ++lane)
        for (int r = 0; r < 4; ++r)
          for (int h = 0; h < 2; ++h) cols.insert(MmaTiled::coord(lane, w, 4 * s + r + 16 * h).col);
      REQUIRE(cols.size() == 16u);
      CHECK(*cols.begin() / 64 == w);
      CHECK(*cols.rbegin() / 64 == w);
    }
}

TEST_CASE("MmaTiled: repack from PlaneMajor and back is the identity, padding is zero") {
  auto rng = anybcq_test::rng(58);
  for (auto [M, K, P] : {std::tuple<index_t, index_t, int>{37, 96, 3}, {16, 256, 2}, {33, 544, 4}, {1, 32, 1}}) {
    CAPTURE(M);
    CAPTURE(K);
    anybcq::layout::PlaneMajor pm{M, K / 32, P};
    std::vector<std::uint32_t> src(static_cast<std::size_t>(pm.size_words()));
    for (auto& w : src) w = static_cast<std::uint32_t>(rng());
    const auto mt = anybcq::layout::make_mma_tiled(M, K, P);
    std::vector<std::uint32_t> tiled(static_cast<std::size_t>(mt.size_words()), 0xDEADBEEFu);
    anybcq::layout::repack_to_mma(pm, src.data(), mt, tiled.data(), 2);
    for (int b = 0; b < P; ++b)
      for (index_t m = 0; m < M; ++m)
        for (index_t k = 0; k < K; ++k)
          REQUIRE(mt.get_bit(tiled.data(), b, m, k) == int((src[pm.word_offset(b, k / 32, m)] >> (k % 32)) & 1u));
    // Padding (rows ≥ M or columns ≥ K) must be zero bits.
    for (int b = 0; b < P; ++b)
      for (index_t m = 0; m < mt.row_tiles() * 16; ++m)
        for (index_t k = 0; k < mt.chunks() * 256; ++k)
          if (m >= M || k >= K) REQUIRE(mt.get_bit(tiled.data(), b, m, k) == 0);
    std::vector<std::uint32_t> back(src.size(), 0u);
    anybcq::layout::repack_from_mma(mt, tiled.data(), pm, back.data());
    CHECK(back == src);
  }
}

TEST_CASE("MmaTiled: precision p reads a prefix of p planes") {
  const auto l = anybcq::layout::make_mma_tiled(100, 4096, 4);
  for (int p = 1; p <= 4; ++p) CHECK(l.words_read(p) == l.block_offset(p, 0, 0));
  CHECK(l.words_read(4) == l.size_words());
}

TEST_CASE("MmaTiled: repack rejects mismatched shapes") {
  anybcq::layout::PlaneMajor pm{16, 8, 2};
  const auto mt = anybcq::layout::make_mma_tiled(16, 512, 3);
  std::vector<std::uint32_t> a(1024), b(static_cast<std::size_t>(mt.size_words()));
  CHECK_THROWS_AS(anybcq::layout::repack_to_mma(pm, a.data(), mt, b.data()), anybcq::Error);
}
