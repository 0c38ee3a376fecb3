// The `anybcq` program end to end: exit codes and messages, --json, the written file against the
// library, sharded input, dequantize, inspect, and an interrupted run leaving no output behind.
// Built as its own executable (tests/io/tests.cmake) with ANYBCQ_CLI = path of the program.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "anybcq/cpu/dequantize.hpp"
#include "anybcq/io/bcq_tensor.hpp"
#include "anybcq/io/npy.hpp"
#include "anybcq/io/safetensors.hpp"
#include "anybcq/layout/interleaved.hpp"
#include "anybcq/quant/quantize.hpp"
#include "io/test_helpers.hpp"

#ifndef ANYBCQ_CLI
#error "ANYBCQ_CLI must name the anybcq program"
#endif

using namespace anybcq;
using namespace anybcq_test_io;

namespace {

struct Run {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs `anybcq ARGS` (ARGS is shell text) and captures exit status, stdout and stderr.
Run cli(const TempDir& dir, const std::string& args, const std::string& prefix = "") {
  const std::string o = dir.file("stdout.txt"), e = dir.file("stderr.txt");
  const std::string cmd = prefix + "'" + std::string(ANYBCQ_CLI) + "' " + args + " >'" + o + "' 2>'" + e + "'";
  const int st = std::system(cmd.c_str());
  Run r;
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  r.out = slurp(o);
  r.err = slurp(e);
  return r;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
bool exists(const std::string& p) { return std::ifstream(p).good(); }

std::vector<float> random_matrix(index_t m, index_t k, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(m * k));
  for (auto& x : w) x = nd(rng);
  return w;
}

}  // namespace

TEST_CASE("cli: help for every command, usage errors exit 2 with a clear message") {
  TempDir d;
  for (const char* a : {"--help", "help", "quantize --help", "inspect --help", "dequantize --help", "help dequantize"}) {
    const Run r = cli(d, a);
    CHECK_MESSAGE(r.rc == 0, a);
    CHECK_MESSAGE(has(r.out, "usage: anybcq"), a);
  }
  struct Case {
    const char* args;
    const char* msg;
  };
  const Case cases[] = {
      {"", "no command given"},
      {"frobnicate", "unknown command 'frobnicate'"},
      {"quantize --frob", "unknown option '--frob' for 'anybcq quantize'"},
      {"quantize --bits 4:2", "PMIN 4 exceeds PMAX 2"},
      {"quantize --bits 9", "--bits expects P or PMIN:PMAX"},
      {"quantize --bits two", "--bits expects P or PMIN:PMAX"},
      {"quantize --group abc", "--group expects an integer"},
      {"quantize --group 0", "--group expects an integer in 1.."},
      {"quantize --rounds", "option '--rounds' needs a value"},
      {"quantize --threads -3", "--threads expects an integer"},
      {"quantize --include '('", "not a valid regular expression"},
      {"quantize --layout xyz", "--layout expects pmk32 or kpm32"},
      {"quantize --symmetric=yes", "takes no value"},
      {"quantize a.npy b.safetensors c", "too many arguments"},
      {"quantize a.npy b.npy", "must be a .safetensors file"},
      {"quantize --builtin --input a.npy", "exclude each other"},
      {"inspect", "exactly one FILE"},
      {"dequantize a.safetensors", "needs IN and OUT"},
      {"dequantize a.safetensors b.safetensors", "needs --bits"},
      {"dequantize a.safetensors b.safetensors --bits 0", "--bits expects an integer in 1..8"},
      {"dequantize a b --bits 2 --dtype f8", "--dtype expects f16, bf16 or f32"},
  };
  for (const Case& c : cases) {
    const Run r = cli(d, c.args);
    CHECK_MESSAGE(r.rc == 2, c.args);
    CHECK_MESSAGE(has(r.err, c.msg), c.args, " -> ", r.err);
  }
}

TEST_CASE("cli: unreadable or hostile inputs exit 1 with the loader's message, and write nothing") {
  TempDir d;
  Run r = cli(d, "quantize '" + d.file("missing.safetensors") + "' '" + d.file("o.safetensors") + "'");
  CHECK(r.rc == 1);
  CHECK(has(r.err, "cannot open"));
  write_bytes(d.file("bad.safetensors"), raw_file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,64]}})",
                                                   std::vector<std::uint8_t>(16)));
  r = cli(d, "quantize '" + d.file("bad.safetensors") + "' '" + d.file("o.safetensors") + "'");
  CHECK(r.rc == 1);
  CHECK(has(r.err, "running past the end of the data section"));
  CHECK(!exists(d.file("o.safetensors")));
  r = cli(d, "inspect '" + d.file("bad.safetensors") + "'");
  CHECK(r.rc == 1);
  CHECK(has(r.err, "running past the end"));
  std::vector<float> cube(2 * 2 * 32, 1.0f);
  io::write_npy(d.file("cube.npy"), io::DType::F32, {2, 2, 32}, cube.data());
  r = cli(d, "quantize '" + d.file("cube.npy") + "'");
  CHECK(r.rc == 1);
  CHECK(has(r.err, "must be a 2-D M x K matrix"));
  const auto w = random_matrix(4, 64, 3);
  io::write_npy(d.file("w.npy"), io::DType::F32, {4, 64}, w.data());
  r = cli(d, "quantize '" + d.file("w.npy") + "' --group 48");
  CHECK(r.rc == 1);
  CHECK(has(r.err, "no tensor"));
  r = cli(d, "quantize '" + d.file("w.npy") + "' /nonexistent-dir/o.safetensors --group 32 --rounds 1");
  CHECK(r.rc == 1);
  CHECK(has(r.err, "cannot create"));
}

