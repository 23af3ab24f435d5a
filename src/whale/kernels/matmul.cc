#include "whale/kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "whale/kernels/activations.h"
#include "whale/core/error.h"
#include "whale/core/uninit_vector.h"
#include "whale/kernels/matmul_amx.h"
#include "whale/kernels/matmul_bf16_dot.h"
#include "whale/kernels/matmul_simd.h"
#include "whale/kernels/quant_format.h"
#include "whale/kernels/quantize.h"

namespace whale {
namespace {

constexpr int64_t kTileTokens = 4;          // float weights: up to this many tokens use the streaming (decode) path
constexpr int kFloatRowGroup = 4;           // rows of a float tile
constexpr int64_t kPanelBytes = 256 << 10;  // f32 panel of decoded rows kept in L2 by the prefill path
constexpr int64_t kAmxMinTokens = 17;       // q8/q4: from this many tokens on, AMX int8 tiles where the CPU has them
constexpr int64_t kPairTokens = 2;          // q8/q4: up to this many tokens always read two row groups at a time
constexpr int64_t kChunkGroups = 4;         // work chunks hold whole multiples of this many row groups of a job
// Several activation matrices to convert for one batch are converted on the pool's threads from this many values in
// all (a 16-sequence step's experts: about 200k); fewer stay on the calling thread (decode: a few thousand).
constexpr int64_t kParallelConversionValues = int64_t{1} << 15;

bool is_quant(DType t) { return t == DType::Q8 || t == DType::Q4; }

QuantType quant_type(DType t) { return t == DType::Q8 ? QuantType::Q8 : QuantType::Q4; }

// Rows per unit of work: a q8/q4 row group, or a float tile's rows.
int group_rows(const Weight2D& w) { return is_quant(w.dtype) ? kQuantRowGroup : kFloatRowGroup; }
int64_t row_groups(const Weight2D& w) { return (w.rows + group_rows(w) - 1) / group_rows(w); }

// The streaming path reads the weights directly; it needs FP8 block columns aligned to whole vectors.
bool streams(const MatmulJob& j) {
  if (j.m > kTileTokens) return false;
  return j.w.dtype != DType::F8_E4M3 || j.w.block_cols % 16 == 0;
}

// Rows of the f32 panel that the prefill path decodes once and sweeps every token over, at K = k.
int64_t float_panel_rows(int64_t k, int gr) {
  return std::clamp<int64_t>(kPanelBytes / (4 * std::max<int64_t>(k, 1)) / gr * gr, gr, 64);
}

// Per-thread scratch of run_groups.
struct Scratch {
  std::vector<float> panel;     // decoded f32 rows (float prefill)
  std::vector<uint8_t> codes;   // a row group's signed codes (AMX)
  std::vector<uint16_t> bf16_rows;  // BF16 rows copied to a 64-byte boundary (bf16dot::rows)
};

// Enough row groups per slice of the pool that a slice's weights (4 or 16 rows × k) amortize the fork/join.
int64_t grain_for(int64_t k) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)); }

// A job's activations in the form its weights need: xq for q8/q4, xb for BF16 prompts on AMX, xr for BF16 prompts
// rounded to bf16 (Weight2D::bf16_activations); all null for the f32 paths.
struct JobActivations {
  const simd::QuantizedActivations* xq = nullptr;
  const amx::Bf16Activations* xb = nullptr;
  const bf16dot::RoundedActivations* xr = nullptr;
};

