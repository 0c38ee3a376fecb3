#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "anybcq/core/weights.hpp"
#include "anybcq/layout/concepts.hpp"
#include "anybcq/layout/pack.hpp"
#include "anybcq/layout/plane_major.hpp"
#include "anybcq/layout/row_tiled.hpp"

using namespace anybcq;

static_assert(layout::is_layout_v<layout::RowTiled>);
// 40 rows, K = 64, 3 planes: T = 3 tiles, 2 words per tile row.
static_assert(layout::make<layout::RowTiled>(40, 64, 3).tiles() == 3);
static_assert(layout::make<layout::RowTiled>(40, 64, 3).size_words() == 3 * 3 * 16 * 2);
static_assert(layout::make<layout::RowTiled>(40, 64, 3).word_offset(0, 0, 0) == 0);
static_assert(layout::make<layout::RowTiled>(40, 64, 3).word_offset(0, 0, 15) == 15);
static_assert(layout::make<layout::RowTiled>(40, 64, 3).word_offset(0, 1, 0) == 16);
static_assert(layout::make<layout::RowTiled>(40, 64, 3).word_offset(0, 0, 16) == 32);
static_assert(layout::make<layout::RowTiled>(40, 64, 3).word_offset(1, 0, 0) == 96);
static_assert(layout::make<layout::RowTiled>(40, 64, 3).words_read(2) == 192);

TEST_CASE("RowTiled: offsets are a bijection onto the non-padding words, planes are prefixes") {
  for (index_t M : {1, 15, 16, 17, 33, 40}) {
    const auto l = layout::make<layout::RowTiled>(M, 96, 3);
    std::set<index_t> seen;
    for (int b = 0; b < 3; ++b)
      for (index_t m = 0; m < M; ++m)
        for (index_t kw = 0; kw < 3; ++kw) {
          const index_t o = l.word_offset(b, kw, m);
          CHECK(o >= 0);
          CHECK(o < l.size_words());
          CHECK(o < l.words_read(b + 1));  // plane b lies inside the first b+1 planes
          CHECK(o >= l.words_read(b));
          CHECK(seen.insert(o).second);
        }
    CHECK(l.size_words() == 3 * ((M + 15) / 16) * 16 * 3);
  }
}

TEST_CASE("RowTiled: repack from PlaneMajor keeps every code") {
  std::mt19937 rng(1234);
  BcqShape s{37, 96, 32, 2, 4, false};
  MultiPrecisionWeights<layout::PlaneMajor> w(s);
  for (auto& word : w.planes()) word = static_cast<std::uint32_t>(rng());
  const auto t = w.convert<layout::RowTiled>();
  for (int b = 0; b < 4; ++b)
    for (index_t m = 0; m < s.rows; ++m)
      for (index_t k = 0; k < s.cols; ++k)
        REQUIRE(layout::get_bit(t.layout(), t.planes().data(), b, m, k) ==
                layout::get_bit(w.layout(), w.planes().data(), b, m, k));
  // Padding rows of the last tile stay zero.
  const auto& l = t.layout();
  for (int b = 0; b < 4; ++b)
    for (index_t m = s.rows; m < l.tiles() * 16; ++m)
      for (index_t kw = 0; kw < l.k_words; ++kw) CHECK(t.planes()[std::size_t(l.word_offset(b, kw, m))] == 0u);
  const auto back = t.convert<layout::PlaneMajor>();
  CHECK(back.planes() == w.planes());
}
