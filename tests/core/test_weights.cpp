#include <doctest/doctest.h>

#include <cstdint>

#include "anybcq/core/weights.hpp"
#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/layout/interleaved.hpp"
#include "support/random.hpp"

using namespace anybcq;

TEST_CASE("BcqShape validation names the bad value and the rule") {
  auto bad = [](BcqShape s, const char* what) {
    CHECK_THROWS_WITH_AS(validate(s), doctest::Contains(what), Error);
  };
  bad({0, 128, 128, 2, 4, false}, "matrix is empty");
  bad({4, 0, 128, 2, 4, false}, "matrix is empty");
  bad({4, 100, 50, 2, 4, false}, "not a multiple of the layout word width");
  bad({4, 128, 48, 2, 4, false}, "does not divide K = 128");
  bad({4, 128, 0, 2, 4, false}, "group size 0");
  bad({4, 128, 128, 0, 4, false}, "p_min = 0 is outside 1..8");
  bad({4, 128, 128, 2, 9, false}, "p_max = 9 is outside 1..8");
  bad({4, 128, 128, 4, 3, false}, "p_min = 4 exceeds p_max = 3");
  CHECK_NOTHROW(validate({4, 96, 48, 1, 8, true}));  // group need not be a multiple of 32
}

TEST_CASE("MultiPrecisionWeights: views, sizes and conversion between layouts and scale types") {
  const BcqShape shape{29, 256, 64, 2, 4, false};
  auto w = anybcq_test::random_weights<layout::PlaneMajor, half_t>(shape, 11);
  CHECK_THROWS_WITH_AS(w.view(1), doctest::Contains("outside the range this weight was built with (2..4)"), Error);
  CHECK_THROWS_AS(w.view(5), Error);
  // p planes of M×K bits + (p + 1) fp16 scale entries per group and row.
  CHECK(w.bytes(3) == 29 * 256 * 3 / 8 + 29 * 4 * 4 * 2);
  CHECK(w.storage_bytes() == 29 * 256 * 4 / 8 + 29 * 4 * (2 + 3 + 4) * 2 + 29 * 4 * 3 * 2);

  const auto inter = w.convert<layout::Interleaved>();
  const auto as_float = w.convert<layout::PlaneMajor, float>();
  for (int p = 2; p <= 4; ++p) {
    std::vector<float> a(29 * 256), b(29 * 256, NAN), c(29 * 256, NAN);
    cpu::dequantize(w.view(p), a.data());
    cpu::dequantize(inter.view(p), b.data());
    cpu::dequantize(as_float.view(p), c.data());
    CHECK(a == b);
    CHECK(a == c);  // fp16 -> float is exact
    // WeightView::weight agrees with dequantize.
    const auto v = w.view(p);
    for (index_t m = 0; m < 29; m += 7)
      for (index_t k = 0; k < 256; k += 13) CHECK(v.weight(m, k) == doctest::Approx(a[m * 256 + k]).epsilon(1e-6));
  }
  const auto mv = w.multi_view();
  CHECK(mv.has(2));
  CHECK(!mv.has(5));
  CHECK(mv.at(3).alpha == w.view(3).alpha);

  const BcqShape sym{8, 64, 32, 1, 3, true};
  MultiPrecisionWeights<> s(sym);
  CHECK(s.beta().empty());
  CHECK(s.view(2).beta == nullptr);
  CHECK(s.view(2).beta_at(0, 0) == 0.0f);
}

TEST_CASE("BulkAllocator: cache-line aligned, 2 MiB aligned from 2 MiB, usable storage") {
  const auto addr = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p); };
  bulk_vector<std::uint32_t> small(1000, 7u);
  CHECK(addr(small.data()) % 64 == 0);
  const std::size_t n = (std::size_t(5) << 20) / 4 + 3;  // 5 MiB and a bit: huge-page aligned
  bulk_vector<std::uint32_t> big(n);
  CHECK(addr(big.data()) % BulkAllocator<std::uint32_t>::kHugePage == 0);
  for (std::size_t i = 0; i < n; ++i) big[i] = std::uint32_t(i * 2654435761u);
  bulk_vector<std::uint32_t> copy = big;  // copies allocate and free through the same rule
  CHECK(copy == big);
  big.resize(10);
  big.shrink_to_fit();
  CHECK(addr(big.data()) % 64 == 0);
  CHECK(big[9] == std::uint32_t(9 * 2654435761u));
  // the weight object stores its planes and scales in it
  MultiPrecisionWeights<layout::PlaneMajor, half_t> w(BcqShape{4096, 1024, 128, 2, 4, false});
  CHECK(addr(w.planes().data()) % BulkAllocator<std::uint32_t>::kHugePage == 0);  // 4096·1024·4 bits = 2 MiB
  CHECK(addr(w.alpha().data()) % 64 == 0);
}
