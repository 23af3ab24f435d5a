// whale quantize: rewrites a checkpoint's Linear weights in whale's q8 or q4 block format (kernels/quant_format.h),
// or all its matrices in BF16 (--type bf16: F32 training output, F16, or FP8 with its block scales), into a new
// Hugging Face model directory. Tensor by tensor, large tensors in row chunks, so memory stays at a few
// tens of MB whatever the model size. docs/quantization.md describes the output.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/cli/command.h"
#include "whale/cli/progress.h"
#include "whale/core/error.h"
#include "whale/core/thread_pool.h"
#include "whale/io/checkpoint.h"
#include "whale/io/safetensors_writer.h"
#include "whale/io/text_file.h"
#include "whale/kernels/quantize.h"
#include "whale/model/config.h"

namespace whale::cli {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kDefaultShardBytes = 4'000'000'000ull;
constexpr int64_t kChunkBytes = 16 << 20;  // output bytes quantized between two writes

struct QuantizeOptions {
  std::string model;
  std::string out;
  std::string type;
  int threads = 0;
  uint64_t shard_bytes = kDefaultShardBytes;
};

// The Linear weights whale quantizes (name suffixes of 2-D tensors); the MoE router mlp.gate.weight is not one.
constexpr std::array<const char*, 13> kLinearSuffixes = {
    ".q_proj.weight",    ".q_a_proj.weight",  ".q_b_proj.weight", ".kv_a_proj_with_mqa.weight", ".kv_b_proj.weight",
    ".o_proj.weight",    ".gate_proj.weight", ".up_proj.weight",  ".down_proj.weight",
    "embed_tokens.weight", "lm_head.weight",  ".eh_proj.weight",  ".shared_head.head.weight"};

bool is_linear_weight(const std::string& name, const TensorView& t) {
  if (t.shape.size() != 2) return false;
  for (const char* suffix : kLinearSuffixes)
    if (name.ends_with(suffix)) return true;
  return false;
}

// Name order with digit runs compared as numbers: model.layers.2.* before model.layers.10.*, so that each shard holds
// whole consecutive layers.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i1 = i, j1 = j;
      while (i1 < a.size() && std::isdigit(static_cast<unsigned char>(a[i1]))) ++i1;
      while (j1 < b.size() && std::isdigit(static_cast<unsigned char>(b[j1]))) ++j1;
      const std::string_view da(a.data() + i, i1 - i), db(b.data() + j, j1 - j);
      const auto strip = [](std::string_view d) {
        while (d.size() > 1 && d.front() == '0') d.remove_prefix(1);
        return d;
      };
      const std::string_view na = strip(da), nb = strip(db);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = i1;
      j = j1;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

// One input tensor and what becomes of it.
struct Job {
  std::string name;
  TensorView source;
  enum class Fate { Copy, Quantize, ToBf16 } fate = Fate::Copy;  // as it is; q8/q4 codes and scales; BF16
  TensorView scale_inv;         // FP8 sources: weight_scale_inv
  std::vector<TensorSpec> out;  // copy: {name}; quantize: {name U8, codes and scales}; to BF16: {name BF16}
  uint64_t out_bytes() const {
    uint64_t n = 0;
    for (const TensorSpec& s : out) n += s.nbytes();
    return n;
  }
};

std::string human_bytes(uint64_t n) {
  if (n >= 1'000'000'000ull) return fmt::format("{:.2f} GB", static_cast<double>(n) / 1e9);
  if (n >= 1'000'000ull) return fmt::format("{:.1f} MB", static_cast<double>(n) / 1e6);
  return fmt::format("{:.1f} KB", static_cast<double>(n) / 1e3);
}

// Tells the kernel that the mapped bytes of a finished tensor will not be read again, so the resident set stays at
// about one tensor (the pages stay in the page cache).
void release_pages(const uint8_t* data, size_t n) {
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  if (n == 0) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + n + page - 1) / page * page;
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// The f32 values of rows [r0, r0 + n) of a 2-D F32 / BF16 / F16 / F8_E4M3 tensor (FP8 times its block scale, the
// product rounded once to f32), each row at out + i · cols.
void decode_rows_f32(const Job& job, const std::vector<float>& block_scale, int block_rows, int block_cols,
                     int64_t r0, int n, float* out) {
  const TensorView& t = job.source;
  const int64_t cols = t.shape[1];
  for (int i = 0; i < n; ++i) {
    const int64_t r = r0 + i;
    float* o = out + i * cols;
    switch (t.dtype) {
      case DType::F32:
        for (int64_t c = 0; c < cols; ++c) o[c] = load_f32(t.data, static_cast<size_t>(r * cols + c));
        break;
      case DType::BF16:
        for (int64_t c = 0; c < cols; ++c) o[c] = bf16_to_f32(load_u16(t.data, static_cast<size_t>(r * cols + c)));
        break;
      case DType::F16:
        for (int64_t c = 0; c < cols; ++c) o[c] = f16_to_f32(load_u16(t.data, static_cast<size_t>(r * cols + c)));
        break;
      case DType::F8_E4M3: {
        static const std::array<float, 256> table = [] {
          std::array<float, 256> v{};
          for (int k = 0; k < 256; ++k) v[k] = e4m3_to_f32(static_cast<uint8_t>(k));
          return v;
        }();
        const int64_t blocks_per_row = (cols + block_cols - 1) / block_cols;
        const float* scales = block_scale.data() + (r / block_rows) * blocks_per_row;
        const uint8_t* p = t.data + r * cols;
        for (int64_t c = 0; c < cols; ++c) o[c] = table[p[c]] * scales[c / block_cols];
        break;
      }
      default:
        break;  // rejected when the plan was made
    }
  }
}

class Quantizer {
 public:
  // type: q8/q4, or none for BF16.
  Quantizer(const QuantizeOptions& opt, std::optional<QuantType> type, const ModelConfig& config,
            const Checkpoint& ckpt)
      : opt_(opt), type_(type), config_(config), ckpt_(ckpt) {}

  // Decides the fate of every input tensor; throws Error for tensors it cannot convert.
  void plan() {
    for (const std::string& name : ckpt_.names()) {
      if (name.ends_with("_scale_inv")) {
        ++dropped_;
        continue;
      }
      Job job;
      job.name = name;
      job.source = ckpt_.get(name);
      const TensorView& t = job.source;
      in_bytes_ += t.nbytes;
      const bool floating_matrix = t.shape.size() == 2 && (t.dtype == DType::F32 || t.dtype == DType::F16 ||
                                                           t.dtype == DType::F8_E4M3);
      if (type_ && is_linear_weight(name, t)) {
        if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16 && t.dtype != DType::F8_E4M3)
          fail("{}: tensor {} has dtype {}; whale quantize reads F32, BF16, F16 or F8_E4M3 Linear weights", t.file,
               name, dtype_name(t.dtype));
        if (t.dtype == DType::F8_E4M3) attach_block_scales(job);
        job.fate = Job::Fate::Quantize;
        job.out = {{name, DType::U8, quant_data_shape(*type_, t.shape[0], t.shape[1])}};
        ++quantized_;
      } else if (!type_ && floating_matrix) {
        if (t.dtype == DType::F8_E4M3) attach_block_scales(job);
        job.fate = Job::Fate::ToBf16;
        job.out = {{name, DType::BF16, t.shape}};
        ++quantized_;
      } else {
        if (t.dtype == DType::F8_E4M3)
          fail("{}: tensor {} is F8_E4M3 but not a Linear weight whale quantize knows; it cannot be copied without "
               "its block scales",
               t.file, name);
        job.out = {{name, t.dtype, t.shape}};
        ++copied_;
      }
      jobs_.push_back(std::move(job));
    }
    std::sort(jobs_.begin(), jobs_.end(), [](const Job& a, const Job& b) { return natural_less(a.name, b.name); });
    // Shards: consecutive runs of at most shard_bytes (a larger tensor gets a shard of its own).
    uint64_t acc = 0;
    for (size_t i = 0; i < jobs_.size(); ++i) {
      const uint64_t n = jobs_[i].out_bytes();
      if (shards_.empty() || (acc > 0 && acc + n > opt_.shard_bytes)) {
        shards_.emplace_back();
        acc = 0;
      }
      shards_.back().push_back(i);
      acc += n;
    }
    if (shards_.empty()) shards_.emplace_back();
  }

  // Writes the shards (and the index when there are several) into `out`; returns the files written.
  void write(const fs::path& out, std::vector<fs::path>& created) {
    ThreadPool pool(opt_.threads);
    ProgressBar bar(type_ ? "quantizing" : "converting");
    const uint64_t total_mib = std::max<uint64_t>(1, in_bytes_ >> 20);
    std::map<std::string, std::string> weight_map;
    uint64_t total_size = 0;
    const size_t n_shards = shards_.size();
    for (size_t s = 0; s < n_shards; ++s) {
      const std::string file =
          n_shards == 1 ? "model.safetensors" : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, n_shards);
      std::vector<TensorSpec> specs;
      std::map<std::string, const Job*> by_name;
      for (size_t i : shards_[s])
        for (const TensorSpec& spec : jobs_[i].out) {
          specs.push_back(spec);
          by_name[spec.name] = &jobs_[i];
          weight_map[spec.name] = file;
          total_size += spec.nbytes();
        }
      created.push_back(out / file);
      SafetensorsWriter writer((out / file).string(), std::move(specs), {{"format", "pt"}});
      for (const TensorSpec& spec : writer.order()) {
        const Job& job = *by_name.at(spec.name);
        if (job.fate == Job::Fate::ToBf16) {
          with_context(fmt::format("{}: tensor {}", job.source.file, job.name),
                       [&] { convert_tensor_bf16(job, writer, pool, bar, total_mib); });
        } else if (job.fate == Job::Fate::Copy) {
          writer.write(spec.name, job.source.data, job.source.nbytes);
          release_pages(job.source.data, job.source.nbytes);
          done_bytes_ += job.source.nbytes;
        } else {
          with_context(fmt::format("{}: tensor {}", job.source.file, job.name),
                       [&] { quantize_tensor(job, writer, pool, bar, total_mib); });
        }
        bar.update(static_cast<int>(done_bytes_ >> 20), static_cast<int>(total_mib));
      }
      writer.finish();
      out_bytes_ += writer.file_bytes();
    }
    if (n_shards > 1) {
      created.push_back(out / "model.safetensors.index.json");
      write_safetensors_index((out / "model.safetensors.index.json").string(), total_size, weight_map);
      out_bytes_ += fs::file_size(out / "model.safetensors.index.json");
    }
    bar.finish();
  }

