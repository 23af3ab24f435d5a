// Google Benchmark of the matmul kernels at DeepSeek-V2-Lite's expert shape (1408 × 2048) and its LM head's width:
// decode (1 token: bytes/s is what matters) and prefill (many tokens: FLOP/s). Random weights; the numbers do not
// depend on the values. Run: build/release/bench/matmul_bench [--benchmark_filter=...]
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "whale/core/cache_line.h"
#include "whale/core/heap_policy.h"
#include "whale/core/thread_pool.h"
#include "whale/kernels/activations.h"
#include "whale/kernels/matmul.h"
#include "whale/kernels/matmul_simd.h"
#include "whale/kernels/quant_format.h"
#include "whale/kernels/quantize.h"

namespace whale {
namespace {

struct BenchWeight {
  Weight2D w;
  std::vector<uint8_t> bytes;
  int64_t size = 0;  // bytes read by one pass
};

BenchWeight make(DType dtype, int64_t rows, int64_t cols) {
  BenchWeight b;
  std::mt19937 rng(1);
  b.w.dtype = dtype;
  b.w.rows = rows;
  b.w.cols = cols;
  if (dtype == DType::Q8 || dtype == DType::Q4) {
    b.bytes.resize(static_cast<size_t>(quant_data_bytes(*quant_type_of(dtype), rows, cols)));
    b.size = static_cast<int64_t>(b.bytes.size());
  } else {
    b.bytes.resize(static_cast<size_t>(rows * cols * 2));
    b.size = static_cast<int64_t>(b.bytes.size());
  }
  // BF16: normal numbers of magnitude 2^-8 .. 1 (subnormals would measure the CPU's slow path); q8/q4: any codes.
  for (size_t i = 0; i < b.bytes.size(); ++i)
    b.bytes[i] = static_cast<uint8_t>(dtype == DType::BF16 && i % 2 ? 0x3C + rng() % 4 : rng() % 256);
  if (const std::optional<QuantType> q = quant_type_of(dtype))
    set_quant_scales(*q, rows, cols, b.bytes.data(), 0x2000);  // f16 2^-7
  b.w.data = b.bytes.data();
  return b;
}

// Several distinct weights cycled so that decode reads from memory, not cache.
// bf16_activations: BF16 prompts with the activations rounded to bf16 (Weight2D::bf16_activations).
void BM_Matmul(benchmark::State& state, DType dtype, int64_t rows, int64_t cols, bool bf16_activations = false) {
  const int64_t m = state.range(0), threads = state.range(1);
  const int copies = m <= 4 ? 24 : 1;
  std::vector<BenchWeight> ws;
  for (int i = 0; i < copies; ++i) ws.push_back(make(dtype, rows, cols));
  for (BenchWeight& b : ws) b.w.bf16_activations = bf16_activations;
  std::vector<float> x(static_cast<size_t>(m * cols), 0.5f), y(static_cast<size_t>(m * rows));
  ThreadPool pool(static_cast<int>(threads));
  size_t i = 0;
  for (auto _ : state) {
    matmul(ws[i++ % ws.size()].w, x.data(), m, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * ws[0].size);
  state.counters["GFLOP/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * m * rows * cols / 1e9, benchmark::Counter::kIsRate);
}

// The absorbed attention's per-head x·W_UK (add_scaled_weight_rows over one head's 128 rows of V2-Lite's kv_b_proj,
// 4096 × 512): m query tokens at once, 16 heads cycled (2-4 MB: from the last-level cache, not L2).
void BM_AbsorbedHeadXw(benchmark::State& state, DType dtype) {
  const int64_t m = state.range(0), heads = 16, dn = 128, rows_per_head = 256, rank = 512;
  const BenchWeight kv_b = make(dtype, heads * rows_per_head, rank);
  std::vector<float> x(static_cast<size_t>(m * dn), 0.5f), y(static_cast<size_t>(m * rank));
  int64_t h = 0;
  for (auto _ : state) {
    add_scaled_weight_rows(kv_b.w, h * rows_per_head, h * rows_per_head + dn, x.data(), dn, m, y.data(), rank, -1);
    h = (h + 1) % heads;
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * m * dn * rank / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_AbsorbedHeadXw, q8, DType::Q8)->Arg(1)->Arg(4)->Arg(16)->UseRealTime();
BENCHMARK_CAPTURE(BM_AbsorbedHeadXw, q4, DType::Q4)->Arg(1)->Arg(4)->Arg(16)->UseRealTime();
BENCHMARK_CAPTURE(BM_AbsorbedHeadXw, bf16, DType::BF16)->Arg(1)->Arg(4)->Arg(16)->Arg(63)->UseRealTime();

// The absorbed attention's per-head W_UV product in decode (matmul_serial_wide_activations over one head's 128 W_UV
// rows of V2-Lite's kv_b_proj; q8/q4 activations rounded to about 16 bits, BF16 ones f32): m tokens, 16 heads cycled
// (the whole kv_b_proj is 2-4 MB, more than L2), so that what is measured is the rounding and the tiles.
void BM_AbsorbedHeadWide(benchmark::State& state, DType dtype) {
  const int64_t m = state.range(0), heads = 16, dn = 128, dv = 128, rows_per_head = 256, rank = 512;
  const BenchWeight kv_b = make(dtype, heads * rows_per_head, rank);
  std::vector<float> x(static_cast<size_t>(m * rank)), y(static_cast<size_t>(m * dv));
  std::mt19937 rng(2);
  for (float& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  int64_t h = 0;
  for (auto _ : state) {
    const int64_t r0 = h * rows_per_head + dn;
    matmul_serial_wide_activations(*weight_rows(kv_b.w, r0, r0 + dv), x.data(), m, y.data());
    h = (h + 1) % heads;
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * m * dv * rank / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_AbsorbedHeadWide, q8, DType::Q8)->Arg(1)->Arg(4)->Arg(16)->UseRealTime();
BENCHMARK_CAPTURE(BM_AbsorbedHeadWide, q4, DType::Q4)->Arg(1)->Arg(4)->Arg(16)->UseRealTime();
BENCHMARK_CAPTURE(BM_AbsorbedHeadWide, bf16, DType::BF16)->Arg(1)->Arg(4)->Arg(16)->UseRealTime();

// Attention scores over a long cache as the long-cache decode form computes them (row_dots: 16 heads' latent queries,
// 576 wide, against a thread's 1024 cached tokens, in pages of 64). Args: layers, 27 cycling 27 layers' caches (64 MB,
// read from memory) or 1 (2.4 MB, in the last-level cache); and the rows' offset in floats from a cache-line boundary,
// 0 as the latent cache and the queries are allocated, 4 as malloc's 16-byte alignment left them before.
void BM_ScoresLongCache(benchmark::State& state) {
  const int64_t m = 16, k = 576, n = 1024, page = 64, layers = state.range(0), offset = state.range(1);
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-1, 1);
  AlignedVector<float> q(static_cast<size_t>(m * k + offset));
  std::vector<float> out(static_cast<size_t>(m * n));
  std::vector<AlignedVector<float>> keys(static_cast<size_t>(layers),
                                         AlignedVector<float>(static_cast<size_t>(n * k + offset)));
  for (float& v : q) v = u(rng);
  for (auto& layer : keys)
    for (float& v : layer) v = u(rng);
  size_t l = 0;
  for (auto _ : state) {
    const float* kl = keys[l++ % keys.size()].data() + offset;
    for (int64_t p = 0; p < n; p += page)  // each page's call prefetching the next, as score_cached does
      row_dots(q.data() + offset, k, m, kl + p * k, k, page, k, out.data() + p, n,
               p + page < n ? kl + (p + page) * k : nullptr, page * k * static_cast<int64_t>(sizeof(float)));
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GMAC/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * m * n * k / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ScoresLongCache)->Args({27, 0})->Args({27, 4})->Args({1, 0})->Args({1, 4})->UseRealTime();

// The long-cache decode form's mix as a thread computes it (add_scaled_rows_at: 16 heads' probabilities over 2048
// cached latents, a thread's 256 of the 512 latent columns, the rows in pages of 64 tokens × 576 floats). Arg: layers,
// 27 cycling 27 layers' caches (127 MB, read from memory) or 1 (4.7 MB, in the last-level cache).
void BM_MixLongCache(benchmark::State& state) {
  const int64_t m = 16, row = 576, n_ctx = 2048, cols = 256, page = 64, layers = state.range(0);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> p(static_cast<size_t>(m * n_ctx)), y(static_cast<size_t>(m * cols));
  for (float& v : p) v = u(rng) / n_ctx;
  std::vector<AlignedVector<float>> pages(static_cast<size_t>(n_ctx / page),
                                          AlignedVector<float>(static_cast<size_t>(layers * page * row)));
  for (auto& pg : pages)
    for (float& v : pg) v = u(rng);
  std::vector<const float*> rows(static_cast<size_t>(n_ctx));
  int64_t l = 0;
  for (auto _ : state) {
    const int64_t layer = l++ % layers;
    for (int64_t j = 0; j < n_ctx; ++j) rows[j] = pages[j / page].data() + (layer * page + j % page) * row;
    add_scaled_rows_at(p.data(), n_ctx, m, rows.data(), n_ctx, cols, y.data(), cols);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GMAC/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * m * n_ctx * cols / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MixLongCache)->Arg(27)->Arg(1)->UseRealTime();

// Rounding one decode token's activations (V2-Lite's hidden width) to the int8 blocks q8/q4 products read: done once
// per product on the calling thread, about 270 times per q4 token.
void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1);
  std::vector<float> x(static_cast<size_t>(m * k));
  std::mt19937 rng(3);
  for (float& v : x) v = std::uniform_real_distribution<float>(-4, 4)(rng);
  simd::QuantizedActivations out;
  for (auto _ : state) {
    simd::quantize_activations(x.data(), m, k, k, QuantType::Q4, quant_padded_cols(k), out);
    benchmark::DoNotOptimize(out.q.data());
  }
  state.SetItemsProcessed(state.iterations() * m * k);
}
BENCHMARK(BM_QuantizeActivations)->Args({1, 2048})->Args({1, 1408})->Args({2, 512})->UseRealTime();

void args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int m : {1, 4, 6, 8, 16, 32, 64, 256}) b->Args({m, threads});
  b->UseRealTime();
}

BENCHMARK_CAPTURE(BM_Matmul, bf16_expert, DType::BF16, 1408, 2048)->Apply(args);
BENCHMARK_CAPTURE(BM_Matmul, bf16a_expert, DType::BF16, 1408, 2048, true)->Apply(args);
BENCHMARK_CAPTURE(BM_Matmul, bf16_dense, DType::BF16, 2048, 10944)->Args({512, 2})->UseRealTime();
BENCHMARK_CAPTURE(BM_Matmul, bf16a_dense, DType::BF16, 2048, 10944, true)->Args({512, 2})->UseRealTime();
BENCHMARK_CAPTURE(BM_Matmul, q8_expert, DType::Q8, 1408, 2048)->Apply(args);
BENCHMARK_CAPTURE(BM_Matmul, q4_expert, DType::Q4, 1408, 2048)->Apply(args);
// The LM head (V3's vocabulary × V2-Lite's width, 150 MB at q4): weights streamed from memory at every token count,
// as a batched decode step reads them.
BENCHMARK_CAPTURE(BM_Matmul, q4_lm_head, DType::Q4, 129280, 2048)->Args({1, 2})->Args({8, 2})->Args({16, 2})->UseRealTime();

}  // namespace
}  // namespace whale

// As the whale binary: matmul_batch's per-call buffers (the activations rounded to int8, hundreds of KB for a prompt)
// stay in the heap instead of costing fresh pages on every iteration.
int main(int argc, char** argv) {
  whale::keep_large_allocations_in_heap();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
