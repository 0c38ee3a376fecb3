// anybcq — command-line converter: quantizes checkpoints (safetensors, sharded or not), single .npy
// matrices or a built-in Llama-shaped model to AnyBCQ multi-precision form; inspects files; dequantizes
// back to a plain fp16/bf16 checkpoint. Run `anybcq --help`; the file format is in docs/format.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "anybcq/core/error.hpp"
#include "anybcq/core/weights.hpp"
#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/io/bcq_tensor.hpp"
#include "anybcq/io/checkpoint.hpp"
#include "anybcq/io/npy.hpp"
#include "anybcq/io/safetensors.hpp"
#include "anybcq/layout/interleaved.hpp"
#include "anybcq/quant/quantize.hpp"

namespace {

using namespace anybcq;
using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // bad input file, failed write, quantizer error
constexpr int kExitUsage = 2;  // bad command line

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Interrupted runs: the output is written under a temporary name and renamed at the end; a signal
// removes the temporary file (unlink is async-signal-safe) and then lets the signal kill the process.
char g_partial[4096];

extern "C" void on_signal(int sig) {
  if (g_partial[0]) ::unlink(g_partial);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

struct PartialGuard {
  explicit PartialGuard(const std::string& out) {
    const std::string p = io::partial_path(out);
    if (p.size() < sizeof(g_partial)) std::memcpy(g_partial, p.c_str(), p.size() + 1);
  }
  ~PartialGuard() { g_partial[0] = '\0'; }
};

// ---------------------------------------------------------------------------------------------
// Command-line parsing.
struct OptSpec {
  const char* name;  // without the leading "--"
  bool takes_value;
};

struct Args {
  std::vector<std::string> pos;
  std::map<std::string, std::string> val;
  std::set<std::string> flags;
  bool help = false;
  bool has(const std::string& k) const { return val.count(k) || flags.count(k); }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = val.find(k);
    return it == val.end() ? def : it->second;
  }
};

Args parse_args(const std::string& cmd, int argc, char** argv, int first, const std::vector<OptSpec>& specs) {
  Args a;
  bool options_done = false;
  for (int i = first; i < argc; ++i) {
    const std::string s = argv[i];
    if (options_done || s.size() < 2 || s[0] != '-') {
      a.pos.push_back(s);
      continue;
    }
    if (s == "--") {
      options_done = true;
      continue;
    }
    if (s == "-h" || s == "--help") {
      a.help = true;
      continue;
    }
    if (s.rfind("--", 0) != 0)
      throw UsageError("unknown option '" + s + "' for 'anybcq " + cmd + "'; see 'anybcq " + cmd + " --help'");
    std::string name = s.substr(2), value;
    bool inline_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const OptSpec* spec = nullptr;
    for (const OptSpec& o : specs)
      if (name == o.name) spec = &o;
    if (!spec)
      throw UsageError("unknown option '--" + name + "' for 'anybcq " + cmd + "'; see 'anybcq " + cmd + " --help'");
    if (!spec->takes_value) {
      if (inline_value) throw UsageError("option '--" + name + "' takes no value");
      a.flags.insert(name);
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) throw UsageError("option '--" + name + "' needs a value; see 'anybcq " + cmd + " --help'");
      value = argv[++i];
    }
    if (a.val.count(name)) throw UsageError("option '--" + name + "' given twice");
    a.val[name] = value;
  }
  return a;
}

long parse_int(const std::string& opt, const std::string& s, long lo, long hi) {
  std::size_t used = 0;
  long v = 0;
  bool ok = !s.empty();
  try {
    v = std::stol(s, &used, 10);
  } catch (...) {
    ok = false;
  }
  if (!ok || used != s.size() || v < lo || v > hi)
    throw UsageError("--" + opt + " expects an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
                     ", got '" + s + "'");
  return v;
}

void parse_bits(const std::string& s, int& lo, int& hi) {
  const auto colon = s.find(':');
  const std::string a = colon == std::string::npos ? s : s.substr(0, colon);
  const std::string b = colon == std::string::npos ? s : s.substr(colon + 1);
  try {
    lo = int(parse_int("bits", a, 1, kMaxBits));
    hi = int(parse_int("bits", b, 1, kMaxBits));
  } catch (const UsageError&) {
    throw UsageError("--bits expects P or PMIN:PMAX with 1 <= PMIN <= PMAX <= " + std::to_string(kMaxBits) +
                     ", got '" + s + "'");
  }
  if (lo > hi) throw UsageError("--bits " + s + ": PMIN " + std::to_string(lo) + " exceeds PMAX " + std::to_string(hi));
}

