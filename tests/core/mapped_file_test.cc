#include "whale/core/mapped_file.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "whale/core/error.h"
#include "whale/core/process_stats.h"

namespace whale {
namespace {

// A temporary file holding `bytes`, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& bytes)
      : path_((std::filesystem::temp_directory_path() /
               ("whale_mapped_file_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++)))
                  .string()) {
    std::ofstream out(path_, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

std::vector<uint8_t> random_bytes(size_t n) {
  std::mt19937 rng(7);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(MappedFile, ReadAndMapHoldTheSameBytes) {
  // Not a multiple of the 8 MiB read chunk or of a page, so the last pread is a short one.
  const std::vector<uint8_t> bytes = random_bytes((size_t{9} << 20) + 12345);
  const TempFile f(bytes);
  const MappedFile mapped(f.path(), FileLoad::Map), read(f.path(), FileLoad::Read);
  EXPECT_EQ(mapped.load(), FileLoad::Map);
  EXPECT_EQ(read.load(), FileLoad::Read);
  ASSERT_EQ(mapped.size(), bytes.size());
  ASSERT_EQ(read.size(), bytes.size());
  EXPECT_EQ(0, std::memcmp(mapped.data(), bytes.data(), bytes.size()));
  EXPECT_EQ(0, std::memcmp(read.data(), bytes.data(), bytes.size()));
  // Read memory starts on a 2 MiB boundary, so that whole huge pages can back it.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(read.data()) % (uintptr_t{2} << 20), 0u);
}

// huge_page_bytes counts only mappings that overlap the ranges it is given, each once: nothing for no ranges, at most
// the read region (and its slack) for one file's memory, the same for that range given twice.
TEST(MappedFile, HugePageBytesCountsTheGivenMemoryOnce) {
  const std::vector<uint8_t> bytes = random_bytes((size_t{9} << 20) + 12345);
  const TempFile f(bytes);
  const MappedFile read(f.path(), FileLoad::Read);
  const auto memory = read.memory();
  ASSERT_LT(memory.first, memory.second);
  EXPECT_LE(memory.first, reinterpret_cast<uintptr_t>(read.data()));
  EXPECT_GE(memory.second, reinterpret_cast<uintptr_t>(read.data()) + read.size());
  EXPECT_EQ(huge_page_bytes({}), 0u);
  const size_t once = huge_page_bytes({memory});
  EXPECT_LE(once, memory.second - memory.first);
  EXPECT_EQ(huge_page_bytes({memory, memory}), once);
}

// Read can place any byte of the file on a 64-byte boundary (a safetensors data buffer), keeping every byte.
TEST(MappedFile, ReadPlacesTheAskedOffsetOnALine) {
  const std::vector<uint8_t> bytes = random_bytes((size_t{3} << 20) + 77);
  const TempFile f(bytes);
  for (uint64_t at : {uint64_t{0}, uint64_t{16}, uint64_t{8 + 1000}, uint64_t{63}, uint64_t{64 + 5}}) {
    const MappedFile read(f.path(), FileLoad::Read, nullptr, at);
    ASSERT_EQ(read.size(), bytes.size());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(read.data() + at) % 64, 0u) << "offset " << at;
    EXPECT_EQ(0, std::memcmp(read.data(), bytes.data(), bytes.size())) << "offset " << at;
  }
}

TEST(MappedFile, ReadReportsProgressUpToTheSize) {
  const std::vector<uint8_t> bytes = random_bytes((size_t{17} << 20) + 1);
  const TempFile f(bytes);
  std::vector<uint64_t> seen;
  const MappedFile read(f.path(), FileLoad::Read, [&](uint64_t done) { seen.push_back(done); });
  ASSERT_EQ(seen.size(), 3u);  // one report per 8 MiB piece, whichever reader finished it
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);
  EXPECT_EQ(seen.back(), bytes.size());
  // The pieces (read by one thread per CPU) land where they belong.
  ASSERT_EQ(read.size(), bytes.size());
  EXPECT_EQ(0, std::memcmp(read.data(), bytes.data(), bytes.size()));
}

TEST(MappedFile, EmptyFileInBothModes) {
  const TempFile f({});
  for (FileLoad load : {FileLoad::Map, FileLoad::Read}) {
    const MappedFile m(f.path(), load);
    EXPECT_EQ(m.size(), 0u);
  }
}

TEST(MappedFile, MissingFileNamesThePath) {
  for (FileLoad load : {FileLoad::Map, FileLoad::Read}) {
    try {
      const MappedFile m("/nonexistent/whale/shard.safetensors", load);
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("/nonexistent/whale/shard.safetensors: cannot open"), std::string::npos)
          << e.what();
    }
  }
}

TEST(MappedFile, DirectoryIsNotARegularFile) {
  try {
    const MappedFile m(std::filesystem::temp_directory_path().string(), FileLoad::Read);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
}

TEST(FileLoad, NamesRoundTripAndUnknownNamesAreRejected) {
  for (FileLoad load : {FileLoad::Auto, FileLoad::Map, FileLoad::Read})
    EXPECT_EQ(parse_file_load(file_load_name(load)), load);
  try {
    parse_file_load("copy");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"copy\""), std::string::npos) << e.what();
  }
}

TEST(FileLoad, AutoReadsWhatFitsAndMapsWhatDoesNot) {
  EXPECT_EQ(resolve_file_load(FileLoad::Map, 0), FileLoad::Map);
  EXPECT_EQ(resolve_file_load(FileLoad::Read, uint64_t{1} << 60), FileLoad::Read);
  EXPECT_EQ(resolve_file_load(FileLoad::Auto, uint64_t{1} << 60), FileLoad::Map);  // an exabyte fits nowhere
  if (std::ifstream("/proc/meminfo")) {
    EXPECT_EQ(resolve_file_load(FileLoad::Auto, 4096), FileLoad::Read);
  }
}

}  // namespace
}  // namespace whale
