// Checkpoints: a single file, a directory, and sharded sets with model.safetensors.index.json.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "anybcq/io/checkpoint.hpp"
#include "io/test_helpers.hpp"

using namespace anybcq;
using namespace anybcq_test_io;

namespace {
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, std::vector<std::uint8_t>(text.begin(), text.end()));
}
void write_shard(const std::string& path, const std::vector<std::string>& names, float base) {
  io::SafetensorsWriter w;
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::vector<float> v(6, base + float(i));
    w.add_copy(names[i], {2, 3}, v.data());
  }
  w.write(path);
}
std::string open_error(const std::string& path) {
  return error_of([&] { (void)io::Checkpoint::open(path); });
}
}  // namespace

TEST_CASE("checkpoint: sharded set through the index file or its directory") {
  TempDir dir;
  write_shard(dir.file("model-00001-of-00002.safetensors"), {"a.weight", "b.weight"}, 1.0f);
  write_shard(dir.file("model-00002-of-00002.safetensors"), {"c.weight"}, 10.0f);
  write_text(dir.file("model.safetensors.index.json"),
             R"({"metadata": {"total_size": 72}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                 "b.weight": "model-00001-of-00002.safetensors", "c.weight": "model-00002-of-00002.safetensors"}})");
  for (const std::string& p : {dir.file("model.safetensors.index.json"), dir.path}) {
    const io::Checkpoint c = io::Checkpoint::open(p);
    CHECK(c.shard_count() == 2);
    CHECK(c.names() == std::vector<std::string>{"a.weight", "b.weight", "c.weight"});
    CHECK(c.shard("c.weight").read_float(c.info("c.weight"))[0] == 10.0f);
    CHECK(c.shard("b.weight").read_float(c.info("b.weight"))[5] == 2.0f);
    CHECK(c.find("zzz") == nullptr);
  }
}

TEST_CASE("checkpoint: a single file and a directory holding model.safetensors") {
  TempDir dir;
  write_shard(dir.file("model.safetensors"), {"x", "y"}, 3.0f);
  CHECK(io::Checkpoint::open(dir.file("model.safetensors")).names().size() == 2);
  CHECK(io::Checkpoint::open(dir.path).shard_count() == 1);
  TempDir empty;
  CHECK(has(open_error(empty.path), "holds neither"));
}

TEST_CASE("checkpoint: inconsistent or hostile shard indexes are rejected") {
  TempDir dir;
  write_shard(dir.file("s1.safetensors"), {"a", "b"}, 1.0f);
  write_shard(dir.file("s2.safetensors"), {"b", "c"}, 2.0f);
  const std::string idx = dir.file("m.safetensors.index.json");
  write_text(idx, R"({"weight_map": {"a": "s1.safetensors", "z": "s1.safetensors"}})");
  CHECK(has(open_error(idx), "which has no such tensor"));
  write_text(idx, R"({"weight_map": {"a": "s1.safetensors"}})");
  CHECK(has(open_error(idx), "does not list"));
  write_text(idx, R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}})");
  CHECK(has(open_error(idx), "does not list"));  // s2 also holds "b"
  write_text(idx, R"({"weight_map": {"a": "../s1.safetensors"}})");
  CHECK(has(open_error(idx), "plain file name"));
  write_text(idx, R"({"weight_map": {"a": 3}})");
  CHECK(has(open_error(idx), "file name string"));
  write_text(idx, R"({"weight_map": {}})");
  CHECK(has(open_error(idx), "empty"));
  write_text(idx, R"({"weights": {}})");
  CHECK(has(open_error(idx), "weight_map"));
  write_text(idx, R"({"weight_map": {"a": "s1.safetensors", "a": "s1.safetensors"}})");
  CHECK(has(open_error(idx), "duplicate key"));
  write_text(idx, R"({"weight_map": {"a": "missing.safetensors"}})");
  CHECK(has(open_error(idx), "cannot open"));
}
