// safetensors reader/writer: round trips, and every kind of damaged or hostile header rejected cleanly.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "anybcq/io/safetensors.hpp"
#include "io/test_helpers.hpp"

using namespace anybcq;
using namespace anybcq_test_io;

namespace {
std::string rejected(const std::vector<std::uint8_t>& bytes) {
  return error_of([&] { (void)io::SafetensorsReader::from_memory(bytes.data(), bytes.size()); });
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
std::vector<std::uint8_t> zeros(std::size_t n) { return std::vector<std::uint8_t>(n, 0); }
}  // namespace

TEST_CASE("safetensors: written tensors and metadata read back bit-exact, from memory and from a mapped file") {
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd;
  std::vector<float> f32(5 * 7);
  for (auto& x : f32) x = nd(rng);
  std::vector<half_t> f16(3 * 64);
  for (auto& x : f16) x = to_half(nd(rng));
  std::vector<bfloat16_t> bf16(33);
  for (auto& x : bf16) x = to_bfloat16(nd(rng));
  std::vector<std::uint32_t> u32(9);
  for (auto& x : u32) x = rng();

  io::SafetensorsWriter w;
  w.add_copy("a.f32", {5, 7}, f32.data());
  w.add_copy("b.f16", {3, 64}, f16.data());
  w.add_view("c.bf16", io::DType::BF16, {33}, bf16.data(), bf16.size() * 2);
  w.add_copy("d.u32", {3, 3}, u32.data());
  w.add("e.empty", io::DType::F32, {0, 4}, {});
  w.set_metadata("format", "pt");
  w.set_metadata("note", "hello \"quoted\" text");
  CHECK(w.header().size() % 8 == 0);

  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  w.write(path);
  CHECK(std::fopen(io::partial_path(path).c_str(), "rb") == nullptr);  // temporary renamed away

  const std::vector<std::uint8_t> bytes = w.serialize();
  for (int from_file = 0; from_file < 2; ++from_file) {
    const io::SafetensorsReader r =
        from_file ? io::SafetensorsReader::open(path) : io::SafetensorsReader::from_memory(bytes.data(), bytes.size());
    CHECK(r.tensors().size() == 5);
    CHECK(r.metadata().at("format") == "pt");
    CHECK(r.metadata().at("note") == "hello \"quoted\" text");
    const io::TensorInfo& a = r.at("a.f32");
    CHECK(a.dtype == io::DType::F32);
    CHECK(a.shape == std::vector<index_t>{5, 7});
    CHECK(r.read<float>(a) == f32);
    const auto h = r.read<half_t>(r.at("b.f16"));
    REQUIRE(h.size() == f16.size());
    for (std::size_t i = 0; i < h.size(); ++i) CHECK(h[i].bits == f16[i].bits);
    const auto fl = r.read_float(r.at("c.bf16"));
    for (std::size_t i = 0; i < fl.size(); ++i) CHECK(fl[i] == to_float(bf16[i]));
    CHECK(r.read<std::uint32_t>(r.at("d.u32")) == u32);
    CHECK(r.at("e.empty").numel() == 0);
    CHECK(r.read_float(r.at("e.empty")).empty());
    CHECK(r.read<float>(r.at("e.empty")).empty());
    CHECK(r.find("missing") == nullptr);
    CHECK(has(error_of([&] { (void)r.at("missing"); }), "no tensor named \"missing\""));
    CHECK(has(error_of([&] { (void)r.read<float>(r.at("b.f16")); }), "expected F32"));
    CHECK(has(error_of([&] { (void)r.read_float(r.at("d.u32")); }), "floating-point"));
  }
}

TEST_CASE("safetensors: writer rejects duplicate names, reserved names and byte counts that disagree") {
  io::SafetensorsWriter w;
  w.add("x", io::DType::F16, {2}, zeros(4));
  CHECK(has(error_of([&] { w.add("x", io::DType::F16, {2}, zeros(4)); }), "added twice"));
  CHECK(has(error_of([&] { w.add("__metadata__", io::DType::F16, {2}, zeros(4)); }), "reserved"));
  CHECK(has(error_of([&] { w.add("y", io::DType::F32, {3}, zeros(8)); }), "needs 12 bytes but 8"));
  CHECK(has(error_of([&] { w.write("/nonexistent-dir/x.safetensors"); }), "cannot create"));
}

TEST_CASE("safetensors: hostile or damaged files are rejected with a clear error") {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  // A valid baseline first, so the cases below fail for the reason they name.
  CHECK(rejected(raw_file("{" + ok_entry + "}", zeros(16))) == "<no error>");

  CHECK(has(rejected({1, 2, 3}), "8-byte header length"));
  {  // header length beyond the file
    auto b = raw_file("{" + ok_entry + "}", zeros(16));
    b[0] = 0xFF;
    b[1] = 0xFF;
    CHECK(has(rejected(b), "runs past the end of the file"));
    for (int i = 0; i < 8; ++i) b[i] = 0xFF;  // 2^64-1: must not overflow 8 + n
    CHECK(has(rejected(b), "exceeds the limit"));
  }
  CHECK(has(rejected(raw_file("[1,2]", {})), "does not start with a JSON object"));
  CHECK(has(rejected(raw_file("{\"t\":", {})), "malformed JSON"));
  CHECK(has(rejected(raw_file(std::string("{\"t\"\0:1}", 8), {})), "malformed JSON"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F33","shape":[4],"data_offsets":[0,16]}})", zeros(16))),
            "unknown dtype \"F33\""));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})", zeros(16))),
            "no string \"dtype\""));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", zeros(16))),
            "= 12 bytes but its data_offsets span 16"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}})", zeros(16))),
            "running past the end of the data section"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", zeros(16))),
            "begin > end"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", zeros(16))),
            "non-negative integer"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}})", zeros(16))),
            "non-negative integer"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":["0",16]}})", zeros(16))),
            "non-negative integer"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", zeros(16))),
            "data_offsets"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","data_offsets":[0,16]}})", zeros(16))), "no \"shape\""));
  CHECK(has(rejected(raw_file(R"({"t":[1,2]})", zeros(16))), "not an object"));
  // 2^32 · 2^32 · 4 bytes overflows 64 bits; the product must be caught, not wrapped to a small size.
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", {})),
            "overflows a 64-bit byte count"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[4611686018427387904,4,0],"data_offsets":[0,0]}})", {})),
            "overflows"));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})", {})),
            "too large"));
  CHECK(has(rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                              zeros(16))),
            "overlap"));
  CHECK(has(rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                              zeros(16))),
            "belong to no tensor"));
  CHECK(has(rejected(raw_file("{" + ok_entry + "}", zeros(20))), "4 trailing bytes"));
  CHECK(has(rejected(raw_file("{" + ok_entry + "," + ok_entry + "}", zeros(16))), "duplicate key \"t\""));
  CHECK(has(rejected(raw_file(R"({"t":{"dtype":"F32","dtype":"F32","shape":[4],"data_offsets":[0,16]}})", zeros(16))),
            "duplicate key \"dtype\""));
  CHECK(has(rejected(raw_file(R"({"":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", zeros(16))),
            "empty name"));
  CHECK(has(rejected(raw_file(R"({"__metadata__":{"k":1},)" + ok_entry + "}", zeros(16))),
            "metadata values must be strings"));
  CHECK(has(rejected(raw_file(R"({"__metadata__":[],)" + ok_entry + "}", zeros(16))), "object of strings"));
  std::string deep = R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":)";
  for (int i = 0; i < 10000; ++i) deep += "[";
  CHECK(has(rejected(raw_file(deep, zeros(16))), "nesting deeper"));
  std::string rank = R"({"t":{"dtype":"F32","shape":[)";
  for (int i = 0; i < 40; ++i) rank += "1,";
  rank += R"(4],"data_offsets":[0,16]}})";
  CHECK(has(rejected(raw_file(rank, zeros(16))), "rank 41"));
}

TEST_CASE("safetensors: opening a missing, empty or non-regular file fails cleanly") {
  TempDir dir;
  CHECK(has(error_of([&] { (void)io::SafetensorsReader::open(dir.file("nope.safetensors")); }), "cannot open"));
  write_bytes(dir.file("empty.safetensors"), {});
  CHECK(has(error_of([&] { (void)io::SafetensorsReader::open(dir.file("empty.safetensors")); }), "8-byte header"));
  CHECK(has(error_of([&] { (void)io::SafetensorsReader::open(dir.path); }), "not a regular file"));
}
