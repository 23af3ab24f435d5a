#include "whale/io/safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "whale/core/error.h"
#include "whale/io/checkpoint.h"

namespace whale {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

// The 8-byte little-endian length, written byte by byte so the test does not depend on the host's byte order.
std::string le_u64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out;
}

// A safetensors file (huggingface/safetensors README, "Format"): length, JSON header, data buffer.
std::string make_file(const std::string& header, const std::string& data) {
  return le_u64(header.size()) + header + data;
}

// Data bytes 0, 1, 2, ... so a view's contents show where it points.
std::string counting_bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i & 0xFF);
  return s;
}

SafetensorsHeader parse(const std::string& file) {
  return parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()), file.size());
}

// The message of the Error that parsing `file` throws; fails the test if it does not throw one.
std::string parse_error(const std::string& file) {
  try {
    parse(file);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no Error thrown";
  return "";
}

constexpr const char* kTwoTensors =
    R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
    R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})";

TEST(SafetensorsHeader, ParsesValidHeader) {
  const std::string header = kTwoTensors;
  const SafetensorsHeader h = parse(make_file(header, counting_bytes(32)));
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_TRUE(h.metadata.empty());
  EXPECT_EQ(h.data_start, 8 + header.size());
  const SafetensorsEntry& a = h.tensors.at("a");
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.begin, 0u);
  EXPECT_EQ(a.end, 24u);
  const SafetensorsEntry& b = h.tensors.at("b");
  EXPECT_EQ(b.dtype, DType::BF16);
  EXPECT_EQ(b.shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(b.begin, 24u);
  EXPECT_EQ(b.end, 32u);
}

TEST(SafetensorsHeader, ExtraBytesAfterTheLastTensorAreAllowed) {
  const SafetensorsHeader h = parse(make_file(kTwoTensors, counting_bytes(40)));
  EXPECT_EQ(h.tensors.size(), 2u);
}

TEST(SafetensorsHeader, EmptyHeaderObject) {
  const SafetensorsHeader h = parse(make_file("{}", ""));
  EXPECT_TRUE(h.tensors.empty());
  EXPECT_EQ(h.data_start, 10u);
}

TEST(SafetensorsHeader, Metadata) {
  const SafetensorsHeader h = parse(make_file(
      R"({"__metadata__":{"format":"pt","note":"x"},"w":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[0,3]}})",
      counting_bytes(3)));
  EXPECT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors.count("__metadata__"), 0u);
  ASSERT_EQ(h.metadata.size(), 2u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.metadata.at("note"), "x");
  EXPECT_EQ(h.tensors.at("w").dtype, DType::F8_E4M3);
}

TEST(SafetensorsHeader, ZeroSizeAndScalarTensors) {
  // A tensor with a zero dimension has no bytes and an empty range; a shape [] scalar has one element.
  const SafetensorsHeader h = parse(make_file(
      R"({"empty":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]},)"
      R"("scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"("empty_at_end":{"dtype":"BF16","shape":[7,0],"data_offsets":[4,4]}})",
      counting_bytes(4)));
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors.at("empty").shape, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(h.tensors.at("empty").begin, h.tensors.at("empty").end);
  EXPECT_TRUE(h.tensors.at("scalar").shape.empty());
  EXPECT_EQ(h.tensors.at("scalar").end, 4u);
}

TEST(SafetensorsHeader, SpacePaddedHeader) {
  // Writers pad the header with spaces so the data buffer starts 8-byte aligned (safetensors README).
  std::string header = kTwoTensors;
  header.append(8 - (header.size() % 8) + 8, ' ');
  const SafetensorsHeader h = parse(make_file(header, counting_bytes(32)));
  EXPECT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.data_start, 8 + header.size());
  EXPECT_EQ(h.data_start % 8, 0u);
}

