// AnyBCQ — a model checkpoint: one safetensors file or a sharded set with model.safetensors.index.json.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/io/mapped_file.hpp"
#include "anybcq/io/safetensors.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace io {

namespace detail {
inline bool is_directory(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
inline bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline std::string dirname_of(const std::string& p) {
  const auto slash = p.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : p.substr(0, slash == 0 ? 1 : slash);
}
}  // namespace detail

//! Every tensor of a checkpoint, across shards; each shard stays memory-mapped, tensors are read on demand.
class Checkpoint {
 public:
  //! Opens a .safetensors file, a *.safetensors.index.json shard index, or a directory holding
  //! model.safetensors.index.json or model.safetensors.
  static Checkpoint open(const std::string& path) {
    Checkpoint c;
    if (detail::is_directory(path)) {
      const std::string idx = path + "/model.safetensors.index.json";
      const std::string single = path + "/model.safetensors";
      if (detail::is_file(idx)) return open(idx);
      ANYBCQ_REQUIRE(detail::is_file(single), "directory '", path,
                     "' holds neither model.safetensors.index.json nor model.safetensors");
      return open(single);
    }
    if (detail::ends_with(path, ".index.json")) {
      c.open_index(path);
    } else {
      c.shards_.push_back(std::make_unique<SafetensorsReader>(SafetensorsReader::open(path)));
      for (const TensorInfo& t : c.shards_[0]->tensors()) c.add(t.name, 0);
      c.metadata_ = c.shards_[0]->metadata();
    }
    return c;
  }

  //! Tensor names in shard order, then data order.
  const std::vector<std::string>& names() const { return names_; }
  std::size_t shard_count() const { return shards_.size(); }
  //! The tensor called `name`, or nullptr.
  const TensorInfo* find(const std::string& name) const {
    auto it = where_.find(name);
    return it == where_.end() ? nullptr : shards_[it->second]->find(name);
  }
  const TensorInfo& info(const std::string& name) const {
    const TensorInfo* t = find(name);
    ANYBCQ_REQUIRE(t != nullptr, "checkpoint has no tensor named \"", name, "\"");
    return *t;
  }
  //! The shard that holds `name`.
  const SafetensorsReader& shard(const std::string& name) const {
    auto it = where_.find(name);
    ANYBCQ_REQUIRE(it != where_.end(), "checkpoint has no tensor named \"", name, "\"");
    return *shards_[it->second];
  }
  //! Metadata of a single file, or the union of every shard's metadata (first shard wins on clashes).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  void add(const std::string& name, std::size_t shard) {
    ANYBCQ_REQUIRE(where_.emplace(name, shard).second, "tensor \"", name,
                   "\" appears in more than one shard; names must be unique across a checkpoint");
    names_.push_back(name);
  }
  void open_index(const std::string& path) {
    MappedFile f(path);
    const char* p = reinterpret_cast<const char*>(f.data());
    ANYBCQ_REQUIRE(f.size() > 0, path, ": empty shard index");
    const nlohmann::json j = detail::parse_json_strict(p, p + f.size(), path, 4);
    ANYBCQ_REQUIRE(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), path,
                   ": a shard index must be an object with a \"weight_map\" object");
    const std::string dir = detail::dirname_of(path);
    std::map<std::string, std::vector<std::string>> by_file;  // shard file -> names the index puts there
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      ANYBCQ_REQUIRE(it.value().is_string(), path, ": weight_map[\"", it.key(), "\"] must be a file name string");
      const std::string file = it.value().get<std::string>();
      ANYBCQ_REQUIRE(!file.empty() && file.find('/') == std::string::npos && file.find('\\') == std::string::npos &&
                         file != "." && file != "..",
                     path, ": shard name \"", file, "\" must be a plain file name in the index's directory");
      by_file[file].push_back(it.key());
    }
    ANYBCQ_REQUIRE(!by_file.empty(), path, ": weight_map is empty");
    std::vector<std::string> files;
    std::vector<std::vector<std::string>> expected;
    for (auto& [file, names] : by_file) {
      files.push_back(file);
      expected.push_back(std::move(names));
    }
    shards_.resize(files.size());
    for (std::size_t id = 0; id < files.size(); ++id) {
      shards_[id] = std::make_unique<SafetensorsReader>(SafetensorsReader::open(dir + "/" + files[id]));
      const SafetensorsReader& s = *shards_[id];
      std::unordered_map<std::string, int> listed;
      for (const std::string& n : expected[id]) {
        ANYBCQ_REQUIRE(s.find(n) != nullptr, path, ": weight_map puts \"", n, "\" in ", files[id],
                       ", which has no such tensor");
        listed.emplace(n, 0);
      }
      for (const TensorInfo& t : s.tensors()) {
        ANYBCQ_REQUIRE(listed.count(t.name), files[id], " holds tensor \"", t.name,
                       "\", which the shard index does not list");
        add(t.name, id);
      }
      for (const auto& kv : s.metadata()) metadata_.emplace(kv);
    }
  }

  std::vector<std::unique_ptr<SafetensorsReader>> shards_;
  std::unordered_map<std::string, std::size_t> where_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace io
ANYBCQ_NAMESPACE_END