std::regex parse_regex(const std::string& opt, const std::string& s) {
  try {
    return std::regex(s, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw UsageError("--" + opt + " '" + s + "' is not a valid regular expression (" + e.what() + ")");
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---------------------------------------------------------------------------------------------
// Formatting.
std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string fmt_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  return fmt(u == 0 ? "%.0f" : "%.2f", b) + " " + units[u];
}

std::string fmt_secs(double s) {
  if (s < 60) return fmt("%.1f s", s);
  const long t = long(s + 0.5);
  return std::to_string(t / 60) + " min " + std::to_string(t % 60) + " s";
}

std::string pad(const std::string& s, std::size_t w, bool right = false) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

std::string shape_str(const std::vector<index_t>& s) {
  std::string r;
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "x" : "") + std::to_string(s[i]);
  return r.empty() ? "scalar" : r;
}

// ---------------------------------------------------------------------------------------------
// Where the weights come from: a checkpoint, one .npy matrix, or the built-in Llama-shaped model.
struct TensorRef {
  std::string name;
  io::DType dtype = io::DType::F32;
  std::vector<index_t> shape;
  std::uint64_t nbytes = 0;
};

struct Source {
  std::string description;
  std::vector<TensorRef> tensors;
  std::map<std::string, std::string> metadata;
  bool quantize_all = false;                                  // .npy and built-in: every matrix is a target
  std::function<std::vector<float>(const TensorRef&)> read;  // the tensor converted to float
  std::function<const void*(const TensorRef&)> raw;         // its bytes, for copying unchanged
  std::shared_ptr<void> keep;                                 // owns the mapped files
};

Source open_checkpoint(const std::string& path) {
  auto ck = std::make_shared<io::Checkpoint>(io::Checkpoint::open(path));
  Source s;
  s.description = path + (ck->shard_count() > 1 ? " (" + std::to_string(ck->shard_count()) + " shards)" : "");
  for (const std::string& n : ck->names()) {
    const io::TensorInfo& t = ck->info(n);
    s.tensors.push_back({n, t.dtype, t.shape, t.nbytes()});
  }
  s.metadata = ck->metadata();
  const io::Checkpoint* c = ck.get();
  s.read = [c](const TensorRef& t) { return c->shard(t.name).read_float(c->info(t.name)); };
  s.raw = [c](const TensorRef& t) -> const void* { return c->shard(t.name).data(c->info(t.name)); };
  s.keep = ck;
  return s;
}

Source open_npy(const std::string& path) {
  auto a = std::make_shared<io::NpyArray>(io::NpyArray::open(path));
  if (a->shape().size() != 2)
    detail::throw_error("anybcq: ", path, ": array has shape [", shape_str(a->shape()),
                        "]; a single .npy input must be a 2-D M x K matrix");
  Source s;
  s.description = path;
  s.quantize_all = true;
  s.tensors.push_back({"weight", a->dtype(), a->shape(), std::uint64_t(a->numel()) * io::dtype_size(a->dtype())});
  const io::NpyArray* p = a.get();
  s.read = [p](const TensorRef&) { return p->read_float(); };
  s.raw = [p](const TensorRef&) -> const void* { return p->data(); };
  s.keep = a;
  return s;
}

// Built-in model: a Llama-style decoder, hidden 1024, MLP 2816 (≈ 8/3 · 1024, a multiple of 128), four
// layers of q/k/v/o (1024x1024), gate/up (2816x1024), down (1024x2816): 28 matrices, 50.3 M weights,
// stored as bf16 like a real checkpoint. Values: Student-t (4 dof) × 0.02 with 1/128 of the input
// channels ×6 (outlier features), seeded per matrix, so every run sees the same weights.
constexpr int kBuiltinLayers = 4;
constexpr index_t kBuiltinHidden = 1024, kBuiltinMlp = 2816;

Source builtin_model() {
  Source s;
  s.description = "built-in Llama-shaped model (4 layers, hidden 1024, MLP 2816, bf16, seeded)";
  s.quantize_all = true;
  const index_t H = kBuiltinHidden, F = kBuiltinMlp;
  const std::pair<const char*, std::pair<index_t, index_t>> mats[] = {
      {"self_attn.q_proj", {H, H}}, {"self_attn.k_proj", {H, H}}, {"self_attn.v_proj", {H, H}},
      {"self_attn.o_proj", {H, H}}, {"mlp.gate_proj", {F, H}},    {"mlp.up_proj", {F, H}},
      {"mlp.down_proj", {H, F}}};
  for (int l = 0; l < kBuiltinLayers; ++l)
    for (const auto& m : mats) {
      TensorRef t;
      t.name = "model.layers." + std::to_string(l) + "." + m.first + ".weight";
      t.dtype = io::DType::BF16;
      t.shape = {m.second.first, m.second.second};
      t.nbytes = std::uint64_t(m.second.first * m.second.second) * 2;
      s.tensors.push_back(t);
    }
  s.metadata["format"] = "pt";
  s.read = [](const TensorRef& t) {
    // Built from std::mt19937_64 bits only (std:: distributions differ between standard libraries),
    // with every draw explicitly sequenced.
    const index_t M = t.shape[0], K = t.shape[1];
    std::uint64_t seed = 1469598103934665603ull;  // FNV-1a of the name
    for (unsigned char c : t.name) seed = (seed ^ c) * 1099511628211ull;
    std::mt19937_64 rng(seed);
    auto uniform = [&] { return (double(rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0); };  // (0, 1)
    double spare = 0;
    bool have_spare = false;
    auto normal = [&] {  // Box-Muller, both outputs used
      if (have_spare) {
        have_spare = false;
        return spare;
      }
      const double r = std::sqrt(-2.0 * std::log(uniform()));
      const double a = 6.283185307179586 * uniform();
      spare = r * std::sin(a);
      have_spare = true;
      return r * std::cos(a);
    };
    // Student-t, 4 degrees of freedom: z / sqrt(chi2_4 / 4), with chi2_4 = -2 ln(u1 u2).
    auto student_t4 = [&] {
      const double z = normal();
      const double u1 = uniform();
      const double u2 = uniform();
      return z / std::sqrt(-0.5 * std::log(u1 * u2));
    };
    std::vector<float> scale(static_cast<std::size_t>(K), 0.02f);
    for (index_t i = 0; i < K / 128; ++i) scale[static_cast<std::size_t>(rng() % std::uint64_t(K))] = 0.12f;
    std::vector<float> w(static_cast<std::size_t>(M * K));
    for (index_t m = 0; m < M; ++m)
      for (index_t k = 0; k < K; ++k)  // stored as bf16, like a real checkpoint
        w[std::size_t(m * K + k)] = to_float(to_bfloat16(float(student_t4()) * scale[std::size_t(k)]));
    return w;
  };
  s.raw = [](const TensorRef&) -> const void* { return nullptr; };
  return s;
}

// ---------------------------------------------------------------------------------------------
// quantize
const char* const kQuantizeHelp = R"(usage: anybcq quantize [IN] [OUT] [options]
       anybcq quantize --input FILE.npy [OUT] [options]

Quantizes every selected 2-D weight of IN to AnyBCQ multi-precision form (one set of bit-planes for
the top precision, scales for every precision in the --bits range), copies every other tensor
unchanged, and prints a per-layer and total table: relative error ||W - W_p|| / ||W|| at every p and
bytes read at every p against the original. Progress (layer i/n, elapsed, ETA) goes to stderr.

IN   a .safetensors file, a sharded checkpoint (model.safetensors.index.json or its directory), or
     a .npy float32/float16 M x K matrix. Without IN, a built-in seeded Llama-shaped model is used
     (4 layers x q/k/v/o 1024x1024, gate/up 2816x1024, down 1024x2816; 50.3 M bf16 weights).
OUT  the AnyBCQ .safetensors file to write (docs/format.md). Without OUT nothing is written, only the
     report. OUT appears only when complete: it is written to OUT.partial and renamed at the end.

options:
  --input FILE       same as IN (then the first positional argument is OUT)
  --builtin          use the built-in model even when OUT is given (then the positional argument is OUT)
  --bits PMIN:PMAX   precision range, 1 <= PMIN <= PMAX <= 8 (default 2:4); a single P means P:P
  --group G          input features per scale group, a divisor of K (default 128; matrices whose K
                     it does not divide, or whose K is not a multiple of 32, are copied unchanged)
  --rounds R         alternating refinement rounds per precision level, 0 = greedy only (default 20)
  --symmetric        no offsets (beta = 0)
  --include REGEX    quantize only tensors whose name matches (default '\.weight$', or every matrix
                     of a .npy or the built-in model)
  --exclude REGEX    never quantize tensors whose name matches (default
                     'embed|norm|lm_head|wte|wpe|(^|\.)output\.weight$'); '' excludes nothing
  --layout L         bit-plane layout written to OUT: pmk32 (plane-major, default) or kpm32 (interleaved)
  --threads N        worker threads (default: all cores)
  --json             print one JSON object instead of the table (rel_error per p, bytes, seconds, layers)
  -h, --help         this text
)";

struct LayerStat {
  std::string name;
  index_t rows = 0, cols = 0;
  io::DType dtype = io::DType::F32;
  std::map<int, double> sq_err;  // Σ (w − ŵ_p)²
  double sq_norm = 0;            // Σ w²
  std::map<int, index_t> bytes;  // bytes read at p
  index_t orig_bytes = 0;
  double seconds = 0;
  double rel(int p) const { return sq_norm > 0 ? std::sqrt(sq_err.at(p) / sq_norm) : 0.0; }
};

struct QuantizeJob {
  quant::QuantizeOptions opt;
  quant::AlternatingRefiner refiner;
  bool tty = false;
  std::size_t index = 0, count = 0;
  double work_done = 0, work_total = 0;
  Clock::time_point start = Clock::now();
  double quant_seconds = 0;
  std::vector<LayerStat> stats;

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start).count(); }

  MultiPrecisionWeights<> run(const Source& src, const TensorRef& t) {
    ++index;
    const index_t M = t.shape[0], K = t.shape[1];
    const std::string head = "[" + pad(std::to_string(index), std::to_string(count).size(), true) + "/" +
                             std::to_string(count) + "] " + t.name + " " + shape_str(t.shape);
    if (tty) std::fprintf(stderr, "%s ...", head.c_str());
    std::fflush(stderr);
    const std::vector<float> w = src.read(t);
    const auto t0 = Clock::now();
    const double base = work_done, weight = double(M) * double(K);
    auto progress = [&](index_t done, index_t total) {
      if (!tty) return;
      const double frac = total ? double(done) / double(total) : 1.0;
      const double wd = base + weight * frac, el = elapsed();
      const double eta = wd > 0 ? el * (work_total - wd) / wd : 0;
      std::fprintf(stderr, "\r%s %3.0f%% | elapsed %s | ETA %s   ", head.c_str(), 100 * frac, fmt_secs(el).c_str(),
                   fmt_secs(eta).c_str());
      std::fflush(stderr);
    };
    MultiPrecisionWeights<> q = quant::quantize(w.data(), M, K, opt, refiner, progress);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    quant_seconds += secs;

    LayerStat st;
    st.name = t.name;
    st.rows = M;
    st.cols = K;
    st.dtype = t.dtype;
    st.orig_bytes = index_t(t.nbytes);
    st.seconds = secs;
    for (float x : w) st.sq_norm += double(x) * double(x);
    std::vector<float> deq(w.size());
    for (int p = opt.p_min; p <= opt.p_max; ++p) {
      cpu::dequantize(q.view(p), deq.data());
      double e = 0;
      for (std::size_t i = 0; i < w.size(); ++i) {
        const double d = double(deq[i]) - double(w[i]);
        e += d * d;
      }
      st.sq_err[p] = e;
      st.bytes[p] = q.bytes(p);
    }
    work_done += weight;
    const double el = elapsed();
    const double eta = work_done > 0 ? el * (work_total - work_done) / work_done : 0;
    std::fprintf(stderr, "%s%s  %s | err@%d %.4f | elapsed %s | ETA %s\n", tty ? "\r" : "", head.c_str(),
                 fmt_secs(secs).c_str(), opt.p_max, st.rel(opt.p_max), fmt_secs(el).c_str(), fmt_secs(eta).c_str());
    std::fflush(stderr);
    stats.push_back(std::move(st));
    return q;
  }
};

