#include "whale/kernels/matmul.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "whale/core/dtype.h"
#include "whale/core/thread_pool.h"
#include "whale/kernels/matmul_amx.h"
#include "instruction_sets.h"
#include "matmul_test_util.h"

namespace whale {
namespace {

using namespace matmul_test;

const int64_t kM[] = {1, 2, 5};
const int64_t kN[] = {1, 3, 8, 13, 130};
const int64_t kK[] = {1, 2, 7, 31, 128, 129, 258};
const size_t kMisalign[] = {0, 1, 3};

TEST(Matmul, F32) {
  std::mt19937 rng(1);
  ThreadPool pool(3);
  for (int64_t m : kM)
    for (int64_t n : kN)
      for (int64_t k : kK)
        for (size_t mis : kMisalign) {
          SCOPED_TRACE(label(DType::F32, m, n, k, mis));
          check_matmul(make_weight(DType::F32, n, k, mis, rng), m, rng, pool);
          if (HasFatalFailure()) return;
        }
}

TEST(Matmul, BF16) {
  std::mt19937 rng(2);
  ThreadPool pool(3);
  for (int64_t m : kM)
    for (int64_t n : kN)
      for (int64_t k : kK)
        for (size_t mis : kMisalign) {
          SCOPED_TRACE(label(DType::BF16, m, n, k, mis));
          check_matmul(make_weight(DType::BF16, n, k, mis, rng), m, rng, pool);
          if (HasFatalFailure()) return;
        }
}

TEST(Matmul, F16) {
  std::mt19937 rng(3);
  ThreadPool pool(3);
  for (int64_t m : kM)
    for (int64_t n : kN)
      for (int64_t k : kK)
        for (size_t mis : kMisalign) {
          SCOPED_TRACE(label(DType::F16, m, n, k, mis));
          check_matmul(make_weight(DType::F16, n, k, mis, rng), m, rng, pool);
          if (HasFatalFailure()) return;
        }
}

TEST(Matmul, F8E4M3BlockScaled) {
  // 128×128 is the DeepSeek-V3 block (deepseek-spec §3.3); the small blocks put partial edge blocks in both
  // directions into every shape below.
  const std::pair<int, int> blocks[] = {{128, 128}, {4, 3}, {1, 1}, {5, 2}, {3, 128}};
  std::mt19937 rng(4);
  ThreadPool pool(3);
  for (const auto& [br, bc] : blocks)
    for (int64_t m : kM)
      for (int64_t n : kN)
        for (int64_t k : kK)
          for (size_t mis : kMisalign) {
            SCOPED_TRACE(label(DType::F8_E4M3, m, n, k, mis, br, bc));
            check_matmul(make_weight(DType::F8_E4M3, n, k, mis, rng, br, bc), m, rng, pool);
            if (HasFatalFailure()) return;
          }
}

TEST(Matmul, LargerShapesUseSeveralThreads) {
  // Enough rows that the 8-row tiles are spread over the pool; a partial last tile (N % 8 != 0), a partial last
  // 128-block in both directions (like kv_a_proj_with_mqa's 576 rows), and a K of no particular factor.
  std::mt19937 rng(5);
  ThreadPool pool(3);
  // 9 and 29 tokens take the panel path (tiles of 6 tokens and a partial one), whose K chunks (512) must leave each
  // row's result bitwise that of 1 token.
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
    for (int64_t m : {3, 9, 29}) {
      SCOPED_TRACE(label(dtype, m, 581, 1031, 1));
      check_matmul(make_weight(dtype, 581, 1031, 1, rng), m, rng, pool);
    }
}

TEST(Matmul, SameResultForEveryPoolSize) {
  std::mt19937 rng(6);
  const TestWeight t = make_weight(DType::F8_E4M3, 203, 517, 1, rng);
  const std::vector<float> x = random_activations(4 * 517, rng);
  std::vector<float> first;
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    std::vector<float> y(4 * 203);
    matmul(t.w, x.data(), 4, y.data(), pool);
    if (first.empty()) first = y;
    for (size_t j = 0; j < y.size(); ++j) ASSERT_EQ(y[j], first[j]) << threads << " threads, output " << j;
  }
}

TEST(Matmul, ZeroRowsOfActivations) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  const TestWeight t = make_weight(DType::BF16, 16, 8, 0, rng);
  float sentinel = 42.0f;
  matmul(t.w, nullptr, 0, &sentinel, pool);
  matmul_reference(t.w, nullptr, 0, &sentinel);
  EXPECT_EQ(sentinel, 42.0f);
}