TEST(SafetensorsHeader, EveryDtypeSize) {
  // Bytes per element from the safetensors Dtype definition, written out here rather than taken from dtype_size.
  const std::vector<std::pair<std::string, int>> dtypes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"I16", 2},  {"U16", 2}, {"I32", 4},     {"U32", 4},     {"I64", 8},
      {"U64", 8},  {"F16", 2}, {"BF16", 2}, {"F32", 4}, {"F64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  for (const auto& [name, size] : dtypes) {
    const std::string header =
        R"({"t":{"dtype":")" + name + R"(","shape":[3],"data_offsets":[0,)" + std::to_string(3 * size) + "]}}";
    const SafetensorsHeader h = parse(make_file(header, counting_bytes(3 * size)));
    EXPECT_EQ(dtype_name(h.tensors.at("t").dtype), name);
    // One byte too few must be rejected.
    const std::string short_header =
        R"({"t":{"dtype":")" + name + R"(","shape":[3],"data_offsets":[0,)" + std::to_string(3 * size - 1) + "]}}";
    EXPECT_THAT(parse_error(make_file(short_header, counting_bytes(3 * size))), HasSubstr("tensor t")) << name;
  }
}

// ---- Rejections ------------------------------------------------------------------------------------------------

TEST(SafetensorsHeader, RejectsFileShorterThanEightBytes) {
  for (size_t n = 0; n < 8; ++n)
    EXPECT_THAT(parse_error(std::string(n, '\0')), HasSubstr("too short")) << n << " bytes";
  // parse_safetensors_header must not read the pointer when size is 0.
  EXPECT_THROW(parse_safetensors_header(nullptr, 0), Error);
}

TEST(SafetensorsHeader, RejectsHeaderLengthPastEndOfFile) {
  const std::string header = kTwoTensors;
  std::string file = make_file(header, "");
  file.resize(8 + header.size() - 1);  // the header is cut short by one byte
  EXPECT_THAT(parse_error(file), AllOf(HasSubstr("header length"), HasSubstr("past the end")));
  EXPECT_THAT(parse_error(le_u64(1)), HasSubstr("past the end"));
}

TEST(SafetensorsHeader, RejectsAbsurdHeaderLength) {
  for (uint64_t n : {uint64_t{1} << 40, uint64_t{1} << 63, std::numeric_limits<uint64_t>::max(),
                     std::numeric_limits<uint64_t>::max() - 7}) {
    const std::string file = le_u64(n) + "{}";
    const std::string msg = parse_error(file);
    EXPECT_THAT(msg, HasSubstr("header length")) << n;
    EXPECT_THAT(msg, HasSubstr(std::to_string(n))) << n;
  }
}

TEST(SafetensorsHeader, RejectsInvalidJson) {
  for (const char* header : {"", "{", R"({"a": )", R"({"a":{"dtype":"F32",}})", "{} trailing", "\xff\xfe{}"})
    EXPECT_THAT(parse_error(make_file(header, "")), HasSubstr("not valid JSON")) << header;
}

TEST(SafetensorsHeader, RejectsNonObjectJson) {
  for (const char* header : {"[]", "[1,2]", "7", "null", R"("text")", "true"})
    EXPECT_THAT(parse_error(make_file(header, "")), HasSubstr("not a JSON object")) << header;
}

TEST(SafetensorsHeader, RejectsMalformedEntries) {
  struct Case {
    const char* header;
    const char* message;
  };
  const Case cases[] = {
      {R"({"w":[1,2]})", "entry is not an object"},
      {R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "dtype"},
      {R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "dtype"},
      {R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "shape"},
      {R"({"w":{"dtype":"F32","shape":3,"data_offsets":[0,4]}})", "shape"},
      {R"({"w":{"dtype":"F32","shape":[1]}})", "data_offsets"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "data_offsets"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", "data_offsets"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "data_offsets"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})", "data_offsets"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}})", "data_offsets"},
  };
  for (const Case& c : cases)
    EXPECT_THAT(parse_error(make_file(c.header, counting_bytes(8))), AllOf(HasSubstr("tensor w"), HasSubstr(c.message)))
        << c.header;
}