// Row groups [g0, g1) of job j, all tokens, with j's activations prepared as its weights need.
void run_groups(const MatmulJob& j, const JobActivations& xa, int64_t g0, int64_t g1, Scratch& scratch) {
  const simd::QuantizedActivations* xq = xa.xq;
  const amx::Bf16Activations* xb = xa.xb;
  const Weight2D& w = j.w;
  const int64_t n = w.rows, k = w.cols, gr = group_rows(w);
  auto rows_in = [n, gr](int64_t g) { return static_cast<int>(std::min<int64_t>(gr, n - g * gr)); };
  if (xq) {
    // Many tokens: AMX tiles where the CPU has them (bitwise the same results as the tiles below). Up to 16 tokens
    // the VNNI tiles, two passes of 8 over a group held in cache, are as fast or faster: the AMX path pays per
    // 32-column block for a tile store and 16 scaled adds, and for widening the group's codes, which few tokens do not
    // amortize (matmul_bench, q4 expert shape: 16 tokens equal on one and two threads; 32 tokens AMX 1.1-1.2x
    // faster on two; 16-sequence decode steps on the q4 bench model 15-20% faster than with AMX from 9 tokens).

    if (j.m >= kAmxMinTokens && amx::quant_groups(w, g0, g1, *xq, j.y, n, scratch.codes)) return;
    // q8/q4: two row groups at a time where `pairs` (below) says so, their weights (2 × 16 rows × K) held in cache
    // while passes of up to kQuantPairTokens tokens go over them. Each activation word broadcast then feeds both groups'
    // lines, which halves the broadcasts per multiply-add: the single-group tiles are bound by the loads (a
    // broadcast per vpdpbusd). Decode (1-2 tokens) gets two streams of weights in flight instead of one: one stream
    // per thread drew about 15% less of the memory's bandwidth than two (decode_stream_bench, q8, Xeon with 2 vCPUs).
    // A lone last group runs alone, in tiles of kQuantTileTokens. Zen 5, against one group at a time: matmul_bench
    // q4 expert in cache 8-18% faster at 4-256 tokens; decode_stream_bench q4 at 3 tokens 8-18% faster, and at 5
    // tokens 10-18% faster in one pass of 5 than in 4 + 1.
    // Beyond decode's 1-2 tokens, pairs are for q4 on CPUs without AMX. q8 pairs measured slower from 3 tokens on
    // (Zen 5: 16-sequence steps of the q8 bench model 61-68 against 70-79 tok/s one group at a time, session 29;
    // decode_stream_bench at 6 tokens, session 26): a q8 pair at K = 2048 holds 64 KB of codes, more than L1. On the
    // AMX host (an Intel Xeon, session 23) q4 pairs at 16 tokens measured slower too, and prompts go to AMX from
    // kAmxMinTokens there anyway.
    // A pair kernel that declines (no VNNI: AVX2, NEON) declines every pair alike, so after the first refusal the rest
    // of the range goes straight to the single-group tiles instead of asking once per pair.
    bool pairs = j.m <= kPairTokens || (w.dtype == DType::Q4 && !amx::available());
    // One token (decode): four row groups at a time where four are left, four streams of weights in flight. On Zen 5
    // (2 vCPUs) one core drew about 15% more bandwidth from four streams than from two: decode_stream_bench q8 65-74%
    // of the probe with pairs, 79-87% with fours (3 alternated rounds), and q8/q4 decode 5-9% faster (session 34).
    bool quads = j.m == 1;
    for (int64_t g = g0; g < g1; g += 2) {
      if (quads && g + 3 < g1) {
        if (simd::tile_quant_quad(w, g, rows_in(g + 3), *xq, 0, j.y + g * gr, n)) {
          g += 2;
          continue;
        }
        quads = false;
      }
      bool paired = pairs && g + 1 < g1;
      for (int64_t t0 = 0; t0 < j.m && paired;) {
        // Per 8-token activation tile, its r tokens in one pass where a pair kernel takes them, else in two halves
        // (7 = 4 + 3, 8 = 4 + 4; one more pass of 1-2 tokens costs more than the split).
        const int r = static_cast<int>(
            std::min<int64_t>(simd::kQuantTileTokens - t0 % simd::kQuantTileTokens, j.m - t0));
        const int nt = r <= simd::kQuantPairTokens ? r : (r + 1) / 2;
        paired = simd::tile_quant_pair(w, g, rows_in(g + 1), *xq, t0, nt, j.y + t0 * n + g * gr, n,
                                       /*prefetch=*/t0 == 0);
        t0 += nt;
      }
      if (paired) continue;
      if (g + 1 < g1) pairs = false;
      for (int64_t h = g; h < std::min(g + 2, g1); ++h)
        for (int64_t t0 = 0; t0 < j.m; t0 += simd::kQuantTileTokens) {
          const int nt = static_cast<int>(std::min<int64_t>(simd::kQuantTileTokens, j.m - t0));
          simd::tile_quant(w, h, rows_in(h), *xq, t0, nt, j.y + t0 * n + h * gr, n);
        }
    }
    return;
  }
  if (xb && amx::bf16_rows(w, g0 * gr, std::min(n, g1 * gr), *xb, j.y, n, scratch.codes)) return;
  if (xa.xr && bf16dot::rows(w, g0 * gr, std::min(n, g1 * gr), *xa.xr, j.y + g0 * gr, n, scratch.bf16_rows)) return;
  if (streams(j)) {
    // Up to kWideFloatTileTokens tokens (decode), two groups per tile where two are left: eight rows, eight streams
    // of weights in flight instead of four.
    for (int64_t g = g0; g < g1; ++g) {
      const bool wide = j.m <= simd::kWideFloatTileTokens && g + 1 < g1;
      simd::tile_float(w, g * gr, rows_in(g) + (wide ? rows_in(g + 1) : 0), j.x, k, static_cast<int>(j.m),
                       j.y + g * gr, n);
      g += wide;
    }
    return;
  }
  // Prefill: decode a panel of rows to f32 once, then sweep all tokens over it in tiles.
  const int64_t panel_rows = float_panel_rows(k, gr);
  for (int64_t r0 = g0 * gr; r0 < std::min(n, g1 * gr); r0 += panel_rows) {
    const int64_t r1 = std::min({n, g1 * gr, r0 + panel_rows});
    simd::panel_rows(w, r0, r1, j.x, k, j.m, j.y + r0, n, scratch.panel);
  }
}

