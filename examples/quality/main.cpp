// anybcq_quality — the quantizer's quality and speed table: AnyBCQ (nested planes, three offset
// policies) beside fixed-precision BCQ and round-to-nearest uniform, on seeded synthetic matrices.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/quant/quantize.hpp"
#include "anybcq/quant/rtn.hpp"

using namespace anybcq;

namespace {
std::vector<float> make(const std::string& kind, index_t M, index_t K, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> w(static_cast<std::size_t>(M * K));
  if (kind == "gaussian") {
    std::normal_distribution<float> d(0.0f, 0.02f);
    for (auto& x : w) x = d(rng);
  } else {  // Student-t, 4 dof, σ-scaled, 1/128 of the input channels ×6
    std::student_t_distribution<float> t(4.0f);
    for (auto& x : w) x = 0.02f * t(rng);
    std::vector<index_t> ch(static_cast<std::size_t>(K));
    for (index_t i = 0; i < K; ++i) ch[static_cast<std::size_t>(i)] = i;
    std::shuffle(ch.begin(), ch.end(), rng);
    for (index_t c = 0; c < K / 128; ++c)
      for (index_t m = 0; m < M; ++m) w[static_cast<std::size_t>(m * K + ch[static_cast<std::size_t>(c)])] *= 6.0f;
  }
  return w;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class W>
double err_at(const W& q, int p, const std::vector<float>& w, std::vector<float>& hat) {
  cpu::dequantize(q.view(p), hat.data());
  return cpu::relative_error(hat.data(), w.data(), static_cast<index_t>(w.size()));
}

void usage() {
  std::puts(
      "usage: anybcq_quality [--rows M] [--cols K] [--rounds R] [--threads N] [--seed S] [--time-only]\n"
      "Quantizes seeded Gaussian (sigma 0.02) and heavy-tailed (Student-t 4 dof, 1/128 of the input\n"
      "channels x6) M x K matrices (default 4096 x 4096, g = 128, p = 2..4, asymmetric) and prints a\n"
      "markdown table of relative Frobenius weight errors for AnyBCQ (three offset policies), fixed-\n"
      "precision BCQ and round-to-nearest uniform, with quantization times. --time-only times one\n"
      "quantization of a Gaussian M x K matrix (default policy) and prints the seconds.");
}
}  // namespace

int main(int argc, char** argv) {
  index_t M = 4096, K = 4096;
  int rounds = 20, threads = 0;
  std::uint64_t seed = 1;
  bool time_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "anybcq_quality: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--rows") M = std::atoll(next());
    else if (a == "--cols") K = std::atoll(next());
    else if (a == "--rounds") rounds = std::atoi(next());
    else if (a == "--threads") threads = std::atoi(next());
    else if (a == "--seed") seed = std::strtoull(next(), nullptr, 10);
    else if (a == "--time-only") time_only = true;
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "anybcq_quality: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  try {
    quant::QuantizeOptions base;
    base.threads = threads;
    const quant::AlternatingRefiner refiner{rounds};
    if (time_only) {
      const auto w = make("gaussian", M, K, seed);
      const auto t0 = std::chrono::steady_clock::now();
      const auto q = quant::quantize(w.data(), M, K, base, refiner);
      std::printf("quantize %lld x %lld, p = 2..4, g = 128, %d rounds: %.2f s\n", (long long)M, (long long)K, rounds,
                  seconds_since(t0));
      return q.planes().empty() ? 1 : 0;
    }
    std::printf("| matrix | method | p=2 | p=3 | p=4 | seconds |\n|---|---|---|---|---|---|\n");
    for (const std::string kind : {"gaussian", "heavy-tailed"}) {
      const auto w = make(kind, M, K, seed);
      std::vector<float> hat(w.size());
      const char* names[] = {"AnyBCQ, beta kept (published method)", "AnyBCQ, beta re-solved", "AnyBCQ, per-group best (default)"};
      for (int pol = 0; pol < 3; ++pol) {
        quant::QuantizeOptions o = base;
        o.offset = static_cast<quant::OffsetPolicy>(pol);
        const auto t0 = std::chrono::steady_clock::now();
        const auto q = quant::quantize(w.data(), M, K, o, refiner);
        const double s = seconds_since(t0);
        std::printf("| %s | %s | %.4f | %.4f | %.4f | %.2f |\n", kind.c_str(), names[pol], err_at(q, 2, w, hat),
                    err_at(q, 3, w, hat), err_at(q, 4, w, hat), s);
        std::fflush(stdout);
      }
      std::printf("| %s | fixed-precision BCQ (separate planes per p) |", kind.c_str());
      for (int p = 2; p <= 4; ++p) {
        quant::QuantizeOptions o = base;
        o.p_min = o.p_max = p;
        const auto q = quant::quantize(w.data(), M, K, o, refiner);
        std::printf(" %.4f |", err_at(q, p, w, hat));
      }
      std::printf(" |\n| %s | round-to-nearest uniform, asymmetric |", kind.c_str());
      for (int p = 2; p <= 4; ++p) {
        const auto r = quant::rtn_dequantize(w.data(), M, K, p, 128);
        std::printf(" %.4f |", cpu::relative_error(r.data(), w.data(), M * K));
      }
      std::printf(" |\n");
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "anybcq_quality: %s\n", e.what());
    return 1;
  }
  return 0;
}