TEST_CASE("cli: quantize a .npy matrix: --json numbers and the written file match the library exactly") {
  TempDir d;
  const index_t M = 48, K = 256;
  const auto w = random_matrix(M, K, 11);
  io::write_npy(d.file("w.npy"), io::DType::F32, {M, K}, w.data());
  const std::string out = d.file("q.safetensors");
  const Run r = cli(d, "quantize --input '" + d.file("w.npy") + "' '" + out + "' --bits 2:4 --group 64 --rounds 4 --threads 1 --json");
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  CHECK(has(r.err, "[1/1] weight 48x256"));  // progress on stderr
  CHECK(has(r.err, "ETA"));
  const nlohmann::json j = nlohmann::json::parse(r.out);  // stdout is one JSON object
  CHECK(j["seconds"].get<double>() >= 0.0);
  CHECK(j["bits"] == nlohmann::json({2, 4}));
  CHECK(!exists(io::partial_path(out)));

  quant::QuantizeOptions opt;
  opt.p_min = 2;
  opt.p_max = 4;
  opt.group = 64;
  opt.threads = 1;
  quant::AlternatingRefiner ref;
  ref.rounds = 4;
  const auto q = quant::quantize(w.data(), M, K, opt, ref);

  const io::SafetensorsReader file = io::SafetensorsReader::open(out);
  const auto back = io::load_bcq_tensor(file, "weight");
  CHECK(back.planes() == q.planes());
  double prev = 1e9;
  for (int p = 2; p <= 4; ++p) {
    std::vector<float> a(w.size(), -7.0f), b(w.size(), -7.0f);
    cpu::dequantize(q.view(p), a.data());
    cpu::dequantize(back.view(p), b.data());
    CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
    const double e = j["rel_error"][std::to_string(p)].get<double>();
    CHECK(e == doctest::Approx(cpu::relative_error(a.data(), w.data(), M * K)).epsilon(1e-9));
    CHECK(e < prev);  // more planes, less error
    prev = e;
    CHECK(j["bytes"][std::to_string(p)].get<index_t>() == q.bytes(p));
  }
  CHECK(j["original_bytes"].get<index_t>() == M * K * 4);

  // --layout kpm32 stores the interleaved layout: the same planes, repacked.
  const std::string out_k = d.file("qk.safetensors");
  const Run rk = cli(d, "quantize '" + d.file("w.npy") + "' '" + out_k + "' --group 64 --rounds 4 --threads 1 --layout kpm32");
  REQUIRE_MESSAGE(rk.rc == 0, rk.err);
  io::BcqTensorInfo info;
  const auto il = io::load_bcq_tensor<layout::Interleaved, half_t>(io::SafetensorsReader::open(out_k), "weight", &info);
  CHECK(info.layout == "kpm32");
  CHECK(il.planes() == q.convert<layout::Interleaved>().planes());

  // dequantize: f32 output equals the in-memory dequantization bit for bit; .npy output too.
  Run r2 = cli(d, "dequantize '" + out + "' '" + d.file("d.safetensors") + "' --bits 3 --dtype f32");
  REQUIRE_MESSAGE(r2.rc == 0, r2.err);
  const io::SafetensorsReader dq = io::SafetensorsReader::open(d.file("d.safetensors"));
  CHECK(dq.tensors().size() == 1);
  std::vector<float> ref3(w.size());
  cpu::dequantize(q.view(3), ref3.data());
  CHECK(dq.read<float>(dq.at("weight")) == ref3);
  r2 = cli(d, "dequantize '" + out + "' '" + d.file("d.npy") + "' --bits 2");  // original dtype F32
  REQUIRE_MESSAGE(r2.rc == 0, r2.err);
  std::vector<float> ref2(w.size());
  cpu::dequantize(q.view(2), ref2.data());
  CHECK(io::NpyArray::open(d.file("d.npy")).read_float() == ref2);
  r2 = cli(d, "dequantize '" + out + "' '" + d.file("d5.safetensors") + "' --bits 5");
  CHECK(r2.rc == 1);
  CHECK(has(r2.err, "--bits 5 is outside the precision range 2..4"));
  CHECK(!exists(d.file("d5.safetensors")));
  r2 = cli(d, "dequantize '" + d.file("w.npy") + "' '" + d.file("x.safetensors") + "' --bits 2");
  CHECK(r2.rc == 2);
  CHECK(has(r2.err, "dequantize reads one AnyBCQ .safetensors file"));
  r2 = cli(d, "dequantize '" + d.file("d.safetensors") + "' '" + d.file("x.safetensors") + "' --bits 2");
  CHECK(r2.rc == 1);
  CHECK(has(r2.err, "holds no AnyBCQ weights"));
  r2 = cli(d, "quantize '" + out + "' '" + d.file("x.safetensors") + "' --include '.*'");
  CHECK(r2.rc == 1);
  CHECK(has(r2.err, "already holds AnyBCQ weights"));

  const Run ins = cli(d, "inspect '" + out + "'");
  REQUIRE(ins.rc == 0);
  CHECK(has(ins.out, "AnyBCQ weights (1, format version 1)"));
  CHECK(has(ins.out, "48x256"));
  CHECK(has(ins.out, "2..4"));
}

