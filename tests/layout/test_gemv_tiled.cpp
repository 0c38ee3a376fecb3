#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "anybcq/core/weights.hpp"
#include "anybcq/layout/concepts.hpp"
#include "anybcq/layout/gemv_tiled.hpp"
#include "anybcq/layout/pack.hpp"
#include "anybcq/layout/plane_major.hpp"
#include "support/random.hpp"

using namespace anybcq;

static_assert(layout::is_layout_v<layout::GemvTiled>);
// 5 rows, K = 256 (2 blocks of 128 columns, 8 words per row-plane), 3 planes.
constexpr layout::GemvTiled kSmall = layout::make<layout::GemvTiled>(5, 256, 3);
static_assert(kSmall.k_blocks() == 2);
static_assert(kSmall.size_words() == 2 * 3 * 5 * 4);
static_assert(kSmall.word_offset(0, 0, 0) == 0);
static_assert(kSmall.word_offset(0, 3, 0) == 3);                    // 4 words of one row are adjacent
static_assert(kSmall.word_offset(0, 0, 1) == 4);                    // next row: next 16 bytes
static_assert(kSmall.word_offset(1, 0, 0) == 5 * 4);                // next plane after all M rows
static_assert(kSmall.word_offset(0, 4, 0) == 3 * 5 * 4);            // next block after all P planes
static_assert(kSmall.word_offset(2, 7, 4) == ((1 * 3 + 2) * 5 + 4) * 4 + 3);
static_assert(kSmall.block_offset(2, 1, 4) == kSmall.word_offset(2, 4, 4));
static_assert(kSmall.words_read(2) == 2 * 2 * 5 * 4);
// K not a multiple of 128: the last block is padded.
static_assert(layout::make<layout::GemvTiled>(3, 160, 2).size_words() == 2 * 2 * 3 * 4);

TEST_CASE("GemvTiled: offsets are a bijection, a call at p reads only planes < p of each block") {
  for (index_t M : {1, 2, 7, 32, 33}) {
    for (index_t K : {128, 384, 512}) {
      const auto l = layout::make<layout::GemvTiled>(M, K, 4);
      std::set<index_t> seen;
      for (int b = 0; b < 4; ++b)
        for (index_t m = 0; m < M; ++m)
          for (index_t kw = 0; kw < l.k_words; ++kw) {
            const index_t o = l.word_offset(b, kw, m);
            CHECK(o >= 0);
            CHECK(o < l.size_words());
            CHECK(seen.insert(o).second);
            // within block kb, plane b occupies words [base + b·4M, base + (b+1)·4M)
            const index_t base = (kw / 4) * 4 * 4 * M;
            CHECK(o >= base + b * 4 * M);
            CHECK(o < base + (b + 1) * 4 * M);
          }
      CHECK(index_t(seen.size()) == l.size_words());
    }
  }
}

TEST_CASE("GemvTiled: repack round trip with PlaneMajor and convert() keep every code") {
  auto rng = anybcq_test::rng(55);
  for (index_t M : {1, 37, 64}) {
    const index_t K = 384;
    BcqShape s{M, K, 128, 2, 3, false};
    MultiPrecisionWeights<> w(s);
    for (auto& word : w.planes()) word = static_cast<std::uint32_t>(rng());
    const auto tiled = w.convert<layout::GemvTiled>();
    CHECK(tiled.planes().size() == std::size_t(tiled.layout().size_words()));
    for (int b = 0; b < 3; ++b)
      for (index_t m = 0; m < M; ++m)
        for (index_t k = 0; k < K; ++k)
          REQUIRE(layout::get_bit(tiled.layout(), tiled.planes().data(), b, m, k) ==
                  layout::get_bit(w.layout(), w.planes().data(), b, m, k));
    const auto back = tiled.convert<layout::PlaneMajor>();
    CHECK(back.planes() == w.planes());
    // the dequantized weights agree at every precision
    for (int p = 2; p <= 3; ++p) {
      const auto a = w.view(p);
      const auto t = tiled.view(p);
      for (index_t m = 0; m < M; m += 7)
        for (index_t k = 0; k < K; k += 5) CHECK(a.weight(m, k) == t.weight(m, k));
    }
  }
}