// Each job's activations in the form its weights need, each distinct matrix converted once (gate and up share
// theirs): int8 blocks for q8/q4, bf16 pairs for BF16 prompts on AMX, bf16 rows for BF16 prompts whose weight asks
// for bf16 activations on CPUs with the bf16 dot instruction.
//
// Deferred (decode's few thousand values): converted by the pass's threads as they reach a job (ensure), not by the
// caller before the pass, so that the conversions run on both threads and under the other thread's streaming
// instead of on the caller while the workers wait. Converting before each pass took 1.6% of a q4 decode step
// (3.4 µs a pass, the down pass converting 7 inputs; session 53). A conversion gives the same bits on any thread.
struct PreparedActivations {
  enum class Form { None, Quantized, AmxSplit, Rounded };
  std::vector<simd::QuantizedActivations> quantized;
  std::vector<amx::Bf16Activations> split;
  std::vector<bf16dot::RoundedActivations> rounded;
  std::vector<JobActivations> x;

  static Form form_for(const MatmulJob& j) {
    if (j.m == 0) return Form::None;
    if (is_quant(j.w.dtype)) return Form::Quantized;
    if (j.w.dtype != DType::BF16 || j.exact) return Form::None;
    if (j.m >= amx::kBf16MinTokens && amx::bf16_usable(j.w.cols)) return Form::AmxSplit;
    if (j.w.bf16_activations && bf16dot::usable(j.w.cols)) return Form::Rounded;
    return Form::None;
  }