  size_t quantized() const { return quantized_; }
  size_t copied() const { return copied_; }
  size_t dropped() const { return dropped_; }
  size_t shards() const { return shards_.size(); }
  uint64_t in_bytes() const { return in_bytes_; }
  uint64_t out_bytes() const { return out_bytes_; }

 private:
  // An FP8 tensor's weight_scale_inv, checked against config.json's block size and the tensor's shape.
  void attach_block_scales(Job& job) {
    const TensorView& t = job.source;
    if (!config_.quantization)
      fail("{}: tensor {} is F8_E4M3 but config.json has no fp8 quantization_config", t.file, job.name);
    const std::string scale_name = job.name + "_scale_inv";
    if (!ckpt_.has(scale_name))
      fail("{}: FP8 tensor {} has no block scales: missing tensor {}", t.file, job.name, scale_name);
    job.scale_inv = ckpt_.get(scale_name);
    const int br = config_.quantization->block_rows, bc = config_.quantization->block_cols;
    const std::vector<int64_t> want = {(t.shape[0] + br - 1) / br, (t.shape[1] + bc - 1) / bc};
    if (job.scale_inv.dtype != DType::F32 && job.scale_inv.dtype != DType::BF16)
      fail("{}: tensor {} has dtype {}; expected F32", job.scale_inv.file, scale_name, dtype_name(job.scale_inv.dtype));
    if (job.scale_inv.shape != want)
      fail("{}: tensor {} has shape {}, expected {} for {} of shape {}", job.scale_inv.file, scale_name,
           shape_string(job.scale_inv.shape), shape_string(want), job.name, shape_string(t.shape));
    in_bytes_ += job.scale_inv.nbytes;
  }