TEST(DecodeRows, MatchesIndependentDecoder) {
  // Decoding is exact for F32/BF16/F16. For FP8, code × scale is one f32 multiplication of two f32 values, whose
  // exact product fits in a double: the result is that product rounded once to f32.
  std::mt19937 rng(8);
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
    for (size_t mis : {0, 1, 2, 3})
      for (const auto& [br, bc] : {std::pair{128, 128}, std::pair{4, 3}, std::pair{1, 5}}) {
        const int64_t rows = 37, cols = 133;
        const TestWeight t = make_weight(dtype, rows, cols, mis, rng, br, bc);
        const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, rows}, {0, 1}, {5, 6}, {3, 11}, {36, 37}, {7, 7}};
        for (const auto& [r0, r1] : ranges) {
          SCOPED_TRACE(label(dtype, 0, rows, cols, mis, br, bc) + " rows " + std::to_string(r0) + ".." +
                       std::to_string(r1));
          std::vector<float> out(static_cast<size_t>((r1 - r0) * cols + 1), NAN);
          out.back() = 1234.5f;  // guard: nothing may be written past (r1 - r0) rows
          decode_rows(t.w, r0, r1, out.data());
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = 0; c < cols; ++c)
              ASSERT_EQ(out[(r - r0) * cols + c], static_cast<float>(t.values[r * cols + c])) << r << "," << c;
          ASSERT_EQ(out.back(), 1234.5f);
        }
        if (dtype != DType::F8_E4M3) break;  // block sizes only matter for FP8
      }
}

TEST(Dot, MatchesDouble) {
  std::mt19937 rng(9);
  for (int64_t n : {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 64, 65, 1000, 4097}) {
    const std::vector<float> a = random_activations(n, rng), b = random_activations(n, rng);
    double exact = 0.0, abs = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      exact += static_cast<double>(a[i]) * b[i];
      abs += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    // f32 dot product of n terms: |error| ≤ γ_n · Σ|a_i b_i|; the double reference adds γ^(double)_n · Σ|a_i b_i|.
    const double tol = (gamma(static_cast<double>(n), kF32Eps) + gamma(static_cast<double>(n), kF64Eps)) * abs;
    EXPECT_LE(std::fabs(dot(a.data(), b.data(), n) - exact), tol) << "n " << n;
  }
}

// An exact job keeps BF16 weights in f32 arithmetic at prompt sizes too (where the CPU has AMX-BF16, a plain job
// rounds the activations to split bf16 there): a token's result is the same bits in any batch.
TEST(MatmulBatch, ExactBF16JobsDoNotDependOnBatching) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  const int64_t n = 16, k = 256, m = 40;
  const TestWeight t = make_weight(DType::BF16, n, k, 0, rng);
  const std::vector<float> x = random_activations(m * k, rng);
  std::vector<float> single(static_cast<size_t>(m * n)), y(static_cast<size_t>(m * n), NAN);
  for (int64_t i = 0; i < m; ++i) {
    const MatmulJob one{t.w, x.data() + i * k, 1, single.data() + i * n, /*exact=*/true};
    matmul_batch({&one, 1}, pool);
  }
  const MatmulJob all{t.w, x.data(), m, y.data(), /*exact=*/true};
  matmul_batch({&all, 1}, pool);
  for (int64_t j = 0; j < m * n; ++j) ASSERT_EQ(y[j], single[j]) << "y[" << j / n << "][" << j % n << "]";
}