void print_table(const QuantizeJob& job, const std::vector<std::string>& skipped) {
  const auto& S = job.stats;
  const int p0 = job.opt.p_min, p1 = job.opt.p_max;
  const std::string total_label =
      "total (" + std::to_string(S.size()) + (S.size() == 1 ? " matrix)" : " matrices)");
  std::size_t nw = std::max<std::size_t>(16, total_label.size());
  for (const auto& s : S) nw = std::max(nw, s.name.size());
  const std::size_t sw = 11, ew = 8, bw = 11;
  std::ostringstream o;
  o << pad("layer", nw) << "  " << pad("shape", sw);
  for (int p = p0; p <= p1; ++p) o << pad("err@" + std::to_string(p), ew, true);
  for (int p = p0; p <= p1; ++p) o << pad("bytes@" + std::to_string(p), bw + 1, true);
  o << pad("original", bw + 1, true) << "\n";
  const std::size_t width = o.str().size() - 1;
  o << std::string(width, '-') << "\n";
  double tot_norm = 0, tot_orig = 0, n_weights = 0;
  std::map<int, double> tot_err, tot_bytes;
  for (const auto& s : S) {
    o << pad(s.name, nw) << "  " << pad(std::to_string(s.rows) + "x" + std::to_string(s.cols), sw);
    for (int p = p0; p <= p1; ++p) o << pad(fmt("%.4f", s.rel(p)), ew, true);
    for (int p = p0; p <= p1; ++p) o << pad(fmt_bytes(double(s.bytes.at(p))), bw + 1, true);
    o << pad(fmt_bytes(double(s.orig_bytes)), bw + 1, true) << "\n";
    tot_norm += s.sq_norm;
    tot_orig += double(s.orig_bytes);
    n_weights += double(s.rows) * double(s.cols);
    for (int p = p0; p <= p1; ++p) {
      tot_err[p] += s.sq_err.at(p);
      tot_bytes[p] += double(s.bytes.at(p));
    }
  }
  o << std::string(width, '-') << "\n";
  o << pad(total_label, nw) << "  " << pad("", sw);
  for (int p = p0; p <= p1; ++p) o << pad(fmt("%.4f", tot_norm > 0 ? std::sqrt(tot_err[p] / tot_norm) : 0.0), ew, true);
  for (int p = p0; p <= p1; ++p) o << pad(fmt_bytes(tot_bytes[p]), bw + 1, true);
  o << pad(fmt_bytes(tot_orig), bw + 1, true) << "\n";
  if (n_weights > 0) {
    o << pad("bits per weight", nw) << "  " << pad("", sw) << pad("", ew * std::size_t(p1 - p0 + 1));
    for (int p = p0; p <= p1; ++p) o << pad(fmt("%.3f", 8 * tot_bytes[p] / n_weights), bw + 1, true);
    o << pad(fmt("%.3f", 8 * tot_orig / n_weights), bw + 1, true) << "\n";
    o << pad("size vs original", nw) << "  " << pad("", sw) << pad("", ew * std::size_t(p1 - p0 + 1));
    for (int p = p0; p <= p1; ++p) o << pad(fmt("%.1f%%", 100 * tot_bytes[p] / tot_orig), bw + 1, true);
    o << pad("100%", bw + 1, true) << "\n";
  }
  o << "err@p = ||W - W_p||_F / ||W||_F (total: over all quantized weights); bytes@p = planes + scales a call at "
       "precision p reads\n";
  o << "group " << job.opt.group << ", " << (job.opt.symmetric ? "symmetric" : "asymmetric") << ", rounds "
    << job.refiner.rounds << ", quantization time " << fmt_secs(job.quant_seconds) << " (wall " << fmt_secs(job.elapsed())
    << ")\n";
  if (!skipped.empty()) {
    o << skipped.size() << " matching matri" << (skipped.size() == 1 ? "x" : "ces") << " copied unchanged:\n";
    for (const auto& s : skipped) o << "  " << s << "\n";
  }
  std::cout << o.str();
}