TEST_CASE("cli: sharded checkpoint: linear weights quantized, everything else copied bit-exact") {
  TempDir d;
  auto bf16 = [](index_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<bfloat16_t> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = to_bfloat16(nd(rng));
    return v;
  };
  const auto emb = bf16(100 * 64, 1), q = bf16(64 * 64, 2), up = bf16(96 * 64, 3), down = bf16(64 * 96, 4),
             norm = bf16(64, 5), head = bf16(100 * 64, 6);
  io::SafetensorsWriter s1, s2;
  s1.add_copy("model.embed_tokens.weight", {100, 64}, emb.data());
  s1.add_copy("model.layers.0.self_attn.q_proj.weight", {64, 64}, q.data());
  s1.add_copy("model.layers.0.input_layernorm.weight", {64}, norm.data());
  s2.add_copy("model.layers.0.mlp.up_proj.weight", {96, 64}, up.data());
  s2.add_copy("model.layers.0.mlp.down_proj.weight", {64, 96}, down.data());
  s2.add_copy("lm_head.weight", {100, 64}, head.data());
  s1.set_metadata("format", "pt");
  s1.write(d.file("model-00001-of-00002.safetensors"));
  s2.write(d.file("model-00002-of-00002.safetensors"));
  {
    std::ofstream idx(d.file("model.safetensors.index.json"));
    idx << R"({"metadata": {}, "weight_map": {
      "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00002.safetensors",
      "model.layers.0.input_layernorm.weight": "model-00001-of-00002.safetensors",
      "model.layers.0.mlp.up_proj.weight": "model-00002-of-00002.safetensors",
      "model.layers.0.mlp.down_proj.weight": "model-00002-of-00002.safetensors",
      "lm_head.weight": "model-00002-of-00002.safetensors"}})";
  }
  const std::string out = d.file("out.safetensors");
  const Run r = cli(d, "quantize '" + d.path + "' '" + out + "' --group 32 --bits 2:3 --rounds 2 --symmetric");
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  CHECK(has(r.out, "total (3 matrices)"));  // q, up, down; not embed, norm, lm_head
  CHECK(has(r.err, "[3/3]"));
  const io::SafetensorsReader f = io::SafetensorsReader::open(out);
  const auto bcq = io::bcq_tensors(f);
  std::vector<std::string> names;
  for (const auto& b : bcq) {
    names.push_back(b.name);
    CHECK(b.original_dtype == io::DType::BF16);
    CHECK(b.shape.symmetric);
    CHECK(b.shape.group == 32);
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.up_proj.weight",
                                          "model.layers.0.self_attn.q_proj.weight"});
  auto same = [&](const char* n, const std::vector<bfloat16_t>& v) {
    const auto got = f.read<bfloat16_t>(f.at(n));
    return got.size() == v.size() && std::memcmp(got.data(), v.data(), v.size() * 2) == 0;
  };
  CHECK(same("model.embed_tokens.weight", emb));
  CHECK(same("model.layers.0.input_layernorm.weight", norm));
  CHECK(same("lm_head.weight", head));
  CHECK(f.metadata().at("format") == "pt");

  // --include/--exclude override the defaults; '' excludes nothing.
  const Run r2 = cli(d, "quantize '" + d.path + "' --group 32 --bits 2 --rounds 1 --include 'head|embed' --exclude ''");
  REQUIRE_MESSAGE(r2.rc == 0, r2.err);
  CHECK(has(r2.out, "lm_head.weight"));
  CHECK(has(r2.out, "model.embed_tokens.weight"));
  CHECK(has(r2.out, "total (2 matrices)"));
  // A group that does not divide some K: those matrices are reported and copied unchanged.
  const Run r3 = cli(d, "quantize '" + d.path + "' --group 64 --bits 2 --rounds 1");
  REQUIRE_MESSAGE(r3.rc == 0, r3.err);
  CHECK(has(r3.out, "copied unchanged"));
  CHECK(has(r3.out, "down_proj.weight 64x96: group 64 does not divide K = 96"));
}

TEST_CASE("cli: an interrupted run leaves neither the output nor its temporary file") {
  TempDir d;
  const std::string out = d.file("big.safetensors");
  // The built-in model takes tens of seconds; interrupt it after one.
  const Run r = cli(d, "quantize --builtin '" + out + "' --threads 1", "timeout -s INT 1 ");
  CHECK(r.rc != 0);
  CHECK(!exists(out));
  CHECK(!exists(io::partial_path(out)));
}
