#include "whale/io/safetensors_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "whale/core/error.h"
#include "whale/io/checkpoint.h"
#include "whale/io/safetensors.h"

namespace whale {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "whale_writer_test_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<uint8_t> bytes_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + 31 * i);
  return v;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no Error thrown";
  return "";
}

// Writes `specs` with recognisable bytes (several pieces per tensor) and returns name -> bytes.
std::map<std::string, std::vector<uint8_t>> write_file(const std::string& path, const std::vector<TensorSpec>& specs,
                                                       const std::map<std::string, std::string>& metadata = {}) {
  std::map<std::string, std::vector<uint8_t>> contents;
  uint8_t seed = 1;
  for (const TensorSpec& s : specs) contents[s.name] = bytes_of(s.nbytes(), seed++);
  SafetensorsWriter w(path, specs, metadata);
  for (const TensorSpec& s : w.order()) {
    EXPECT_EQ(w.current(), s.nbytes() ? s.name : w.current());
    const auto& b = contents[s.name];
    const size_t half = b.size() / 2;
    w.write(s.name, b.data(), half);
    w.write(s.name, b.data() + half, b.size() - half);
  }
  EXPECT_EQ(w.current(), "");
  w.finish();
  return contents;
}

TEST(SafetensorsWriter, RoundTripsThroughTheParserAlignedAndWithoutHoles) {
  TempDir dir;
  const std::string path = (dir.path() / "model.safetensors").string();
  const std::vector<TensorSpec> specs = {
      {"norm", DType::BF16, {5}},                 // 10 bytes: class 2
      {"w.weight", DType::U8, {2, 3, 4, 32}},     // 768: class 64
      {"w.weight_scale", DType::F16, {2, 3, 4}},  // 48: class 16
      {"bias", DType::F32, {3}},                  // 12: class 4
      {"emb.weight", DType::U8, {1, 1, 4, 16}},   // 64: class 64
      {"empty", DType::F32, {0, 7}},              // 0 bytes
      {"scalar", DType::F64, {}},                 // 8
  };
  const auto contents = write_file(path, specs, {{"format", "pt"}});

  const SafetensorsFile f(path);
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  EXPECT_EQ(f.header().data_start % 64, 0u);
  ASSERT_EQ(f.header().tensors.size(), specs.size());
  uint64_t sum = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const TensorSpec& s : specs) {
    const TensorView v = f.view(s.name);
    EXPECT_EQ(v.dtype, s.dtype) << s.name;
    EXPECT_EQ(v.shape, s.shape) << s.name;
    ASSERT_EQ(v.nbytes, s.nbytes()) << s.name;
    if (v.nbytes > 0) {
      EXPECT_EQ(std::memcmp(v.data, contents.at(s.name).data(), v.nbytes), 0) << s.name;
    }
    const SafetensorsEntry& e = f.header().tensors.at(s.name);
    const uint64_t file_offset = f.header().data_start + e.begin;
    if (s.dtype == DType::U8) {
      EXPECT_EQ(file_offset % 64, 0u) << s.name;
    }
    EXPECT_EQ(file_offset % dtype_size(s.dtype), 0u) << s.name;
    if (s.name == "w.weight_scale") {
      EXPECT_EQ(file_offset % 16, 0u);
    }
    sum += v.nbytes;
    ranges.emplace_back(e.begin, e.end);
  }
  // The format forbids holes: the tensors tile the data buffer exactly.
  EXPECT_EQ(f.file_size(), f.header().data_start + sum);
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (const auto& [b, e] : ranges) {
    EXPECT_EQ(b, at);
    at = e;
  }
  // The header is JSON padded with spaces.
  std::ifstream in(path, std::ios::binary);
  std::string head(f.header().data_start, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  EXPECT_EQ(head[8], '{');
  const size_t close = head.find_last_of('}');
  EXPECT_EQ(head.find_first_not_of(' ', close + 1), std::string::npos);
}