  // Over the pool's threads where one is given and the values to convert are many: several conversions (a batched
  // step's experts) one per thread, a single large one (a prompt) split by tokens. With `defer`, fewer values are
  // left to ensure().
  explicit PreparedActivations(std::span<const MatmulJob> jobs, ThreadPool* pool = nullptr, bool defer = false)
      : quantized(jobs.size()), split(jobs.size()), rounded(jobs.size()), x(jobs.size()), jobs_(jobs),
        forms_(jobs.size(), Form::None), owner_(jobs.size(), kNone) {
    std::vector<size_t> own;  // jobs whose activations are converted (the others share a former job's)
    int64_t values = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      const MatmulJob& j = jobs[i];
      forms_[i] = form_for(j);
      if (forms_[i] == Form::None) continue;
      // A former job with the same activations and the same need shares its conversion.
      bool shared = false;
      for (size_t p = 0; p < i && !shared; ++p)
        if (forms_[p] == forms_[i] && jobs[p].x == j.x && jobs[p].m == j.m && jobs[p].w.cols == j.w.cols &&
            jobs[p].w.dtype == j.w.dtype) {
          x[i] = x[p];
          owner_[i] = owner_[p];
          shared = true;
        }
      if (shared) continue;
      switch (forms_[i]) {
        case Form::Quantized: x[i].xq = &quantized[i]; break;
        case Form::AmxSplit: x[i].xb = &split[i]; break;
        case Form::Rounded: x[i].xr = &rounded[i]; break;
        case Form::None: break;
      }
      owner_[i] = i;
      own.push_back(i);
      values += j.m * j.w.cols;
    }
    if (defer && values < kParallelConversionValues) {
      state_ = std::make_unique<std::atomic<int>[]>(jobs.size());
      for (size_t i = 0; i < jobs.size(); ++i) state_[i].store(kWaiting, std::memory_order_relaxed);
      return;
    }
    if (pool && own.size() > 1 && values >= kParallelConversionValues) {
      pool->parallel_for(static_cast<int64_t>(own.size()), [&](int64_t a, int64_t b) {
        for (int64_t n = a; n < b; ++n) convert(own[n], nullptr);  // parallel_for is not reentrant
      });
    } else {
      for (size_t i : own) convert(i, pool);
    }
  }

  // Job i's activations ready to read: converted here if they are deferred and no thread has begun them, else waited
  // for. Rethrows (as Error) where the thread converting them failed.
  void ensure(size_t i) {
    if (!state_ || owner_[i] == kNone) return;
    std::atomic<int>& state = state_[owner_[i]];
    int seen = state.load(std::memory_order_acquire);
    if (seen == kWaiting && state.compare_exchange_strong(seen, kConverting, std::memory_order_acquire)) {
      try {
        convert(owner_[i], nullptr);
      } catch (...) {
        state.store(kFailed, std::memory_order_release);
        throw;
      }
      state.store(kReady, std::memory_order_release);
      return;
    }
    while ((seen = state.load(std::memory_order_acquire)) == kConverting) spin_pause();
    if (seen == kFailed) fail("matmul: converting the activations of job {} failed on another thread", i);
  }

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);
  enum : int { kWaiting, kConverting, kReady, kFailed };

  static void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  void convert(size_t i, ThreadPool* token_pool) {
    const MatmulJob& j = jobs_[i];
    switch (forms_[i]) {
      case Form::Quantized:
        simd::quantize_activations(j.x, j.m, j.w.cols, j.w.cols, quant_type(j.w.dtype), quant_padded_cols(j.w.cols),
                                   quantized[i], token_pool);
        break;
      case Form::AmxSplit: amx::split_bf16(j.x, j.m, j.w.cols, j.w.cols, split[i]); break;
      case Form::Rounded: bf16dot::round_activations(j.x, j.m, j.w.cols, j.w.cols, rounded[i], token_pool); break;
      case Form::None: break;
    }
  }

  std::span<const MatmulJob> jobs_;
  std::vector<Form> forms_;
  std::vector<size_t> owner_;                    // per job: the job whose conversion it reads (kNone: none)
  std::unique_ptr<std::atomic<int>[]> state_;    // per converting job, when deferred
};

// Rows that a prompt-sized product of job j sweeps all of its tokens over at a time, a panel held in L2 (BF16 rows
// for the bf16 dot, or f32 rows decoded from a float format); 0 where the kernels hold no such panel (decode's
// streaming tiles, q8/q4, whose prompt tiles sweep the tokens over one or two row groups, and AMX).
int64_t prompt_panel_rows(const MatmulJob& j) {
  switch (PreparedActivations::form_for(j)) {
    case PreparedActivations::Form::Rounded: return j.m > bf16dot::kStreamTokens ? bf16dot::panel_rows(j.w.cols) : 0;
    case PreparedActivations::Form::None: return streams(j) ? 0 : float_panel_rows(j.w.cols, group_rows(j.w));
    default: return 0;
  }
}

// W[r, c] in double for the float formats: exact, the FP8 block scale applied without rounding.
double scalar_weight(const Weight2D& w, int64_t r, int64_t c) {
  const int64_t k = w.cols;
  double v = load_as_f32(w.dtype, w.data, static_cast<size_t>(r * k + c));
  if (w.dtype == DType::F8_E4M3)
    v *= w.block_scale[(r / w.block_rows) * ((k + w.block_cols - 1) / w.block_cols) + c / w.block_cols];
  return v;
}

}  // namespace

void decode_rows(const Weight2D& w, int64_t r0, int64_t r1, float* out) { simd::decode_rows(w, r0, r1, out); }

bool rounds_bf16_activations() { return bf16dot::available() && !amx::bf16_usable(32); }

float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

void matmul(const Weight2D& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
  const MatmulJob job{w, x, m, y};
  matmul_batch({&job, 1}, pool);
}

void matmul_serial(const Weight2D& w, const float* x, int64_t m, float* y) {
  if (m == 0) return;
  const MatmulJob job{w, x, m, y};
  const PreparedActivations prepared({&job, 1});
  Scratch scratch;
  run_groups(job, prepared.x[0], 0, row_groups(w), scratch);
}