nlohmann::json stats_json(const QuantizeJob& job, const std::string& input, const std::string& output,
                          const std::vector<std::string>& skipped) {
  const int p0 = job.opt.p_min, p1 = job.opt.p_max;
  nlohmann::json layers = nlohmann::json::array();
  double tot_norm = 0, tot_orig = 0;
  std::map<int, double> tot_err;
  std::map<int, index_t> tot_bytes;
  for (const auto& s : job.stats) {
    nlohmann::json l = {{"name", s.name}, {"shape", {s.rows, s.cols}}, {"dtype", io::dtype_name(s.dtype)},
                        {"original_bytes", s.orig_bytes}, {"seconds", s.seconds}};
    for (int p = p0; p <= p1; ++p) {
      l["rel_error"][std::to_string(p)] = s.rel(p);
      l["bytes"][std::to_string(p)] = s.bytes.at(p);
      tot_err[p] += s.sq_err.at(p);
      tot_bytes[p] += s.bytes.at(p);
    }
    tot_norm += s.sq_norm;
    tot_orig += double(s.orig_bytes);
    layers.push_back(l);
  }
  nlohmann::json j;
  j["input"] = input;
  j["output"] = output.empty() ? nlohmann::json(nullptr) : nlohmann::json(output);
  j["bits"] = {p0, p1};
  j["group"] = job.opt.group;
  j["rounds"] = job.refiner.rounds;
  j["symmetric"] = job.opt.symmetric;
  for (int p = p0; p <= p1; ++p) {
    j["rel_error"][std::to_string(p)] = tot_norm > 0 ? std::sqrt(tot_err[p] / tot_norm) : 0.0;
    j["bytes"][std::to_string(p)] = tot_bytes[p];
  }
  j["original_bytes"] = index_t(tot_orig);
  j["seconds"] = job.quant_seconds;
  j["wall_seconds"] = job.elapsed();
  j["layers"] = layers;
  j["skipped"] = skipped;
  return j;
}