TEST(SafetensorsWriter, RejectsMisuse) {
  TempDir dir;
  const std::string path = (dir.path() / "x.safetensors").string();
  const std::vector<TensorSpec> specs = {{"a", DType::F32, {4}}, {"b", DType::F32, {2}}};
  const std::vector<uint8_t> data(64);
  {
    SafetensorsWriter w(path, specs);
    EXPECT_THAT(error_of([&] { w.write("b", data.data(), 8); }), AllOf(HasSubstr(path), HasSubstr("out of order")));
    EXPECT_THAT(error_of([&] { w.write("a", data.data(), 20); }), HasSubstr("20 bytes"));
    w.write("a", data.data(), 16);
    EXPECT_THAT(error_of([&] { w.finish(); }), AllOf(HasSubstr("tensor b"), HasSubstr("incomplete")));
  }
  // Destroyed without finish(): the incomplete file is removed.
  EXPECT_FALSE(fs::exists(path));
  EXPECT_THAT(error_of([&] { SafetensorsWriter(path, {{"a", DType::F32, {1}}, {"a", DType::F32, {1}}}); }),
              HasSubstr("twice"));
  EXPECT_THAT(error_of([&] { SafetensorsWriter(path, {{"q", DType::Q8, {1}}}); }), HasSubstr("cannot store"));
}

TEST(SafetensorsWriter, ErrorsNameTheFile) {
  TempDir dir;
  const std::string missing = (dir.path() / "no" / "such" / "dir" / "model.safetensors").string();
  EXPECT_THAT(error_of([&] { SafetensorsWriter(missing, {{"a", DType::F32, {1}}}); }),
              AllOf(HasSubstr(missing), HasSubstr("cannot create")));
  EXPECT_THAT(error_of([&] { write_safetensors_index(missing, 0, {}); }), HasSubstr(missing));
  // A full disk: /dev/full fails every write with ENOSPC (and must not be removed by the cleanup).
  if (fs::exists("/dev/full")) {
    const std::vector<uint8_t> big(8 << 20);
    EXPECT_THAT(error_of([&] {
                  SafetensorsWriter w("/dev/full", {{"big", DType::U8, {static_cast<int64_t>(big.size())}}});
                  w.write("big", big.data(), big.size());
                  w.finish();
                }),
                AllOf(HasSubstr("/dev/full"), HasSubstr("write failed"), HasSubstr("No space left")));
    EXPECT_TRUE(fs::exists("/dev/full"));
  }
}

TEST(SafetensorsWriter, ShardsAndIndexLoadAsACheckpoint) {
  TempDir dir;
  const std::vector<TensorSpec> one = {{"model.embed_tokens.weight", DType::BF16, {6, 4}},
                                       {"model.norm.weight", DType::F32, {4}}};
  const std::vector<TensorSpec> two = {{"lm_head.weight", DType::U8, {2, 1, 4, 32}},
                                       {"lm_head.weight_scale", DType::F16, {2, 1, 4}}};
  auto c1 = write_file((dir.path() / "model-00001-of-00002.safetensors").string(), one);
  auto c2 = write_file((dir.path() / "model-00002-of-00002.safetensors").string(), two);
  std::map<std::string, std::string> map;
  uint64_t total = 0;
  for (const auto& s : one) map[s.name] = "model-00001-of-00002.safetensors", total += s.nbytes();
  for (const auto& s : two) map[s.name] = "model-00002-of-00002.safetensors", total += s.nbytes();
  write_safetensors_index((dir.path() / "model.safetensors.index.json").string(), total, map);

  const Checkpoint ckpt(dir.path());
  EXPECT_EQ(ckpt.names().size(), 4u);
  c1.merge(c2);
  for (const auto& [name, bytes] : c1) {
    const TensorView v = ckpt.get(name);
    ASSERT_EQ(v.nbytes, bytes.size()) << name;
    EXPECT_EQ(std::memcmp(v.data, bytes.data(), bytes.size()), 0) << name;
  }
  std::ifstream in(dir.path() / "model.safetensors.index.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("\"total_size\": " + std::to_string(total)));
}

}  // namespace
}  // namespace whale