// One and two tokens over rows longer than the decode tiles' 2 KB prefetch distance in every float format (2600
// elements: 2.6-10.4 KB), so that each 8-row tile switches its distance to the next tile within the row; 19 rows: two
// whole tiles and a partial one.
TEST(Matmul, DecodeTilesOverLongRows) {
  std::mt19937 rng(6);
  ThreadPool pool(2);
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
    for (int64_t m : {1, 2}) {
      SCOPED_TRACE(label(dtype, m, 19, 2600, 0));
      check_matmul(make_weight(dtype, 19, 2600, 0, rng), m, rng, pool);
      if (HasFatalFailure()) return;
    }
}

// Every instruction set Highway compiled and this CPU supports (AVX-512 VNNI, AVX-512, AVX2, SSE4, ... or NEON)
// passes the same checks: the scalar reference is the oracle for each SIMD path, not just the one dispatched.
TEST(Matmul, EveryInstructionSet) {
  const std::vector<int64_t> targets = supported_targets();
  ASSERT_FALSE(targets.empty());
  std::mt19937 rng(12);
  ThreadPool pool(2);
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(std::string("target ") + matmul_target_name());
    for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
      for (int64_t m : {1, 3, 6}) {
        check_matmul(make_weight(dtype, 21, 67, 1, rng, 128, 32), m, rng, pool);
        if (HasFatalFailure()) break;
      }
    for (DType dtype : {DType::Q8, DType::Q4})
      for (int64_t m : {1, 4, 6}) {
        check_quant_matmul(make_quant_weight(dtype, 21, 100, rng), m, rng, pool);
        if (HasFatalFailure()) break;
      }
    if (HasFatalFailure()) break;
  }
  hwy::SetSupportedTargetsForTest(0);
}

// BF16 weights times a prompt-sized batch (amx::kBf16MinTokens or more tokens, k a multiple of 32) run on AMX tiles
// where the CPU has them, with each activation split into two bf16: every product is then accurate to about 2^-16
// relative (|x - hi - lo| <= 2^-17 |x|), accumulated in f32. Covers partial row groups, partial token tiles, an odd
// number of token tiles, and rows sliced off a larger weight; the same bound holds on CPUs without AMX.
TEST(Matmul, BF16PromptBatches) {
  std::mt19937 rng(16);
  ThreadPool pool(2);
  for (int64_t m : {amx::kBf16MinTokens, int64_t{47}, int64_t{70}})
    for (int64_t n : {16, 37})
      for (int64_t k : {32, 96, 2048}) {
        SCOPED_TRACE(label(DType::BF16, m, n, k, 0) + (amx::bf16_usable(k) ? " (AMX)" : ""));
        const TestWeight t = make_weight(DType::BF16, n, k, 0, rng);
        const std::vector<float> x = random_activations(m * k, rng);
        const Expected e = exact_product(t, x, m);
        std::vector<float> y(static_cast<size_t>(m * n), NAN);
        matmul(t.w, x.data(), m, y.data(), pool);
        for (int64_t j = 0; j < m * n; ++j)
          ASSERT_LE(std::fabs(y[j] - e.y[j]), (0x1p-16 + gamma(k + 2.0, kF32Eps)) * e.abs[j])
              << "y[" << j / n << "][" << j % n << "]";
      }
}

// Weights large enough that each thread's share is cut into many chunks, with more threads than CPUs so that threads
// are descheduled and others take chunks from their shares: every output equals the one-thread product bitwise, and
// a job without tokens writes nothing.
TEST(MatmulBatch, ChunkedAndTakenSharesChangeNoResult) {
  std::mt19937 rng(29);
  for (DType dtype : {DType::Q4, DType::BF16}) {
    std::vector<TestWeight> ws;
    for (int64_t rows : {2048, 1040, 16, 2000})
      ws.push_back(dtype == DType::BF16 ? make_weight(dtype, rows, 512, 0, rng) : make_quant_weight(dtype, rows, 512, rng));
    const std::vector<float> x = random_activations(2 * 512, rng);
    const int64_t ms[] = {1, 2, 0, 1};
    std::vector<std::vector<float>> want(ws.size());
    for (size_t i = 0; i < ws.size(); ++i) {
      want[i].assign(static_cast<size_t>(std::max<int64_t>(ms[i], 1) * ws[i].w.rows), -7.0f);
      matmul_serial(ws[i].w, x.data(), ms[i], want[i].data());
    }
    for (int threads : {1, 2, 5}) {
      ThreadPool pool(threads);
      for (int rep = 0; rep < 3; ++rep) {
        std::vector<std::vector<float>> got(ws.size());
        std::vector<MatmulJob> jobs;
        for (size_t i = 0; i < ws.size(); ++i) {
          got[i].assign(want[i].size(), -7.0f);
          jobs.push_back({ws[i].w, x.data(), ms[i], got[i].data()});
        }
        matmul_batch(jobs, pool);
        for (size_t i = 0; i < ws.size(); ++i)
          ASSERT_EQ(got[i], want[i]) << dtype_name(dtype) << " threads " << threads << " job " << i;
      }
    }
  }
}