  // The FP8 block scales of a job as f32 (empty for other dtypes), with the block size they apply to.
  std::vector<float> block_scales(const Job& job, int& block_rows, int& block_cols) const {
    block_rows = 128;
    block_cols = 128;
    std::vector<float> scale;
    if (job.source.dtype != DType::F8_E4M3) return scale;
    block_rows = config_.quantization->block_rows;
    block_cols = config_.quantization->block_cols;
    scale.resize(static_cast<size_t>(job.scale_inv.numel()));
    for (size_t i = 0; i < scale.size(); ++i) scale[i] = load_as_f32(job.scale_inv.dtype, job.scale_inv.data, i);
    return scale;
  }

  // Writes job's tensor as BF16, each value rounded once (to nearest, ties to even) from its f32 value.
  void convert_tensor_bf16(const Job& job, SafetensorsWriter& writer, ThreadPool& pool, ProgressBar& bar,
                           uint64_t total_mib) {
    const TensorView& t = job.source;
    const int64_t rows = t.shape[0], cols = t.shape[1];
    int block_rows = 0, block_cols = 0;
    const std::vector<float> block_scale = block_scales(job, block_rows, block_cols);
    const int64_t chunk = std::max<int64_t>(1, kChunkBytes / std::max<int64_t>(1, cols * 2));
    std::vector<uint16_t> buffer(static_cast<size_t>(std::min(chunk, rows) * cols));
    const uint64_t in_row_bytes = t.nbytes / static_cast<uint64_t>(std::max<int64_t>(rows, 1));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t r1 = std::min(rows, r0 + chunk);
      pool.parallel_for(r1 - r0, [&](int64_t a, int64_t b) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0 + a; r < r0 + b; ++r) {
          decode_rows_f32(job, block_scale, block_rows, block_cols, r, 1, row.data());
          uint16_t* o = buffer.data() + (r - r0) * cols;
          for (int64_t c = 0; c < cols; ++c) o[c] = f32_to_bf16(row[static_cast<size_t>(c)]);
        }
      });
      writer.write(job.name, buffer.data(), static_cast<size_t>((r1 - r0) * cols * 2));
      release_pages(t.data + r0 * in_row_bytes, static_cast<size_t>((r1 - r0) * in_row_bytes));
      done_bytes_ += (r1 - r0) * in_row_bytes;
      bar.update(static_cast<int>(done_bytes_ >> 20), static_cast<int>(total_mib));
    }
    if (t.dtype == DType::F8_E4M3) done_bytes_ += job.scale_inv.nbytes;
  }

  void quantize_tensor(const Job& job, SafetensorsWriter& writer, ThreadPool& pool, ProgressBar& bar,
                       uint64_t total_mib) {
    const TensorView& t = job.source;
    const int64_t rows = t.shape[0], cols = t.shape[1];
    int block_rows = 0, block_cols = 0;
    const std::vector<float> block_scale = block_scales(job, block_rows, block_cols);
    const int64_t groups = quant_padded_rows(rows) / kQuantRowGroup;
    const int64_t group_bytes = quant_group_bytes(*type_, quant_padded_cols(cols));
    const int64_t chunk = std::max<int64_t>(1, kChunkBytes / group_bytes);
    std::vector<uint8_t> buffer(static_cast<size_t>(std::min(chunk, groups) * group_bytes));
    const uint64_t in_row_bytes = t.nbytes / static_cast<uint64_t>(std::max<int64_t>(rows, 1));
    for (int64_t g0 = 0; g0 < groups; g0 += chunk) {
      const int64_t g1 = std::min(groups, g0 + chunk);
      pool.parallel_for(g1 - g0, [&](int64_t a, int64_t b) {
        std::vector<float> rows4(static_cast<size_t>(kQuantRowGroup * cols));
        for (int64_t g = g0 + a; g < g0 + b; ++g) {
          const int64_t r0 = g * kQuantRowGroup;
          const int n = static_cast<int>(std::min<int64_t>(kQuantRowGroup, rows - r0));
          decode_rows_f32(job, block_scale, block_rows, block_cols, r0, n, rows4.data());
          quantize_row_group(*type_, rows4.data(), cols, n, cols, buffer.data() + (g - g0) * group_bytes, r0);
        }
      });
      writer.write(job.name, buffer.data(), static_cast<size_t>((g1 - g0) * group_bytes));
      const int64_t r1 = std::min(rows, g1 * kQuantRowGroup);
      release_pages(t.data + g0 * kQuantRowGroup * in_row_bytes,
                    static_cast<size_t>((r1 - g0 * kQuantRowGroup) * in_row_bytes));
      done_bytes_ += (r1 - g0 * kQuantRowGroup) * in_row_bytes;
      bar.update(static_cast<int>(done_bytes_ >> 20), static_cast<int>(total_mib));
    }
    if (t.dtype == DType::F8_E4M3) done_bytes_ += job.scale_inv.nbytes;
  }

  const QuantizeOptions& opt_;
  std::optional<QuantType> type_;
  const ModelConfig& config_;
  const Checkpoint& ckpt_;
  std::vector<Job> jobs_;
  std::vector<std::vector<size_t>> shards_;
  size_t quantized_ = 0, copied_ = 0, dropped_ = 0;
  uint64_t in_bytes_ = 0, out_bytes_ = 0, done_bytes_ = 0;
};