namespace {

// One token's two rounded rows (wide_product at m = 1: absorbed attention's W_UV, a head at a time) over row groups
// [g0, g1), four groups at a time, each row in a pass of its own over them (the second reads them from L1): four
// streams of weights in flight instead of the two of run_groups' pairs. tile_quant_quad and tile_quant_pair both give
// tile_quant's bits. Returns the first group not done. W_UV took 12-20% less time this way (q4 bench model, 128
// cached tokens; session 53).
int64_t wide_token_quads(const Weight2D& w, const simd::QuantizedActivations& xq, int64_t g0, int64_t g1, float* both) {
  const int64_t n = w.rows;
  for (int64_t g = g0; g + 4 <= g1; g += 4) {
    const int last_rows = static_cast<int>(std::min<int64_t>(kQuantRowGroup, n - (g + 3) * kQuantRowGroup));
    for (int t = 0; t < 2; ++t)
      if (!simd::tile_quant_quad(w, g, last_rows, xq, t, both + t * n + g * kQuantRowGroup, n)) return g;
  }
  return g1 - (g1 - g0) % 4;
}

// y [m, n] = W·x with x rounded to int8 twice (quantize_activations_wide: x, then what that left; a block's two rows
// together carry x within amax / 254², about 16 bits): W times its 2m rows, then the two halves added, keeping the
// tiles' integer arithmetic. Over the pool when there is one, else on the calling thread.
void wide_product(const Weight2D& w, const float* x, int64_t m, float* y, ThreadPool* pool) {
  simd::QuantizedActivations xq;
  simd::quantize_activations_wide(x, m, w.cols, w.cols, quant_type(w.dtype), quant_padded_cols(w.cols), xq, pool);
  UninitVector<float> both(static_cast<size_t>(2 * m * w.rows));  // written in full by the product
  const MatmulJob job{w, nullptr, 2 * m, both.data()};
  auto run = [&](int64_t g0, int64_t g1) {
    Scratch scratch;
    if (m == 1) g0 = wide_token_quads(w, xq, g0, g1, both.data());
    run_groups(job, JobActivations{&xq}, g0, g1, scratch);
  };
  if (pool) pool->parallel_for(row_groups(w), run, grain_for(w.cols));
  else run(0, row_groups(w));
  const int64_t mn = m * w.rows;
  for (int64_t i = 0; i < mn; ++i) y[i] = both[i] + both[mn + i];
}

}  // namespace

void matmul_serial_wide_activations(const Weight2D& w, const float* x, int64_t m, float* y) {
  if (m == 0) return;
  if (!is_quant(w.dtype)) return matmul_serial(w, x, m, y);
  wide_product(w, x, m, y, nullptr);
}

void matmul_wide_activations(const Weight2D& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
  if (m == 0) return;
  if (!is_quant(w.dtype)) return matmul(w, x, m, y, pool);
  wide_product(w, x, m, y, &pool);
}

std::optional<Weight2D> weight_rows(const Weight2D& w, int64_t r0, int64_t r1) {
  Weight2D s = w;
  s.rows = r1 - r0;
  if (is_quant(w.dtype)) {
    if (r0 % kQuantRowGroup != 0) return std::nullopt;
    s.data = w.data + r0 / kQuantRowGroup * quant_group_bytes(quant_type(w.dtype), quant_padded_cols(w.cols));
    return s;
  }
  if (w.dtype == DType::F8_E4M3) {
    if (r0 % w.block_rows != 0) return std::nullopt;
    s.block_scale = w.block_scale + (r0 / w.block_rows) * ((w.cols + w.block_cols - 1) / w.block_cols);
  }
  s.data = w.data + static_cast<size_t>(r0 * w.cols) * dtype_size(w.dtype);
  return s;
}

void prefetch_rows(const Weight2D& w, int64_t r0, int64_t r1) {
  auto prefetch = [](const void* begin, size_t bytes) {
    const uint8_t* p = static_cast<const uint8_t*>(begin);
    for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(p + i, 0, 2);
  };
  if (r0 >= r1) return;
  if (is_quant(w.dtype)) {
    const int64_t group_bytes = quant_group_bytes(quant_type(w.dtype), quant_padded_cols(w.cols));
    const int64_t g0 = r0 / kQuantRowGroup, g1 = (r1 + kQuantRowGroup - 1) / kQuantRowGroup;
    prefetch(w.data + g0 * group_bytes, static_cast<size_t>((g1 - g0) * group_bytes));
    return;
  }
  const size_t row_bytes = static_cast<size_t>(w.cols) * dtype_size(w.dtype);
  prefetch(w.data + static_cast<size_t>(r0) * row_bytes, static_cast<size_t>(r1 - r0) * row_bytes);
}