TEST(SafetensorsHeader, RejectsUnknownDtype) {
  const std::string msg =
      parse_error(make_file(R"({"layer.w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", counting_bytes(1)));
  EXPECT_THAT(msg, AllOf(HasSubstr("layer.w"), HasSubstr("unknown dtype"), HasSubstr("F4")));
  // Dtype names are case-sensitive.
  EXPECT_THAT(parse_error(make_file(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", counting_bytes(4))),
              HasSubstr("unknown dtype"));
}

TEST(SafetensorsHeader, RejectsBadShapeEntries) {
  for (const char* dim : {"-1", "2.5", "2.0", R"("3")", "null", "[1]", "true"}) {
    const std::string header =
        std::string(R"({"bad.t":{"dtype":"U8","shape":[1,)") + dim + R"(],"data_offsets":[0,1]}})";
    EXPECT_THAT(parse_error(make_file(header, counting_bytes(1))),
                AllOf(HasSubstr("bad.t"), HasSubstr("non-negative integers")))
        << dim;
  }
  // Larger than int64 can hold (TensorView stores int64 dims).
  EXPECT_THAT(parse_error(make_file(R"({"t":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,1]}})",
                                    counting_bytes(1))),
              AllOf(HasSubstr("tensor t"), HasSubstr("too large")));
}

TEST(SafetensorsHeader, RejectsReversedOffsets) {
  const std::string msg =
      parse_error(make_file(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}})", counting_bytes(8)));
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor w"), HasSubstr("reversed")));
}

TEST(SafetensorsHeader, RejectsOffsetsPastEndOfData) {
  // A truncated file: the header promises 32 bytes, only 31 are there.
  const std::string msg = parse_error(make_file(kTwoTensors, counting_bytes(31)));
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor b"), HasSubstr("past the end"), HasSubstr("31 bytes")));
  // Offsets near 2^64 must not wrap around.
  EXPECT_THAT(parse_error(make_file(
                  R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[18446744073709551612,18446744073709551615]}})",
                  counting_bytes(8))),
              AllOf(HasSubstr("tensor w"), HasSubstr("past the end")));
}

TEST(SafetensorsHeader, RejectsSizeNotMatchingShape) {
  // F32 [2, 3] needs 2·3·4 = 24 bytes.
  const std::string too_few =
      parse_error(make_file(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", counting_bytes(24)));
  EXPECT_THAT(too_few, AllOf(HasSubstr("tensor w"), HasSubstr("[2, 3]"), HasSubstr("24"), HasSubstr("20")));
  const std::string too_many =
      parse_error(make_file(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,28]}})", counting_bytes(28)));
  EXPECT_THAT(too_many, AllOf(HasSubstr("tensor w"), HasSubstr("24"), HasSubstr("28")));
  // Zero elements but a non-empty range.
  EXPECT_THAT(parse_error(make_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[0,4]}})", counting_bytes(4))),
              HasSubstr("tensor w"));
}

TEST(SafetensorsHeader, RejectsOverlappingTensors) {
  const std::string msg = parse_error(make_file(R"({"first":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},)"
                                                R"("second":{"dtype":"U8","shape":[16],"data_offsets":[8,24]}})",
                                                counting_bytes(24)));
  EXPECT_THAT(msg, AllOf(HasSubstr("overlap"), HasSubstr("first"), HasSubstr("second")));
  // One range inside another, with a disjoint tensor sorting between them by name.
  EXPECT_THAT(parse_error(make_file(R"({"a":{"dtype":"U8","shape":[32],"data_offsets":[0,32]},)"
                                    R"("b":{"dtype":"U8","shape":[4],"data_offsets":[32,36]},)"
                                    R"("c":{"dtype":"U8","shape":[4],"data_offsets":[20,24]}})",
                                    counting_bytes(36))),
              AllOf(HasSubstr("overlap"), HasSubstr("a"), HasSubstr("c")));
  // A single shared byte.
  EXPECT_THAT(parse_error(make_file(R"({"p":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                    R"("q":{"dtype":"U8","shape":[4],"data_offsets":[3,7]}})",
                                    counting_bytes(7))),
              AllOf(HasSubstr("overlap"), HasSubstr("p"), HasSubstr("q")));
  // Identical ranges.
  EXPECT_THAT(parse_error(make_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                    R"("y":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                                    counting_bytes(4))),
              HasSubstr("overlap"));
}