nlohmann::ordered_json read_ordered_json(const fs::path& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

void run_quantize(const QuantizeOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  const bool bf16 = opt.type == "bf16";
  const std::optional<QuantType> type = quant_type_from_name(opt.type);
  if (!type && !bf16) fail("--type: \"{}\" is not supported (expected q8, q4 or bf16)", opt.type);
  const fs::path in = opt.model, out = opt.out;

  const ModelConfig config = load_model_config(in);
  if (config.whale_quant)
    fail("{}: the checkpoint is already whale-quantized ({}); quantize the original checkpoint instead",
         (in / "config.json").string(), quant_type_name(*config.whale_quant));

  std::error_code ec;
  bool made_out = false;
  if (fs::exists(out, ec)) {
    if (fs::equivalent(in, out, ec)) fail("--out {} is the input model directory; choose a new directory", out.string());
    if (!fs::is_directory(out, ec)) fail("--out {}: exists and is not a directory", out.string());
    if (!fs::is_empty(out, ec)) fail("--out {}: exists and is not empty; choose a new or empty directory", out.string());
  } else {
    fs::create_directories(out, ec);
    if (ec) fail("--out {}: cannot create the directory: {}", out.string(), ec.message());
    made_out = true;
  }

  std::vector<fs::path> created;
  try {
    const Checkpoint ckpt(in);
    Quantizer q(opt, type, config, ckpt);
    q.plan();
    q.write(out, created);

    // config.json: the input's, keys in their order, with whale's quantization_config (q8/q4) or none (bf16).
    nlohmann::ordered_json cfg = read_ordered_json(in / "config.json");
    if (type) {
      cfg["quantization_config"] = {{"quant_method", "whale"},
                                    {"format", quant_type_name(*type)},
                                    {"group_size", kQuantBlock},
                                    {"row_interleave", kQuantRowGroup},
                                    {"scales", "inline"}};
    } else {
      cfg.erase("quantization_config");
      cfg["torch_dtype"] = "bfloat16";
    }
    created.push_back(out / "config.json");
    write_text_file(out / "config.json", cfg.dump(2) + "\n");

    // Every other file of the model directory (tokenizer, generation config, license, ...), as it is.
    size_t files = 0;
    for (const auto& entry : fs::directory_iterator(in, ec)) {
      const std::string fname = entry.path().filename().string();
      if (!entry.is_regular_file(ec) || fname == "config.json" || fname == "model.safetensors.index.json" ||
          entry.path().extension() == ".safetensors")
        continue;
      created.push_back(out / fname);
      fs::copy_file(entry.path(), out / fname, fs::copy_options::overwrite_existing, ec);
      if (ec) fail("{}: cannot copy to {}: {}", entry.path().string(), (out / fname).string(), ec.message());
      ++files;
    }
    if (ec) fail("{}: cannot list the directory: {}", in.string(), ec.message());

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_stdout(fmt::format(
        "{} {} to {}: {} tensors ({} {} to {}, {} copied, {} FP8 scales dropped), {} shard{}, "
        "{} other files; {} -> {} in {:.1f} s\n",
        type ? "quantized" : "converted", in.string(), out.string(), q.quantized() + q.copied(), q.quantized(),
        type ? "Linear weights" : "matrices", type ? quant_type_name(*type) : "bf16", q.copied(),
        q.dropped(), q.shards(), q.shards() == 1 ? "" : "s", files, human_bytes(ckpt.total_file_bytes()),
        human_bytes(q.out_bytes()), seconds));
  } catch (...) {
    // Leave no half-written model behind: remove what this run created (only that).
    for (const fs::path& p : created) fs::remove(p, ec);
    if (made_out) fs::remove(out, ec);  // only if empty
    throw;
  }
}

}  // namespace

Command register_quantize(CLI::App& root) {
  auto opt = std::make_shared<QuantizeOptions>();
  CLI::App* app = root.add_subcommand(
      "quantize",
      "Write a copy of a model with its Linear weights in whale's q8 or q4 block format, or its matrices in BF16");
  app->add_option("--model", opt->model, "Input model directory (Hugging Face layout: config.json + safetensors)")
      ->required();
  app->add_option("--out", opt->out, "Output directory (created; must not exist or be empty)")->required();
  app->add_option("--type", opt->type,
                  "q8 (8-bit codes) or q4 (4-bit codes), 32 values per f16 scale; or bf16 (every F32, F16 or FP8 "
                  "matrix rounded to BF16, 1-D tensors kept)")
      ->required();
  app->add_option("--threads", opt->threads, "Worker threads (default: one per CPU)")->check(at_least(0));
  app->add_option("--shard-size", opt->shard_bytes,
                  "Largest shard in bytes (default 4000000000); one file model.safetensors when all fits")
      ->check(at_least(1));
  return {app, [opt] { run_quantize(*opt); }};
}

}  // namespace whale::cli