int cmd_quantize(int argc, char** argv, int first) {
  const Args a = parse_args("quantize", argc, argv, first,
                            {{"input", true}, {"bits", true}, {"group", true}, {"rounds", true}, {"symmetric", false},
                             {"include", true}, {"exclude", true}, {"threads", true}, {"json", false},
                             {"layout", true}, {"builtin", false}});
  if (a.help) {
    std::cout << kQuantizeHelp;
    return kExitOk;
  }
  std::string in = a.get("input"), out;
  std::vector<std::string> pos = a.pos;
  if (a.has("input") && in.empty()) throw UsageError("--input needs a file name");
  const bool builtin = a.has("builtin");
  if (builtin && a.has("input")) throw UsageError("--builtin and --input exclude each other");
  if (in.empty() && !builtin && !pos.empty()) {
    in = pos.front();
    pos.erase(pos.begin());
  }
  if (!pos.empty()) {
    out = pos.front();
    pos.erase(pos.begin());
  }
  if (!pos.empty()) throw UsageError("too many arguments ('" + pos.front() + "'); see 'anybcq quantize --help'");

  QuantizeJob job;
  job.opt.p_min = 2;
  job.opt.p_max = 4;
  if (a.has("bits")) parse_bits(a.get("bits"), job.opt.p_min, job.opt.p_max);
  job.opt.group = a.has("group") ? parse_int("group", a.get("group"), 1, 1L << 30) : 128;
  job.refiner.rounds = a.has("rounds") ? int(parse_int("rounds", a.get("rounds"), 0, 1000)) : 20;
  job.opt.symmetric = a.has("symmetric");
  job.opt.threads = a.has("threads") ? int(parse_int("threads", a.get("threads"), 1, 4096)) : 0;
  const std::string lay = a.get("layout", "pmk32");
  if (lay != "pmk32" && lay != "kpm32") throw UsageError("--layout expects pmk32 or kpm32, got '" + lay + "'");
  const bool json = a.has("json");
  if (!out.empty() && (ends_with(out, ".npy") || ends_with(out, ".json")))
    throw UsageError("OUT '" + out + "' must be a .safetensors file (AnyBCQ weights are stored as safetensors)");
  if (!out.empty() && !in.empty() && out == in) throw UsageError("OUT must differ from IN ('" + in + "')");

  const Source src = in.empty() ? builtin_model() : ends_with(in, ".npy") ? open_npy(in) : open_checkpoint(in);
  const bool custom_include = a.has("include"), custom_exclude = a.has("exclude");
  const std::regex inc = parse_regex("include", custom_include ? a.get("include") : "\\.weight$");
  const std::string exc_s = custom_exclude ? a.get("exclude") : "embed|norm|lm_head|wte|wpe|(^|\\.)output\\.weight$";
  const std::regex exc = parse_regex("exclude", exc_s.empty() ? "$^" : exc_s);

  for (const TensorRef& t : src.tensors)
    if (!io::bcq_owner(t.name).empty())
      detail::throw_error("anybcq: ", src.description, " already holds AnyBCQ weights (entry \"", t.name,
                          "\"); dequantize it first or quantize the original checkpoint");
  // Decide which tensors to quantize.
  std::vector<const TensorRef*> targets;
  std::vector<std::string> skipped;
  std::set<std::string> target_names;
  for (const TensorRef& t : src.tensors) {
    const bool matrix = t.shape.size() == 2 && io::is_float_dtype(t.dtype);
    const bool named = (src.quantize_all && !custom_include) || std::regex_search(t.name, inc);
    const bool excluded = !(src.quantize_all && !custom_exclude) && std::regex_search(t.name, exc);
    if (!matrix || !named || excluded) continue;
    const index_t M = t.shape[0], K = t.shape[1];
    std::string why;
    if (M <= 0 || K <= 0) why = "empty";
    else if (K % kWordBits != 0) why = "K = " + std::to_string(K) + " is not a multiple of 32";
    else if (K % job.opt.group != 0) why = "group " + std::to_string(job.opt.group) + " does not divide K = " + std::to_string(K);
    if (!why.empty()) {
      skipped.push_back(t.name + " " + shape_str(t.shape) + ": " + why);
      continue;
    }
    targets.push_back(&t);
    target_names.insert(t.name);
  }
  if (targets.empty())
    detail::throw_error("anybcq: no tensor of ", src.description,
                        " was selected for quantization (2-D float tensors matching --include and not --exclude, "
                        "with K divisible by 32 and by the group size)");
  job.count = targets.size();
  for (const TensorRef* t : targets) job.work_total += double(t->shape[0]) * double(t->shape[1]);
  job.tty = ::isatty(2) != 0;
  std::fprintf(stderr, "anybcq: quantizing %zu matri%s of %s to p = %d..%d, group %lld, %s, rounds %d%s\n",
               targets.size(), targets.size() == 1 ? "x" : "ces", src.description.c_str(), job.opt.p_min,
               job.opt.p_max, static_cast<long long>(job.opt.group), job.opt.symmetric ? "symmetric" : "asymmetric",
               job.refiner.rounds, out.empty() ? " (no output file)" : (" -> " + out).c_str());

  if (out.empty()) {
    for (const TensorRef* t : targets) (void)job.run(src, *t);
  } else {
    io::SafetensorsWriter w;
    for (const auto& kv : src.metadata)
      if (kv.first.rfind("anybcq", 0) != 0) w.set_metadata(kv.first, kv.second);
    nlohmann::json prov = {{"bits", {job.opt.p_min, job.opt.p_max}}, {"group", job.opt.group},
                           {"rounds", job.refiner.rounds}, {"symmetric", job.opt.symmetric},
                           {"refiner", quant::AlternatingRefiner::name()}};
    w.set_metadata("anybcq_quantizer", prov.dump());
    for (const TensorRef& t : src.tensors) {
      if (target_names.count(t.name)) {
        BcqShape s;
        s.rows = t.shape[0];
        s.cols = t.shape[1];
        s.group = job.opt.group;
        s.p_min = job.opt.p_min;
        s.p_max = job.opt.p_max;
        s.symmetric = job.opt.symmetric;
        auto make = [&job, &src, &t] { return job.run(src, t); };
        if (lay == "kpm32")
          io::add_bcq_tensor_deferred<layout::Interleaved, half_t>(w, t.name, s, t.dtype, make);
        else
          io::add_bcq_tensor_deferred<layout::PlaneMajor, half_t>(w, t.name, s, t.dtype, make);
      } else {
        w.add_view(t.name, t.dtype, t.shape, src.raw(t), static_cast<std::size_t>(t.nbytes));
      }
    }
    PartialGuard guard(out);
    w.write(out);
  }

  if (json) {
    std::cout << stats_json(job, in.empty() ? "builtin" : in, out, skipped).dump(2) << "\n";
  } else {
    print_table(job, skipped);
    if (!out.empty()) {
      double in_bytes = 0;
      for (const TensorRef& t : src.tensors) in_bytes += double(t.nbytes);
      std::cout << "wrote " << out << " (all precisions " << job.opt.p_min << ".." << job.opt.p_max << "); tensor data "
                << fmt_bytes(in_bytes) << " in, " << fmt_bytes(double(io::SafetensorsReader::open(out).data_size()))
                << " out\n";
    }
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// inspect
const char* const kInspectHelp = R"(usage: anybcq inspect FILE

Lists the tensors of FILE (a .safetensors file, a sharded checkpoint index or directory, or a .npy
file) with dtype, shape and size, the file metadata, and for every AnyBCQ weight its format version,
layout, group size, precision range, symmetry, scale dtype, original dtype and shape, and bytes read
at every precision. Every header, offset and AnyBCQ description is validated first.

options:
  -h, --help   this text
)";

int cmd_inspect(int argc, char** argv, int first) {
  const Args a = parse_args("inspect", argc, argv, first, {});
  if (a.help) {
    std::cout << kInspectHelp;
    return kExitOk;
  }
  if (a.pos.size() != 1) throw UsageError("inspect needs exactly one FILE; see 'anybcq inspect --help'");
  const std::string path = a.pos[0];
  std::ostringstream o;
  if (ends_with(path, ".npy")) {
    const io::NpyArray arr = io::NpyArray::open(path);
    o << path << ": .npy array, dtype " << io::dtype_name(arr.dtype()) << ", shape " << shape_str(arr.shape()) << ", "
      << fmt_bytes(double(arr.numel()) * double(io::dtype_size(arr.dtype()))) << "\n";
    std::cout << o.str();
    return kExitOk;
  }
  const io::Checkpoint ck = io::Checkpoint::open(path);
  // Each shard's AnyBCQ weights (validated against their entries).
  std::vector<const io::SafetensorsReader*> shards;
  for (const std::string& n : ck.names()) {
    const io::SafetensorsReader* r = &ck.shard(n);
    if (std::find(shards.begin(), shards.end(), r) == shards.end()) shards.push_back(r);
  }
  std::vector<io::BcqTensorInfo> bcq;
  for (const auto* r : shards) {
    auto v = io::bcq_tensors(*r);
    bcq.insert(bcq.end(), v.begin(), v.end());
  }
  double total = 0;
  std::size_t nw = 4, plain = 0;
  for (const std::string& n : ck.names()) {
    total += double(ck.info(n).nbytes());
    if (io::bcq_owner(n).empty()) {
      nw = std::max(nw, n.size());
      ++plain;
    }
  }
  for (const auto& b : bcq) nw = std::max(nw, b.name.size());
  o << path << ": " << ck.names().size() << " entries in " << ck.shard_count() << " file"
    << (ck.shard_count() == 1 ? "" : "s") << ", " << fmt_bytes(total) << " of tensor data\n";
  for (const auto& kv : ck.metadata())
    if (kv.first.rfind("anybcq.", 0) != 0) o << "  metadata " << kv.first << " = " << kv.second << "\n";
  if (plain) {
    o << "\nplain tensors (" << plain << "):\n";
    o << "  " << pad("name", nw) << "  " << pad("dtype", 7) << pad("shape", 16) << pad("bytes", 12, true) << "\n";
    for (const std::string& n : ck.names()) {
      if (!io::bcq_owner(n).empty()) continue;
      const io::TensorInfo& t = ck.info(n);
      o << "  " << pad(n, nw) << "  " << pad(io::dtype_name(t.dtype), 7) << pad(shape_str(t.shape), 16)
        << pad(fmt_bytes(double(t.nbytes())), 12, true) << "\n";
    }
  }
  if (!bcq.empty()) {
    int p0 = kMaxBits, p1 = 1;
    for (const auto& b : bcq) {
      p0 = std::min(p0, b.shape.p_min);
      p1 = std::max(p1, b.shape.p_max);
    }
    o << "\nAnyBCQ weights (" << bcq.size() << ", format version " << io::kBcqFormatVersion << "):\n";
    o << "  " << pad("name", nw) << "  " << pad("shape", 12) << pad("p", 6) << pad("group", 7) << pad("sym", 5)
      << pad("layout", 7) << pad("scale", 6) << pad("orig", 6);
    for (int p = p0; p <= p1; ++p) o << pad("bytes@" + std::to_string(p), 12, true);
    o << pad("stored", 12, true) << pad("original", 12, true) << "\n";
    double tot_store = 0, tot_orig = 0;
    std::map<int, double> tot_p;
    for (const auto& b : bcq) {
      const double orig = double(b.shape.rows) * double(b.shape.cols) * double(io::dtype_size(b.original_dtype));
      o << "  " << pad(b.name, nw) << "  " << pad(std::to_string(b.shape.rows) + "x" + std::to_string(b.shape.cols), 12)
        << pad(std::to_string(b.shape.p_min) + ".." + std::to_string(b.shape.p_max), 6)
        << pad(std::to_string(b.shape.group), 7) << pad(b.shape.symmetric ? "yes" : "no", 5) << pad(b.layout, 7)
        << pad(io::dtype_name(b.scale_dtype), 6) << pad(io::dtype_name(b.original_dtype), 6);
      for (int p = p0; p <= p1; ++p) {
        const bool in = p >= b.shape.p_min && p <= b.shape.p_max;
        o << pad(in ? fmt_bytes(double(b.bytes(p))) : "-", 12, true);
        if (in) tot_p[p] += double(b.bytes(p));
      }
      o << pad(fmt_bytes(double(b.storage_bytes())), 12, true) << pad(fmt_bytes(orig), 12, true) << "\n";
      tot_store += double(b.storage_bytes());
      tot_orig += orig;
    }
    o << "  " << pad("total", nw) << "  " << pad("", 12 + 6 + 7 + 5 + 7 + 6 + 6);
    for (int p = p0; p <= p1; ++p) o << pad(fmt_bytes(tot_p[p]), 12, true);
    o << pad(fmt_bytes(tot_store), 12, true) << pad(fmt_bytes(tot_orig), 12, true) << "\n";
  }
  std::cout << o.str();
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// dequantize
const char* const kDequantizeHelp = R"(usage: anybcq dequantize IN OUT --bits P [--dtype f16|bf16|f32]

Writes a plain checkpoint with every AnyBCQ weight of IN dequantized at precision P (W_P = beta +
sum_i alpha_i b_i over the first P planes), so any framework can evaluate the quantized model; every
other tensor is copied unchanged. OUT is a .safetensors file, or a .npy file when IN holds exactly
one AnyBCQ weight. OUT appears only when complete (written to OUT.partial, then renamed).

options:
  --bits P          the precision to dequantize at (required; inside every weight's p range)
  --dtype D         f16, bf16 or f32 (default: each weight's original dtype; f32 for an f64 original;
                    a .npy OUT takes f16 or f32)
  -h, --help        this text
)";

io::DType parse_out_dtype(const std::string& s) {
  if (s == "f16" || s == "F16" || s == "fp16" || s == "float16") return io::DType::F16;
  if (s == "bf16" || s == "BF16" || s == "bfloat16") return io::DType::BF16;
  if (s == "f32" || s == "F32" || s == "fp32" || s == "float32") return io::DType::F32;
  throw UsageError("--dtype expects f16, bf16 or f32, got '" + s + "'");
}

int cmd_dequantize(int argc, char** argv, int first) {
  const Args a = parse_args("dequantize", argc, argv, first, {{"bits", true}, {"dtype", true}});
  if (a.help) {
    std::cout << kDequantizeHelp;
    return kExitOk;
  }
  if (a.pos.size() != 2) throw UsageError("dequantize needs IN and OUT; see 'anybcq dequantize --help'");
  if (!a.has("bits")) throw UsageError("dequantize needs --bits P; see 'anybcq dequantize --help'");
  const int p = int(parse_int("bits", a.get("bits"), 1, kMaxBits));
  const bool forced = a.has("dtype");
  const io::DType forced_dtype = forced ? parse_out_dtype(a.get("dtype")) : io::DType::F16;
  const std::string in = a.pos[0], out = a.pos[1];
  if (in == out) throw UsageError("OUT must differ from IN ('" + in + "')");

  if (ends_with(in, ".index.json") || io::detail::is_directory(in) || ends_with(in, ".npy"))
    throw UsageError("dequantize reads one AnyBCQ .safetensors file (what 'anybcq quantize' writes), not '" + in + "'");
  const io::SafetensorsReader r = io::SafetensorsReader::open(in);
  const std::vector<io::BcqTensorInfo> bcq = io::bcq_tensors(r);
  if (bcq.empty()) detail::throw_error("anybcq: ", in, " holds no AnyBCQ weights (nothing to dequantize)");
  for (const auto& b : bcq)
    if (p < b.shape.p_min || p > b.shape.p_max)
      detail::throw_error("anybcq: --bits ", p, " is outside the precision range ", b.shape.p_min, "..", b.shape.p_max,
                          " of weight \"", b.name, "\"");
  auto out_dtype = [&](const io::BcqTensorInfo& b) {
    if (forced) return forced_dtype;
    return b.original_dtype == io::DType::F64 ? io::DType::F32 : b.original_dtype;
  };
  auto produce = [&r, p](const io::BcqTensorInfo& b, io::DType dt) {
    const auto w = io::load_bcq_tensor<layout::PlaneMajor, float>(r, b.name);
    std::vector<float> f(static_cast<std::size_t>(w.rows() * w.cols()));
    cpu::dequantize(w.view(p), f.data());
    std::vector<std::uint8_t> bytes(f.size() * io::dtype_size(dt));
    io::convert_from_float(f.data(), f.size(), dt, bytes.data());
    return bytes;
  };
  PartialGuard guard(out);
  if (ends_with(out, ".npy")) {
    if (bcq.size() != 1)
      detail::throw_error("anybcq: a .npy OUT holds one matrix but ", in, " has ", bcq.size(), " AnyBCQ weights");
    io::DType dt = out_dtype(bcq[0]);
    if (dt == io::DType::BF16) {
      if (forced) throw UsageError("a .npy OUT takes --dtype f16 or f32 (NumPy has no bfloat16)");
      dt = io::DType::F32;
    }
    const auto bytes = produce(bcq[0], dt);
    io::write_npy(out, dt, {bcq[0].shape.rows, bcq[0].shape.cols}, bytes.data());
  } else {
    io::SafetensorsWriter w;
    for (const auto& kv : r.metadata())
      if (kv.first.rfind("anybcq", 0) != 0) w.set_metadata(kv.first, kv.second);
    w.set_metadata("anybcq_dequantized_bits", std::to_string(p));
    for (const io::TensorInfo& t : r.tensors()) {
      const std::string owner = io::bcq_owner(t.name);
      if (owner.empty()) {
        w.add_view(t.name, t.dtype, t.shape, r.data(t), static_cast<std::size_t>(t.nbytes()));
        continue;
      }
      if (t.name != io::bcq_planes_name(owner)) continue;
      const auto it = std::find_if(bcq.begin(), bcq.end(), [&](const io::BcqTensorInfo& b) { return b.name == owner; });
      const io::BcqTensorInfo b = *it;
      const io::DType dt = out_dtype(b);
      w.add_deferred(b.name, dt, {b.shape.rows, b.shape.cols}, [produce, b, dt] { return produce(b, dt); });
    }
    w.write(out);
  }
  std::cerr << "anybcq: wrote " << out << ": " << bcq.size() << " weight" << (bcq.size() == 1 ? "" : "s")
            << " dequantized at p = " << p << "\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
const char* const kMainHelp = R"(usage: anybcq <command> [arguments]

AnyBCQ multi-precision binary-coded quantization of LLM weights: one set of bit-planes, every
precision p in a range readable from it.

commands:
  quantize [IN] [OUT]        quantize a checkpoint / .npy matrix (no IN: a built-in Llama-shaped model)
                             and print errors and sizes at every precision
  inspect FILE               tensors, shapes, dtypes, AnyBCQ metadata and sizes per precision
  dequantize IN OUT --bits P write a plain fp16/bf16 checkpoint at precision P
  help [command]             this text, or a command's

Run 'anybcq <command> --help' for a command's options. Exit status: 0 success, 1 error (bad file,
failed write), 2 bad command line.
)";

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_signal);
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "quantize") return cmd_quantize(argc, argv, 2);
    if (cmd == "inspect") return cmd_inspect(argc, argv, 2);
    if (cmd == "dequantize") return cmd_dequantize(argc, argv, 2);
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      const std::string sub = (cmd == "help" && argc > 2) ? argv[2] : "";
      if (sub == "quantize") std::cout << kQuantizeHelp;
      else if (sub == "inspect") std::cout << kInspectHelp;
      else if (sub == "dequantize") std::cout << kDequantizeHelp;
      else if (sub.empty()) std::cout << kMainHelp;
      else throw UsageError("unknown command '" + sub + "'");
      return kExitOk;
    }
    if (cmd == "--version") {
      std::cout << "anybcq " << ANYBCQ_VERSION_MAJOR << "." << ANYBCQ_VERSION_MINOR << "." << ANYBCQ_VERSION_PATCH
                << " (file format " << io::kBcqFormatVersion << ")\n";
      return kExitOk;
    }
    if (cmd.empty()) throw UsageError("no command given");
    throw UsageError("unknown command '" + cmd + "'");
  } catch (const UsageError& e) {
    std::cerr << "anybcq: " << e.what() << "\n";
    if (cmd.empty() || (cmd != "quantize" && cmd != "inspect" && cmd != "dequantize"))
      std::cerr << "\n" << kMainHelp;
    return kExitUsage;
  } catch (const Error& e) {
    std::cerr << e.what() << "\n";
    return kExitError;
  } catch (const std::bad_alloc&) {
    std::cerr << "anybcq: out of memory\n";
    return kExitError;
  } catch (const std::exception& e) {
    std::cerr << "anybcq: " << e.what() << "\n";
    return kExitError;
  }
}