TEST(SafetensorsHeader, RejectsShapeOverflow) {
  // The element count must not wrap around to a small number that happens to match the offsets. Like the
  // safetensors library (a checked product of the dims, left to right), an intermediate overflow is an error even
  // when a later dim is 0; accepting it would also overflow TensorView::numel().
  for (const char* shape :
       {"[4294967296,4294967296]", "[4294967296,4294967296,0]", "[9223372036854775807,2]",
        "[4611686018427387904,4]", "[2305843009213693952,2,2,2]", "[18446744073709551615]"}) {
    const std::string header =
        std::string(R"({"huge":{"dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,0]}})";
    EXPECT_THAT(parse_error(make_file(header, "")), HasSubstr("tensor huge")) << shape;
  }
  // numel = 2^62 fits in u64 but numel · 4 bytes = 2^64 wraps to 0, which would match [0, 0).
  EXPECT_THAT(parse_error(make_file(R"({"huge":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})",
                                    "")),
              HasSubstr("tensor huge"));
  // A zero dim first keeps the product at 0: valid, 0 bytes.
  EXPECT_NO_THROW(
      parse(make_file(R"({"z":{"dtype":"F32","shape":[0,9223372036854775807,4],"data_offsets":[0,0]}})", "")));
}

TEST(SafetensorsHeader, RejectsBadMetadata) {
  EXPECT_THAT(parse_error(make_file(R"({"__metadata__":[1]})", "")), HasSubstr("__metadata__"));
  EXPECT_THAT(parse_error(make_file(R"({"__metadata__":{"format":3}})", "")),
              AllOf(HasSubstr("__metadata__"), HasSubstr("format")));
}

// ---- Files and checkpoint directories ---------------------------------------------------------------------------

// A fresh directory under the system temp dir, removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "whale_io_test_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// A safetensors file with U8 vectors of the given names and lengths, holding bytes `first`, `first + 1`, ...
std::string u8_tensors(const std::vector<std::pair<std::string, int>>& tensors, int first = 0) {
  std::string header = "{", data;
  for (const auto& [name, n] : tensors) {
    if (header.size() > 1) header += ",";
    header += "\"" + name + R"(":{"dtype":"U8","shape":[)" + std::to_string(n) + R"(],"data_offsets":[)" +
              std::to_string(data.size()) + "," + std::to_string(data.size() + n) + "]}";
    for (int i = 0; i < n; ++i) data += static_cast<char>(first + static_cast<int>(data.size()));
  }
  return make_file(header + "}", data);
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

TEST(SafetensorsFile, MapsAndViews) {
  TempDir dir;
  const fs::path path = dir.path() / "t.safetensors";
  const std::string file = make_file(kTwoTensors, counting_bytes(32));
  write_file(path, file);

  const SafetensorsFile st(path.string());
  EXPECT_EQ(st.path(), path.string());
  EXPECT_EQ(st.file_size(), file.size());
  EXPECT_TRUE(st.has("a"));
  EXPECT_FALSE(st.has("c"));

  const TensorView b = st.view("b");
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.file, path.string());
  EXPECT_EQ(b.dtype, DType::BF16);
  EXPECT_EQ(b.shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(b.numel(), 4);
  ASSERT_EQ(b.nbytes, 8u);
  // b's bytes are data bytes 24..31, i.e. the values 24..31.
  for (int i = 0; i < 8; ++i) EXPECT_EQ(b.data[i], 24 + i);
  const TensorView a = st.view("a");
  EXPECT_EQ(a.nbytes, 24u);
  EXPECT_EQ(a.data[0], 0);
  EXPECT_EQ(a.data[23], 23);

  EXPECT_THAT(error_of([&] { st.view("c"); }), AllOf(HasSubstr(path.string()), HasSubstr("c")));
}

TEST(SafetensorsFile, ErrorsNameThePath) {
  TempDir dir;
  const fs::path truncated = dir.path() / "truncated.safetensors";
  write_file(truncated, make_file(kTwoTensors, counting_bytes(20)));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(truncated.string()); }),
              AllOf(HasSubstr(truncated.string()), HasSubstr("past the end")));

  const fs::path empty = dir.path() / "empty.safetensors";
  write_file(empty, "");
  EXPECT_THAT(error_of([&] { SafetensorsFile f(empty.string()); }),
              AllOf(HasSubstr(empty.string()), HasSubstr("too short")));

  const fs::path missing = dir.path() / "missing.safetensors";
  EXPECT_THAT(error_of([&] { SafetensorsFile f(missing.string()); }), HasSubstr(missing.string()));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(dir.path().string()); }), HasSubstr(dir.path().string()));
}

