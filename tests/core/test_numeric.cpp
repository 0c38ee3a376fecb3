#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "anybcq/core/numeric.hpp"
#include "support/random.hpp"

using namespace anybcq;

TEST_CASE("half: every bit pattern survives half -> float -> half") {
  for (unsigned b = 0; b < 65536; ++b) {
    const half_t h{static_cast<std::uint16_t>(b)};
    const float f = to_float(h);
    const half_t back = to_half(f);
    if (std::isnan(f)) {
      CHECK(std::isnan(to_float(back)));
    } else {
      REQUIRE_MESSAGE(back.bits == h.bits, "pattern ", b);
    }
  }
}

TEST_CASE("half: float -> half rounds to the nearest representable value (ties to even)") {
  auto r = anybcq_test::rng(1);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    std::uint32_t u = bits(r);
    float f;
    std::memcpy(&f, &u, 4);
    if (!std::isfinite(f) || std::fabs(f) > 65504.0f) continue;
    const half_t h = to_half(f);
    const float hf = to_float(h);
    // Neighbours of h in the half grid.
    const float up = to_float(half_t{static_cast<std::uint16_t>(h.bits + 1)});
    const float dn = h.bits & 0x7FFF ? to_float(half_t{static_cast<std::uint16_t>(h.bits - 1)}) : -hf;
    const double e = std::fabs(double(f) - hf);
    if (std::isfinite(up)) CHECK(e <= std::fabs(double(f) - up));
    CHECK(e <= std::fabs(double(f) - dn));
  }
  CHECK(to_half(65520.0f).bits == 0x7C00);  // overflow rounds to +Inf
  CHECK(to_half(-1e9f).bits == 0xFC00);
  CHECK(to_half(1.0f).bits == 0x3C00);
  CHECK(to_half(std::numeric_limits<float>::denorm_min()).bits == 0);
  CHECK(to_float(to_half(5.960464477539063e-08f)) == 5.960464477539063e-08f);  // smallest subnormal
}

TEST_CASE("bfloat16: round to nearest even and exact widening") {
  CHECK(to_bfloat16(1.0f).bits == 0x3F80);
  CHECK(to_float(bfloat16_t{0x3F80}) == 1.0f);
  CHECK(to_bfloat16(1.00390625f).bits == 0x3F80);  // tie between 0x3F80 and 0x3F81: even
  CHECK(to_bfloat16(1.01171875f).bits == 0x3F82);  // tie between 0x3F81 and 0x3F82: even
  CHECK(std::isnan(to_float(to_bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  auto r = anybcq_test::rng(2);
  std::normal_distribution<float> d(0, 100);
  for (int i = 0; i < 100000; ++i) {
    const float f = d(r);
    const bfloat16_t b = to_bfloat16(f);
    const float up = to_float(bfloat16_t{static_cast<std::uint16_t>(b.bits + 1)});
    const float dn = to_float(bfloat16_t{static_cast<std::uint16_t>(b.bits - 1)});
    const double e = std::fabs(double(f) - to_float(b));
    if (std::isfinite(up)) CHECK(e <= std::fabs(double(f) - up));  // neighbours across ±0 wrap to NaN
    if (std::isfinite(dn)) CHECK(e <= std::fabs(double(f) - dn));
  }
}