void add_scaled_weight_rows(const Weight2D& w, int64_t r0, int64_t r1, const float* x, int64_t ldx, int64_t m,
                            float* y, int64_t ldy, int64_t prefetch_r0) {
  const int64_t n = r1 - r0;
  if (m == 0 || n == 0) return;
  // q8/q4 rows are read in place (xw_quant, 4 tokens at a time), whatever the token count, so that a token's row is
  // the same bits in any batch: a prompt chunk's queries (absorbed attention, 5-63 of them) then get what the same
  // queries get one by one. Other formats decode the rows once and reuse them (also the same bits for any m).
  if (is_quant(w.dtype) && r0 % kQuantRowGroup == 0) {
    const int64_t groups = (n + kQuantRowGroup - 1) / kQuantRowGroup;
    std::vector<float> xp(static_cast<size_t>(m * groups * kQuantRowGroup), 0.0f);
    for (int64_t t = 0; t < m; ++t) std::copy_n(x + t * ldx, n, xp.data() + t * groups * kQuantRowGroup);
    const int64_t prefetch_g0 = prefetch_r0 >= 0 && prefetch_r0 % kQuantRowGroup == 0 ? prefetch_r0 / kQuantRowGroup : -1;
    if (simd::xw_quant(w, r0 / kQuantRowGroup, groups, xp.data(), groups * kQuantRowGroup, m, y, ldy, prefetch_g0))
      return;
  }
  // A few rows at a time. Each y element takes the rows' products in row order either way, so the chunking changes
  // no result.
  constexpr int64_t kChunkRows = 16;
  if (w.dtype == DType::BF16) {
    // In place, widened as they are read, each chunk prefetching the next one's lines as it reads its own, and the
    // last chunk those of the rows at prefetch_r0. Decoding a chunk to f32 first, with the next call's rows
    // prefetched in one burst, took absorbed attention's W_UK (8 heads, 1 MB) 127 µs per layer and thread, this
    // 52-56 (Zen 5 VM, session 37).
    const auto* rows = reinterpret_cast<const uint16_t*>(w.data);
    for (int64_t i = 0; i < n; i += kChunkRows) {
      const int64_t rn = std::min(kChunkRows, n - i);
      const int64_t ahead_rows = i + kChunkRows < n ? kChunkRows : prefetch_r0 >= 0 ? prefetch_r0 - (r0 + i) : 0;
      add_scaled_bf16_rows(x + i, ldx, m, rows + (r0 + i) * w.cols, w.cols, rn, w.cols, y, ldy,
                           ahead_rows * w.cols * static_cast<int64_t>(sizeof(uint16_t)));
    }
    return;
  }
  if (prefetch_r0 >= 0) prefetch_rows(w, prefetch_r0, prefetch_r0 + n);
  // The rest are decoded to f32 a chunk at a time, into a buffer that stays in L1.
  std::vector<float> rows(static_cast<size_t>(std::min(n, kChunkRows) * w.cols));
  for (int64_t i = 0; i < n; i += kChunkRows) {
    const int64_t rn = std::min(kChunkRows, n - i);
    simd::decode_rows(w, r0 + i, r0 + i + rn, rows.data());
    add_scaled_rows(x + i, ldx, m, rows.data(), w.cols, rn, w.cols, y, ldy);
  }
}