TEST(MatmulBatch, EqualsSeparateProducts) {
  std::mt19937 rng(13);
  ThreadPool pool(3);
  for (DType dtype : {DType::BF16, DType::Q8, DType::Q4})
    for (int64_t m : {1, 2, 7}) {
      std::vector<TestWeight> ws;
      for (int64_t rows : {5, 64, 3}) ws.push_back(dtype == DType::BF16 ? make_weight(dtype, rows, 96, 0, rng)
                                                                          : make_quant_weight(dtype, rows, 96, rng));
      const std::vector<float> x = random_activations(m * 96, rng), x2 = random_activations(m * 96, rng);
      std::vector<std::vector<float>> batched(ws.size()), separate(ws.size());
      std::vector<MatmulJob> jobs;
      for (size_t i = 0; i < ws.size(); ++i) {
        batched[i].assign(static_cast<size_t>(m * ws[i].w.rows), NAN);
        separate[i].assign(batched[i].size(), NAN);
        const float* xi = i == 2 ? x2.data() : x.data();  // jobs 0 and 1 share their activations
        jobs.push_back({ws[i].w, xi, m, batched[i].data()});
        matmul(ws[i].w, xi, m, separate[i].data(), pool);
      }
      matmul_batch(jobs, pool);
      for (size_t i = 0; i < ws.size(); ++i)
        for (size_t j = 0; j < batched[i].size(); ++j)
          ASSERT_EQ(batched[i][j], separate[i][j]) << dtype_name(dtype) << " m " << m << " job " << i << " " << j;
    }
}

// A batch with many activation matrices to convert (a batched step's experts, each with its own tokens) converts them
// on the pool's threads: the same bits as each product alone.
TEST(MatmulBatch, ManyConversionsOnThePoolEqualSeparateProducts) {
  std::mt19937 rng(18);
  ThreadPool pool(2);
  for (DType dtype : {DType::Q8, DType::Q4}) {
    const int64_t k = 520, rows = 40;
    std::vector<TestWeight> ws;
    std::vector<std::vector<float>> xs, batched, separate;
    std::vector<MatmulJob> jobs;
    for (int64_t e = 0; e < 7; ++e) {  // 7 experts of 5-17 tokens: about 58k values in all
      const int64_t m = 5 + 2 * e;
      ws.push_back(make_quant_weight(dtype, rows, k, rng));
      xs.push_back(random_activations(m * k, rng));
      batched.emplace_back(static_cast<size_t>(m * rows), NAN);
      separate.emplace_back(static_cast<size_t>(m * rows), NAN);
    }
    for (size_t e = 0; e < ws.size(); ++e) {
      const int64_t m = static_cast<int64_t>(xs[e].size()) / k;
      jobs.push_back({ws[e].w, xs[e].data(), m, batched[e].data()});
      matmul(ws[e].w, xs[e].data(), m, separate[e].data(), pool);
    }
    matmul_batch(jobs, pool);
    for (size_t e = 0; e < ws.size(); ++e)
      for (size_t j = 0; j < batched[e].size(); ++j)
        ASSERT_EQ(batched[e][j], separate[e][j]) << dtype_name(dtype) << " job " << e << " " << j;
  }
}

}  // namespace
}  // namespace whale
