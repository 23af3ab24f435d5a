#include "whale/io/safetensors.h"

#include <algorithm>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"

namespace whale {
namespace {

// A header larger than this is corrupt, not a model (real DeepSeek-V3 shards have headers of a few hundred KB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int kMaxHeaderDepth = 8;

SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& j, uint64_t buffer_size) {
  auto ctx = [&](const std::string& what) { return fmt::format("tensor {}: {}", name, what); };
  if (!j.is_object()) throw Error(ctx("entry is not an object"));
  SafetensorsEntry e;

  const auto dt = j.find("dtype");
  if (dt == j.end() || !dt->is_string()) throw Error(ctx("missing \"dtype\" string"));
  const auto parsed = dtype_from_name(dt->get_ref<const std::string&>());
  if (!parsed) throw Error(ctx(fmt::format("unknown dtype \"{}\"", dt->get_ref<const std::string&>())));
  e.dtype = *parsed;

  const auto shape = j.find("shape");
  if (shape == j.end() || !shape->is_array()) throw Error(ctx("missing \"shape\" array"));
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned()) throw Error(ctx("shape entries must be non-negative integers"));
    const uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) throw Error(ctx("shape entry too large"));
    e.shape.push_back(static_cast<int64_t>(v));
    if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v) overflow = true;
    numel *= v;
  }

  const auto offsets = j.find("data_offsets");
  if (offsets == j.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned())
    throw Error(ctx("\"data_offsets\" must be two non-negative integers"));
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  if (e.begin > e.end) throw Error(ctx(fmt::format("data_offsets [{}, {}) are reversed", e.begin, e.end)));
  if (e.end > buffer_size)
    throw Error(ctx(fmt::format("data_offsets [{}, {}) run past the end of the data ({} bytes; truncated file?)",
                                e.begin, e.end, buffer_size)));
  const uint64_t elem = dtype_size(e.dtype);
  if (overflow || numel > std::numeric_limits<uint64_t>::max() / elem || numel * elem != e.end - e.begin)
    throw Error(ctx(fmt::format("shape {} of {} needs {} bytes but data_offsets span {}", shape_string(e.shape),
                                dtype_name(e.dtype), overflow ? 0 : numel * elem, e.end - e.begin)));
  return e;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size) {
  if (size < 8) fail("file is {} bytes, too short for a safetensors header length", size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes) fail("header length {} is implausible (corrupt file?)", n);
  if (n > size - 8) fail("header length {} runs past the end of the {}-byte file (truncated?)", n, size);

  // The header is three levels deep (object, entry, shape); refuse deep nesting before the parser allocates for it.
  int depth = 0;
  bool in_string = false;
  for (uint64_t i = 8; i < 8 + n; ++i) {
    const uint8_t c = bytes[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxHeaderDepth) fail("header nests JSON deeper than {} levels", kMaxHeaderDepth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }

  nlohmann::json root;
  try {
    root = nlohmann::json::parse(bytes + 8, bytes + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    fail("header is not valid JSON: {}", e.what());
  }
  if (!root.is_object()) fail("header is not a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t buffer_size = size - h.data_start;
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail("\"__metadata__\" is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail("\"__metadata__\".{} is not a string", mk);
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.tensors.emplace(key, parse_entry(key, value, buffer_size));
  }

  // Tensors must not overlap: a corrupt header could otherwise alias two weights silently.
  std::vector<std::pair<uint64_t, const std::string*>> starts;
  for (const auto& [name, e] : h.tensors)
    if (e.end > e.begin) starts.emplace_back(e.begin, &name);
  std::sort(starts.begin(), starts.end());
  for (size_t i = 1; i < starts.size(); ++i) {
    const auto& prev = h.tensors.at(*starts[i - 1].second);
    if (prev.end > starts[i].first)
      fail("tensors {} and {} overlap in the data buffer", *starts[i - 1].second, *starts[i].second);
  }
  return h;
}

namespace {

// Where the data buffer of the safetensors file at `path` starts (8 + the header length), read from its first 8 bytes;
// 0 if they cannot be read (the full read then reports what is wrong).
uint64_t data_buffer_offset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint8_t b[8] = {};
  if (!in.read(reinterpret_cast<char*>(b), 8)) return 0;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | b[i];
  return n <= std::numeric_limits<uint64_t>::max() - 8 ? n + 8 : 0;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path, FileLoad load, const FileReadProgress& progress)
    : file_(path, load, progress, load == FileLoad::Read ? data_buffer_offset(path) : 0),
      header_(with_context(path, [&] { return parse_safetensors_header(file_.data(), file_.size()); })) {}

TensorView SafetensorsFile::view(const std::string& name) const {
  const auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) fail("{}: no tensor named {}", path(), name);
  const SafetensorsEntry& e = it->second;
  TensorView v;
  v.name = name;
  v.file = path();
  v.dtype = e.dtype;
  v.shape = e.shape;
  v.data = file_.data() + header_.data_start + e.begin;
  v.nbytes = e.end - e.begin;
  return v;
}

}  // namespace whale