namespace {

// A work chunk's estimated cost (matmul_batch's units, about 8 × weight bytes): 64 KB of weights, long enough for the
// prefetchers to pay off and short enough that the last one is a small part of a thread's pass.
constexpr double kChunkCost = 8.0 * 64 * 1024;
constexpr int kMaxChunksPerSlice = 256;

// Chunks [front, back) of one slice not yet taken: its thread takes from the front, others from the back, each with
// one compare-and-swap of the pair.
class ChunkRange {
 public:
  void init(size_t front, size_t back) { range_.store(pack(front, back), std::memory_order_relaxed); }
  bool take_front(size_t& chunk) {
    uint64_t r = range_.load(std::memory_order_relaxed);
    while (front(r) < back(r))
      if (range_.compare_exchange_weak(r, pack(front(r) + 1, back(r)), std::memory_order_relaxed)) {
        chunk = front(r);
        return true;
      }
    return false;
  }
  bool take_back(size_t& chunk) {
    uint64_t r = range_.load(std::memory_order_relaxed);
    while (front(r) < back(r))
      if (range_.compare_exchange_weak(r, pack(front(r), back(r) - 1), std::memory_order_relaxed)) {
        chunk = back(r) - 1;
        return true;
      }
    return false;
  }
  size_t left() const {
    const uint64_t r = range_.load(std::memory_order_relaxed);
    return front(r) < back(r) ? back(r) - front(r) : 0;
  }

 private:
  static uint64_t pack(size_t front, size_t back) { return static_cast<uint64_t>(front) << 32 | back; }
  static size_t front(uint64_t r) { return static_cast<size_t>(r >> 32); }
  static size_t back(uint64_t r) { return static_cast<size_t>(r & 0xffffffffu); }
  alignas(64) std::atomic<uint64_t> range_{0};
};

}  // namespace

