#include "whale/io/safetensors_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"

namespace whale {
namespace {

constexpr uint64_t kAlign = 64;
constexpr size_t kBufferBytes = 4 << 20;

// Largest power of two <= kAlign dividing n (kAlign for 0).
uint64_t alignment_class(uint64_t n) {
  uint64_t a = 1;
  while (a < kAlign && n % (2 * a) == 0) a *= 2;
  return a;
}

}  // namespace

uint64_t TensorSpec::nbytes() const {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<TensorSpec> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), order_(std::move(tensors)) {
  std::set<std::string> names;
  for (const TensorSpec& t : order_) {
    if (t.name.empty() || t.name == "__metadata__") fail("{}: invalid tensor name \"{}\"", path_, t.name);
    if (!names.insert(t.name).second) fail("{}: tensor {} is listed twice", path_, t.name);
    if (!dtype_from_name(dtype_name(t.dtype)) || dtype_size(t.dtype) == 0)
      fail("{}: tensor {} has dtype {}, which safetensors cannot store", path_, t.name, dtype_name(t.dtype));
    for (int64_t d : t.shape)
      if (d < 0) fail("{}: tensor {} has a negative dimension", path_, t.name);
  }
  std::stable_sort(order_.begin(), order_.end(), [](const TensorSpec& a, const TensorSpec& b) {
    return alignment_class(a.nbytes()) > alignment_class(b.nbytes());
  });

  // nlohmann::ordered_json keeps the keys in data order, which is easier to read in a hex dump.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const TensorSpec& t : order_) {
    const uint64_t n = t.nbytes();
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  data_bytes_ = offset;
  std::string text = header.dump();
  text.append((kAlign - (8 + text.size()) % kAlign) % kAlign, ' ');
  data_start_ = 8 + text.size();

  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) io_fail("cannot create", errno);
  struct stat st {};
  regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);  // never unlink a device such as /dev/full
  buffer_.reserve(kBufferBytes);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((text.size() >> (8 * i)) & 0xFF);
  write_raw(len, 8);
  write_raw(text.data(), text.size());
  while (index_ < order_.size() && order_[index_].nbytes() == 0) ++index_;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    if (!finished_ && regular_) ::unlink(path_.c_str());
  }
}

const std::string& SafetensorsWriter::current() const {
  static const std::string kNone;
  return index_ < order_.size() ? order_[index_].name : kNone;
}

void SafetensorsWriter::write(const std::string& name, const void* data, size_t n) {
  if (n == 0) return;
  if (index_ >= order_.size() || order_[index_].name != name)
    fail("{}: tensor {} written out of order (expected {})", path_, name,
         index_ < order_.size() ? order_[index_].name : "no more tensors");
  const uint64_t size = order_[index_].nbytes();
  if (n > size - written_) fail("{}: {} bytes written to tensor {}, which has {}", path_, written_ + n, name, size);
  write_raw(data, n);
  written_ += n;
  if (written_ == size) {
    written_ = 0;
    ++index_;
    while (index_ < order_.size() && order_[index_].nbytes() == 0) ++index_;
  }
}

void SafetensorsWriter::finish() {
  if (index_ < order_.size())
    fail("{}: tensor {} is incomplete ({} of {} bytes written)", path_, order_[index_].name, written_,
         order_[index_].nbytes());
  flush();
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    if (regular_) ::unlink(path_.c_str());
    fail("{}: write failed: {}", path_, std::strerror(err));
  }
  finished_ = true;
}

void SafetensorsWriter::write_raw(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (buffer_.size() + n <= kBufferBytes) {
    buffer_.insert(buffer_.end(), p, p + n);
    return;
  }
  flush();
  if (n < kBufferBytes) {
    buffer_.insert(buffer_.end(), p, p + n);
    return;
  }
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, std::min<size_t>(n, 1 << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) io_fail("write failed", w < 0 ? errno : ENOSPC);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void SafetensorsWriter::flush() {
  const uint8_t* p = buffer_.data();
  size_t n = buffer_.size();
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) io_fail("write failed", w < 0 ? errno : ENOSPC);
    p += w;
    n -= static_cast<size_t>(w);
  }
  buffer_.clear();
}

void SafetensorsWriter::io_fail(const char* what, int err) {
  if (fd_ >= 0) {
    ::close(fd_);
    if (regular_) ::unlink(path_.c_str());
    fd_ = -1;
  }
  fail("{}: {}: {}", path_, what, std::strerror(err));
}

void write_safetensors_index(const std::string& path, uint64_t total_size,
                             const std::map<std::string, std::string>& weight_map) {
  nlohmann::ordered_json j;
  j["metadata"] = {{"total_size", total_size}};
  j["weight_map"] = nlohmann::ordered_json::object();
  for (const auto& [name, file] : weight_map) j["weight_map"][name] = file;
  const std::string text = j.dump(2) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create: {}", path, std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : ENOSPC;
      ::close(fd);
      fail("{}: write failed: {}", path, std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  if (::close(fd) != 0) fail("{}: write failed: {}", path, std::strerror(errno));
}

}  // namespace whale
