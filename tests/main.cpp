// Test runner: doctest's own main, preceded by the seed of this run's random inputs.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "support/random.hpp"

int main(int argc, char** argv) {
  const unsigned long long seed = anybcq_test::base_seed();
  std::printf("[anybcq] random inputs from seed %llu (ANYBCQ_TEST_SEED=%llu repeats them)\n", seed, seed);
  std::fflush(stdout);
  doctest::Context context(argc, argv);
  return context.run();
}