void matmul_batch(std::span<const MatmulJob> jobs, ThreadPool& pool) {
  PreparedActivations prepared(jobs, &pool, /*defer=*/true);
  // The work is cut into chunks, each a run of one job's row groups, numbered job after job; each thread takes a
  // contiguous run of chunks of about equal estimated time, not of equal count: a batch mixes widths (a shared
  // expert's down is twice a routed one's) and token counts (experts in a prompt), and the slowest thread sets the
  // pace of the whole pass. A group's time is taken as its weight elements × (8 × bytes per element + tokens):
  // streaming its bytes plus one multiply-add per weight and token, in the rough ratio of this machine's bandwidth to
  // its integer and f32 throughput.
  struct JobChunks {
    int64_t groups = 0, chunk_groups = 1;  // the job's row groups, and per chunk (its last chunk may hold fewer)
    double group_cost = 0.0, first_cost = 0.0;  // per group; of the jobs before it
    size_t first_chunk = 0;                 // global index of its first chunk
  };
  std::vector<JobChunks> at(jobs.size() + 1);  // at[jobs.size()]: the totals
  int64_t max_k = 1, total_groups = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const MatmulJob& j = jobs[i];
    JobChunks& c = at[i];
    c.groups = j.m > 0 ? row_groups(j.w) : 0;
    if (c.groups > 0) {
      const double elements = static_cast<double>(j.w.rows * std::max<int64_t>(j.w.cols, 1));
      const double bytes_per_element = static_cast<double>(weight_bytes(j.w)) / elements;
      c.group_cost = elements / static_cast<double>(c.groups) * (8.0 * bytes_per_element + static_cast<double>(j.m));
    }
    at[i + 1].first_cost = c.first_cost + static_cast<double>(c.groups) * c.group_cost;
    total_groups += c.groups;
    max_k = std::max(max_k, j.w.cols);
  }
  if (total_groups == 0) return;
  const double total_cost = at[jobs.size()].first_cost;
  // Enough groups per slice to amortize the fork/join (grain_for), and never more slices than threads.
  const int slices = static_cast<int>(std::clamp<int64_t>(total_groups / grain_for(max_k), 1, pool.size()));

  // Chunks of about kChunkCost, a multiple of kChunkGroups groups, so that decode's four- and two-group tiles
  // (run_groups) find all their groups in one chunk: with 64 KB chunks a q8 group at K = 2048 (35 KB) otherwise often
  // ran alone. Cut per job, by arithmetic, so that setting up a pass costs the same for any number of chunks: walking
  // a few hundred cuts took about 2.5 µs per pass before, about 2% of a q4 decode step (with its allocations).
  // A prompt's chunk holds at least the panel of rows its kernel sweeps every token over: a chunk of fewer rows has
  // its tokens' activations (megabytes, from L3) read once per chunk instead of once per panel. Cut by cost alone,
  // a BF16 prompt's attention projections came in 16-row chunks (matmul_bench bf16a_expert at 256 tokens 1.10-1.14x
  // with whole panels, BF16 prefill of 512 tokens 1.04x; session 56).
  const double chunk_cost = std::max(kChunkCost, total_cost / slices / kMaxChunksPerSlice);
  for (size_t i = 0; i < jobs.size(); ++i) {
    JobChunks& c = at[i];
    if (c.groups > 0) {
      const int64_t panel_groups = (prompt_panel_rows(jobs[i]) + group_rows(jobs[i].w) - 1) / group_rows(jobs[i].w);
      const int64_t g = std::max<int64_t>({1, static_cast<int64_t>(chunk_cost / c.group_cost + 0.5), panel_groups});
      c.chunk_groups = (g + kChunkGroups - 1) / kChunkGroups * kChunkGroups;
    }
    at[i + 1].first_chunk = c.first_chunk + static_cast<size_t>((c.groups + c.chunk_groups - 1) / c.chunk_groups);
  }
  // The chunk at which an estimated cost `target` is reached (rounded to the nearer chunk boundary).
  auto chunk_at = [&](double target) -> size_t {
    size_t i = 0;
    while (i < jobs.size() && at[i + 1].first_cost <= target) ++i;
    if (i == jobs.size()) return at[i].first_chunk;
    const JobChunks& c = at[i];
    const double per_chunk = static_cast<double>(c.chunk_groups) * c.group_cost;
    const size_t in_job = static_cast<size_t>((target - c.first_cost) / per_chunk + 0.5);
    return c.first_chunk + std::min(in_job, at[i + 1].first_chunk - c.first_chunk);
  };

  // Each slice's chunks are taken by its thread from the front. A thread whose slice is done takes chunks from the
  // back of the slice with the most left: the threads' speeds differ from pass to pass (they share the memory's
  // bandwidth unevenly), and without this the first to finish idles while the other streams alone at one core's
  // bandwidth. Which thread computes a group does not change its result.
  std::vector<ChunkRange> ranges(static_cast<size_t>(slices));
  for (size_t s = 0, first = 0; s < ranges.size(); ++s) {
    const size_t last = s + 1 < ranges.size()
                            ? std::max(first, chunk_at(total_cost * static_cast<double>(s + 1) / slices))
                            : at[jobs.size()].first_chunk;
    ranges[s].init(first, last);
    first = last;
  }

  auto run_chunk = [&](size_t chunk, Scratch& scratch) {
    // The job holding the chunk: the last whose first chunk is at or before it (a job without groups shares its first
    // chunk index with the job after it, so the search passes over it).
    const auto before = [](size_t c, const JobChunks& j) { return c < j.first_chunk; };
    const size_t i = static_cast<size_t>(std::upper_bound(at.begin(), at.end() - 1, chunk, before) - at.begin()) - 1;
    const int64_t g0 = static_cast<int64_t>(chunk - at[i].first_chunk) * at[i].chunk_groups;
    prepared.ensure(i);
    run_groups(jobs[i], prepared.x[i], g0, std::min(at[i].groups, g0 + at[i].chunk_groups), scratch);
  };
  pool.parallel_for(
      slices,
      [&](int64_t s0, int64_t s1) {
        Scratch scratch;
        for (int64_t s = s0; s < s1; ++s)
          for (size_t c; ranges[s].take_front(c);) run_chunk(c, scratch);
        for (;;) {
          int victim = -1;
          size_t most = 0;
          for (int v = 0; v < slices; ++v)
            if (const size_t left = ranges[v].left(); left > most) most = left, victim = v;
          size_t c;
          if (victim < 0) break;
          if (ranges[victim].take_back(c)) run_chunk(c, scratch);
        }
      },
      1);
}

void matmul_reference(const Weight2D& w, const float* x, int64_t m, float* y) {
  const int64_t n = w.rows, k = w.cols;
  // q8/q4 rows through the quantizer's scalar dequantize_row (code · f16 scale is exact in f32), once per row.
  std::vector<float> row(is_quant(w.dtype) ? static_cast<size_t>(k) : 0);
  for (int64_t r = 0; r < n; ++r) {
    if (is_quant(w.dtype)) dequantize_row(w, r, row.data());
    for (int64_t i = 0; i < m; ++i) {
      double acc = 0.0;
      for (int64_t c = 0; c < k; ++c)
        acc += (row.empty() ? scalar_weight(w, r, c) : static_cast<double>(row[c])) * x[i * k + c];
      y[i * n + r] = static_cast<float>(acc);
    }
  }
}

const char* matmul_target_name() { return simd::target_name(); }

}  // namespace whale
