// simd::quantize_activations on every instruction set against a scalar reference of the format (quant_format.h,
// matmul_simd.h): per token and 32-column block, scale = amax / 127, codes x · (127 / amax) rounded to nearest even and
// clamped to ±127 (zero past k and in all-zero blocks), correction −bias · Σ codes; the tiled copy holds the same.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "whale/kernels/matmul_simd.h"
#include "whale/kernels/quant_format.h"
#include "whale/kernels/quantize.h"
#include "instruction_sets.h"

namespace whale {
namespace {

struct Reference {
  std::vector<int8_t> q;  // [m, blocks · 32]
  std::vector<float> scale;
  std::vector<int32_t> corr;
};

Reference reference(const std::vector<float>& x, int64_t m, int64_t k, int64_t ldx, int64_t blocks, int32_t bias) {
  Reference r;
  r.q.assign(static_cast<size_t>(m * blocks * kQuantBlock), 0);
  r.scale.assign(static_cast<size_t>(m * blocks), 0.0f);
  r.corr.assign(r.scale.size(), 0);
  for (int64_t t = 0; t < m; ++t)
    for (int64_t kb = 0; kb < blocks; ++kb) {
      const int64_t c0 = kb * kQuantBlock, c1 = std::min(k, c0 + kQuantBlock);
      float amax = 0.0f;
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[t * ldx + c]));
      if (amax == 0.0f) continue;
      const float inv = 127.0f / amax;
      int32_t sum = 0;
      for (int64_t c = c0; c < c1; ++c) {
        const float v = std::clamp(std::nearbyint(x[t * ldx + c] * inv), -127.0f, 127.0f);
        r.q[t * blocks * kQuantBlock + c] = static_cast<int8_t>(v);
        sum += static_cast<int32_t>(v);
      }
      r.scale[t * blocks + kb] = amax / 127.0f;
      r.corr[t * blocks + kb] = -bias * sum;
    }
  return r;
}

// Random values with blocks that test the edges: all zero, one value alone, exact halves of a code (ties go to the
// even code), and magnitudes from 1e-30 to 1e30.
std::vector<float> activations(int64_t m, int64_t k, int64_t ldx, std::mt19937& rng) {
  std::vector<float> x(static_cast<size_t>(m * ldx), NAN);  // NaN between rows: read only where ldx > k
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  for (int64_t t = 0; t < m; ++t) {
    float* row = x.data() + t * ldx;
    for (int64_t c = 0; c < k; ++c) row[c] = u(rng);
    for (int64_t c0 = 0; c0 < k; c0 += kQuantBlock) {
      const int64_t c1 = std::min(k, c0 + kQuantBlock);
      switch ((t + c0 / kQuantBlock) % 6) {
        case 0: std::fill(row + c0, row + c1, 0.0f); break;
        case 1: std::fill(row + c0, row + c1, 0.0f), row[c1 - 1] = -0.75f; break;
        case 2:  // amax 127: the scale is 1 and every x.5 is a tie
          for (int64_t c = c0; c < c1; ++c) row[c] = std::floor(u(rng) * 30.0f) + 0.5f;
          row[c0] = 127.0f;
          break;
        case 3: for (int64_t c = c0; c < c1; ++c) row[c] *= 1e30f; break;
        case 4: for (int64_t c = c0; c < c1; ++c) row[c] *= 1e-30f; break;
        default: break;
      }
    }
  }
  return x;
}

TEST(QuantizeActivations, MatchesScalarReferenceOnEveryInstructionSet) {
  std::mt19937 rng(25);
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (QuantType type : {QuantType::Q8, QuantType::Q4}) {
      const int32_t bias = type == QuantType::Q8 ? 128 : 8;
      // Whole blocks in runs of 16 and fewer (544: 17 blocks), partial last blocks (200, 1400), m below and above
      // the AMX padding of 16 tokens, and a row stride past k.
      for (int64_t k : {32, 200, 512, 544, 1400, 2048})
        for (int64_t m : {1, 3, 9, 17})
          for (int64_t pad : {0, 5}) {
            const int64_t ldx = k + pad, padded = quant_padded_cols(k), blocks = padded / kQuantBlock;
            SCOPED_TRACE(::testing::Message() << simd::target_name() << " " << quant_type_name(type) << " k " << k
                                              << " m " << m << " ldx " << ldx);
            const std::vector<float> x = activations(m, k, ldx, rng);
            const Reference want = reference(x, m, k, ldx, blocks, bias);
            simd::QuantizedActivations got;
            simd::quantize_activations(x.data(), m, k, ldx, type, padded, got);
            ASSERT_EQ(got.m, m);
            ASSERT_EQ(got.blocks, blocks);
            for (int64_t i = 0; i < m * padded; ++i) ASSERT_EQ(got.q[i], want.q[i]) << "code " << i;
            for (int64_t i = 0; i < m * blocks; ++i) {
              ASSERT_EQ(std::memcmp(&got.scale[i], &want.scale[i], sizeof(float)), 0)
                  << "scale " << i << ": " << got.scale[i] << " against " << want.scale[i];
              ASSERT_EQ(got.corr[i], want.corr[i]) << "correction " << i;
            }
            // Padding tokens (AMX loads whole tiles of 16) are zero.
            for (int64_t i = m * padded; i < simd::quantized_rows(m) * padded; ++i) ASSERT_EQ(got.q[i], 0);
            for (int64_t i = m * blocks; i < simd::quantized_rows(m) * blocks; ++i) {
              ASSERT_EQ(got.scale[i], 0.0f);
              ASSERT_EQ(got.corr[i], 0);
            }
            if (got.tiled_q.empty()) continue;
            for (int64_t t = 0; t < m; ++t)
              for (int64_t kb = 0; kb < blocks; ++kb) {
                const int64_t at = (t / simd::kQuantTileTokens * blocks + kb) * simd::kQuantTileTokens +
                                   t % simd::kQuantTileTokens;
                ASSERT_EQ(std::memcmp(&got.tiled_q[at * kQuantBlock], &want.q[(t * blocks + kb) * kQuantBlock],
                                      kQuantBlock),
                          0)
                    << "tiled codes, token " << t << " block " << kb;
                ASSERT_EQ(got.tiled_scale[at], want.scale[t * blocks + kb]);
                ASSERT_EQ(got.tiled_corr[at], want.corr[t * blocks + kb]);
              }
          }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace whale
