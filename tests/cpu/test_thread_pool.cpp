#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "anybcq/cpu/thread_pool.hpp"

using namespace anybcq;

TEST_CASE("ThreadPool: parallel_for covers every item exactly once, for any grain and worker count") {
  cpu::ThreadPool pool(3);
  CHECK(pool.size() == 3);
  for (int rep = 0; rep < 20; ++rep)
    for (index_t n : {1, 7, 64, 1000})
      for (index_t grain : {1, 3, 16, 2000})
        for (int workers : {1, 2, 3}) {
          std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
          for (auto& h : hits) h = 0;
          pool.parallel_for(
              n, grain,
              [&](index_t b, index_t e) {
                REQUIRE(b < e);
                REQUIRE(e - b <= grain);
                for (index_t i = b; i < e; ++i) hits[std::size_t(i)]++;
              },
              workers);
          for (auto& h : hits) REQUIRE(h.load() == 1);
        }
}

TEST_CASE("ThreadPool: run calls each index once; exceptions reach the caller; pool stays usable") {
  cpu::ThreadPool pool(2);
  std::vector<std::atomic<int>> seen(2);
  for (auto& s : seen) s = 0;
  pool.run([&](int w, int nw) {
    CHECK(nw == 2);
    seen[std::size_t(w)]++;
  });
  CHECK(seen[0] == 1);
  CHECK(seen[1] == 1);
  CHECK_THROWS_AS(pool.parallel_for(100, 1,
                                    [](index_t b, index_t) {
                                      if (b == 37) throw std::runtime_error("item 37");
                                    }),
                  std::runtime_error);
  std::atomic<index_t> sum{0};
  pool.parallel_for(100, 10, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) sum += i;
  });
  CHECK(sum == 4950);
  CHECK_THROWS_AS(pool.run([](int, int) {}, 3), Error);  // more workers than the pool has
}

TEST_CASE("ThreadPool: calls from several threads are serialized safely") {
  cpu::ThreadPool pool(2);
  std::atomic<index_t> total{0};
  auto body = [&] {
    for (int i = 0; i < 50; ++i)
      pool.parallel_for(64, 4, [&](index_t b, index_t e) { total += e - b; });
  };
  std::thread a(body), b(body);
  body();
  a.join();
  b.join();
  CHECK(total == 3 * 50 * 64);
}