TEST(Checkpoint, SingleFile) {
  TempDir dir;
  const std::string file = u8_tensors({{"x", 3}, {"y", 5}});
  write_file(dir.path() / "model.safetensors", file);
  const Checkpoint ckpt(dir.path());
  EXPECT_EQ(ckpt.dir(), dir.path());
  EXPECT_TRUE(ckpt.has("x"));
  EXPECT_TRUE(ckpt.has("y"));
  EXPECT_FALSE(ckpt.has("z"));
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(ckpt.total_file_bytes(), file.size());
  const TensorView y = ckpt.get("y");
  ASSERT_EQ(y.nbytes, 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(y.data[i], 3 + i);

  const std::string msg = error_of([&] { ckpt.get("model.layers.0.mlp.gate.weight"); });
  EXPECT_THAT(msg, AllOf(HasSubstr("model.layers.0.mlp.gate.weight"), HasSubstr("model.safetensors")));
}

void write_index(const fs::path& dir, const std::string& weight_map) {
  write_file(dir / "model.safetensors.index.json",
             R"({"metadata":{"total_size":0},"weight_map":{)" + weight_map + "}}");
}

TEST(Checkpoint, ShardedWithIndex) {
  TempDir dir;
  const std::string shard1 = u8_tensors({{"a", 2}, {"b", 3}}, 10);
  const std::string shard2 = u8_tensors({{"c", 4}}, 100);
  write_file(dir.path() / "model-00001-of-00002.safetensors", shard1);
  write_file(dir.path() / "model-00002-of-00002.safetensors", shard2);
  write_index(dir.path(), R"("a":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors",)"
                          R"("b":"model-00001-of-00002.safetensors")");
  const Checkpoint ckpt(dir.path());
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ckpt.total_file_bytes(), shard1.size() + shard2.size());
  const TensorView c = ckpt.get("c");
  EXPECT_EQ(c.file, (dir.path() / "model-00002-of-00002.safetensors").string());
  ASSERT_EQ(c.nbytes, 4u);
  EXPECT_EQ(c.data[0], 100);
  EXPECT_EQ(c.data[3], 103);
  const TensorView b = ckpt.get("b");
  EXPECT_EQ(b.file, (dir.path() / "model-00001-of-00002.safetensors").string());
  EXPECT_EQ(b.data[0], 12);

  const std::string msg = error_of([&] { ckpt.get("d"); });
  EXPECT_THAT(msg, AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("d")));
}

TEST(Checkpoint, IndexTakesPrecedenceOverSingleFile) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors", u8_tensors({{"single", 1}}));
  write_file(dir.path() / "s.safetensors", u8_tensors({{"sharded", 1}}));
  write_index(dir.path(), R"("sharded":"s.safetensors")");
  const Checkpoint ckpt(dir.path());
  EXPECT_TRUE(ckpt.has("sharded"));
  EXPECT_FALSE(ckpt.has("single"));
}

TEST(Checkpoint, IndexNamesMissingShard) {
  TempDir dir;
  write_file(dir.path() / "model-00001-of-00002.safetensors", u8_tensors({{"a", 2}}));
  write_index(dir.path(),
              R"("a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors")");
  const std::string msg = error_of([&] { Checkpoint ckpt(dir.path()); });
  EXPECT_THAT(msg, AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("model-00002-of-00002.safetensors"),
                         HasSubstr("does not exist")));
}

