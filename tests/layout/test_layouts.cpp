#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "anybcq/layout/interleaved.hpp"
#include "anybcq/layout/pack.hpp"
#include "anybcq/layout/plane_major.hpp"
#include "anybcq/layout/scales.hpp"
#include "support/random.hpp"

using namespace anybcq;

// The index formulas stated in each layout's header, checked at compile time.
static_assert(layout::Interleaved{5, 3, 4}.word_offset(2, 1, 3) == (1 * 4 + 2) * 5 + 3);
static_assert(layout::Interleaved{5, 3, 4}.size_words() == 60);
static_assert(layout::PlaneMajor{5, 3, 4}.word_offset(2, 1, 3) == (2 * 5 + 3) * 3 + 1);
static_assert(layout::PlaneMajor{5, 3, 4}.size_words() == 60);
static_assert(layout::PlaneMajor{5, 3, 4}.words_read(2) == 30);
static_assert(layout::is_layout_v<layout::Interleaved> && layout::is_layout_v<layout::PlaneMajor>);
static_assert(!layout::is_layout_v<int>);
static_assert(layout::ScaleLayout{7, 3, 2, 4}.alpha_base(2) == 0);
static_assert(layout::ScaleLayout{7, 3, 2, 4}.alpha_base(3) == 7 * 3 * 2);
static_assert(layout::ScaleLayout{7, 3, 2, 4}.alpha_size() == 7 * 3 * (2 + 3 + 4));
static_assert(layout::ScaleLayout{7, 3, 2, 4}.beta_size() == 7 * 3 * 3);
#if ANYBCQ_HAS_CONCEPTS
static_assert(layout::BitPlaneLayout<layout::PlaneMajor> && !layout::BitPlaneLayout<float>);
#endif

TEST_CASE_TEMPLATE("layout: word offsets are a bijection onto [0, size_words)", L, layout::Interleaved,
                   layout::PlaneMajor) {
  const L l = layout::make<L>(37, 96, 5);
  std::vector<int> hit(static_cast<std::size_t>(l.size_words()), 0);
  for (int b = 0; b < l.planes; ++b)
    for (index_t kw = 0; kw < l.k_words; ++kw)
      for (index_t m = 0; m < l.rows; ++m) ++hit[static_cast<std::size_t>(l.word_offset(b, kw, m))];
  CHECK(std::all_of(hit.begin(), hit.end(), [](int h) { return h == 1; }));
}

TEST_CASE("plane-major: the first p planes are one contiguous prefix") {
  const auto l = layout::make<layout::PlaneMajor>(19, 64, 4);
  for (int p = 1; p <= 4; ++p) {
    index_t hi = -1;
    for (int b = 0; b < p; ++b)
      for (index_t kw = 0; kw < l.k_words; ++kw)
        for (index_t m = 0; m < l.rows; ++m) hi = std::max(hi, l.word_offset(b, kw, m));
    CHECK(hi + 1 == l.words_read(p));
  }
}

TEST_CASE("scale layout: offsets of every level are a bijection") {
  const layout::ScaleLayout s{11, 4, 2, 5};
  std::vector<int> a(static_cast<std::size_t>(s.alpha_size()), 0), b(static_cast<std::size_t>(s.beta_size()), 0);
  for (int p = s.p_min; p <= s.p_max; ++p)
    for (index_t g = 0; g < s.groups; ++g)
      for (index_t m = 0; m < s.rows; ++m) {
        ++b[static_cast<std::size_t>(s.beta_offset(p, g, m))];
        for (int i = 0; i < p; ++i) ++a[static_cast<std::size_t>(s.alpha_offset(p, g, i, m))];
      }
  CHECK(std::all_of(a.begin(), a.end(), [](int h) { return h == 1; }));
  CHECK(std::all_of(b.begin(), b.end(), [](int h) { return h == 1; }));
}

TEST_CASE_TEMPLATE("pack/unpack round-trips random codes bit-exactly", L, layout::Interleaved, layout::PlaneMajor) {
  struct Case { index_t M, K; int P; };
  for (const Case c : {Case{1, 32, 1}, Case{13, 96, 3}, Case{37, 160, 8}}) {
    const index_t M = c.M, K = c.K;
    const int P = c.P;
    const L l = layout::make<L>(M, K, P);
    auto r = anybcq_test::rng(static_cast<std::uint64_t>(M * 1000 + K));
    std::vector<std::int8_t> codes(static_cast<std::size_t>(P * M * K));
    for (auto& c : codes) c = (r() & 1) ? 1 : -1;
    std::vector<std::uint32_t> words(static_cast<std::size_t>(l.size_words()), 0xDEADBEEFu);
    layout::pack(l, codes.data(), words.data());
    std::vector<std::int8_t> back(codes.size(), 0);
    layout::unpack(l, words.data(), back.data());
    CHECK(back == codes);
    // get_code agrees with the packed codes at every position.
    for (int b = 0; b < P; ++b)
      for (index_t m = 0; m < M; ++m)
        for (index_t k = 0; k < K; ++k)
          REQUIRE(layout::get_code(l, words.data(), b, m, k) == codes[static_cast<std::size_t>((b * M + m) * K + k)]);
  }
}

TEST_CASE("repack between layouts preserves every bit; pack rejects codes other than +-1") {
  const auto a = layout::make<layout::Interleaved>(23, 128, 4);
  const auto b = layout::make<layout::PlaneMajor>(23, 128, 4);
  auto r = anybcq_test::rng(7);
  std::vector<std::uint32_t> wa(static_cast<std::size_t>(a.size_words()));
  for (auto& w : wa) w = static_cast<std::uint32_t>(r());
  std::vector<std::uint32_t> wb(wa.size(), 0), wa2(wa.size(), 0);
  layout::repack(a, wa.data(), b, wb.data());
  layout::repack(b, wb.data(), a, wa2.data());
  CHECK(wa2 == wa);
  for (int p = 0; p < 4; ++p)
    for (index_t m = 0; m < 23; m += 5)
      for (index_t k = 0; k < 128; k += 7) CHECK(layout::get_bit(a, wa.data(), p, m, k) == layout::get_bit(b, wb.data(), p, m, k));

  std::vector<std::int8_t> bad(static_cast<std::size_t>(32), 1);
  bad[5] = 0;
  std::vector<std::uint32_t> out(1);
  CHECK_THROWS_WITH_AS(layout::pack(layout::make<layout::PlaneMajor>(1, 32, 1), bad.data(), out.data()),
                       doctest::Contains("codes must be -1 or +1"), Error);
  CHECK_THROWS_AS(layout::repack(a, wa.data(), layout::make<layout::PlaneMajor>(23, 128, 3), wb.data()), Error);
}