TEST(Checkpoint, IndexEntryWhoseShardLacksTheTensor) {
  TempDir dir;
  write_file(dir.path() / "s1.safetensors", u8_tensors({{"a", 2}}));
  write_file(dir.path() / "s2.safetensors", u8_tensors({{"b", 2}}));
  write_index(dir.path(), R"("a":"s1.safetensors","b":"s1.safetensors")");
  const std::string msg = error_of([&] { Checkpoint ckpt(dir.path()); });
  EXPECT_THAT(msg, AllOf(HasSubstr("s1.safetensors"), HasSubstr("tensor b"), HasSubstr("does not contain")));
}

TEST(Checkpoint, TensorInShardButNotInIndex) {
  TempDir dir;
  write_file(dir.path() / "s1.safetensors", u8_tensors({{"listed", 2}, {"unlisted", 2}}));
  write_index(dir.path(), R"("listed":"s1.safetensors")");
  const Checkpoint ckpt(dir.path());
  EXPECT_FALSE(ckpt.has("unlisted"));
  const std::string msg = error_of([&] { ckpt.get("unlisted"); });
  EXPECT_THAT(msg, AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("unlisted"),
                         HasSubstr("s1.safetensors")));
}

TEST(Checkpoint, BadIndex) {
  TempDir dir;
  write_file(dir.path() / "s1.safetensors", u8_tensors({{"a", 2}}));
  write_file(dir.path() / "model.safetensors.index.json", R"({"weight_map":)");
  EXPECT_THAT(error_of([&] { Checkpoint ckpt(dir.path()); }),
              AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("JSON")));
  write_file(dir.path() / "model.safetensors.index.json", R"({"metadata":{}})");
  EXPECT_THAT(error_of([&] { Checkpoint ckpt(dir.path()); }), HasSubstr("weight_map"));
  write_index(dir.path(), R"("a":7)");
  EXPECT_THAT(error_of([&] { Checkpoint ckpt(dir.path()); }), HasSubstr("weight_map.a"));
  // A shard name must stay inside the model directory.
  write_index(dir.path(), R"("a":"../s1.safetensors")");
  EXPECT_THAT(error_of([&] { Checkpoint ckpt(dir.path()); }), HasSubstr("../s1.safetensors"));
  // A corrupt shard: the error names the shard file.
  write_file(dir.path() / "s2.safetensors", "garbage!garbage");
  write_index(dir.path(), R"("a":"s2.safetensors")");
  EXPECT_THAT(error_of([&] { Checkpoint ckpt(dir.path()); }), HasSubstr("s2.safetensors"));
}

TEST(Checkpoint, ShardsWithoutIndex) {
  TempDir dir;
  write_file(dir.path() / "model-00001-of-00002.safetensors", u8_tensors({{"a", 2}}));
  write_file(dir.path() / "model-00002-of-00002.safetensors", u8_tensors({{"b", 2}}));
  const std::string msg = error_of([&] { Checkpoint ckpt(dir.path()); });
  EXPECT_THAT(msg, AllOf(HasSubstr(dir.path().string()), HasSubstr("2 .safetensors shards"),
                         HasSubstr("model.safetensors.index.json")));
}

TEST(Checkpoint, EmptyDirectory) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { Checkpoint ckpt(dir.path()); }),
              AllOf(HasSubstr(dir.path().string()), HasSubstr("no model.safetensors")));
}

TEST(Checkpoint, NonexistentDirectory) {
  TempDir dir;
  const fs::path missing = dir.path() / "no_such_model";
  EXPECT_THAT(error_of([&] { Checkpoint ckpt(missing); }), AllOf(HasSubstr(missing.string()), HasSubstr("not found")));
  // A regular file is not a model directory either.
  write_file(dir.path() / "file", "x");
  EXPECT_THAT(error_of([&] { Checkpoint ckpt(dir.path() / "file"); }), HasSubstr("not found"));
}

}  // namespace
}  // namespace whale
