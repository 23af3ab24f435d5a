#include "whale/runtime/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "whale/core/error.h"

namespace whale {
namespace {

constexpr float kMasked = -std::numeric_limits<float>::infinity();
constexpr int kDraws = 200000;  // N of the statistical tests
constexpr double kLogprobTol = 1e-5;

// ---- An independent double-precision reference, written from the order of operations in sampler.h --------------

// log-softmax of z / t in double; -inf stays -inf.
std::vector<double> log_softmax(const std::vector<double>& z, double t) {
  double mx = -std::numeric_limits<double>::infinity();
  for (double v : z) mx = std::max(mx, v / t);
  double sum = 0.0;
  for (double v : z) sum += std::exp(v / t - mx);
  std::vector<double> out;
  for (double v : z) out.push_back(v / t - mx - std::log(sum));
  return out;
}

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// The probability of drawing each token: softmax of logits / temperature, then top-k, top-p (prefix mass of the
// top-k-renormalised distribution >= top_p - 1e-6, the documented slack), min-p, renormalised. Full stable sort.
std::vector<double> reference_distribution(const std::vector<float>& logits, const SamplingParams& sp) {
  const std::vector<double> lp = log_softmax(widen(logits), sp.temperature);
  std::vector<double> p(lp.size());
  for (size_t i = 0; i < lp.size(); ++i) p[i] = std::exp(lp[i]);
  std::vector<int> order;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) order.push_back(static_cast<int>(i));
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return lp[a] > lp[b]; });  // ties: lower id
  size_t keep = order.size();
  if (sp.top_k > 0) keep = std::min(keep, static_cast<size_t>(sp.top_k));
  if (sp.top_p < 1.0f) {
    double mass = 0.0, cum = 0.0;
    for (size_t j = 0; j < keep; ++j) mass += p[order[j]];
    for (size_t j = 0; j < keep; ++j) {
      cum += p[order[j]];
      if (cum / mass >= double{sp.top_p} - 1e-6) {
        keep = j + 1;
        break;
      }
    }
  }
  std::vector<double> out(p.size(), 0.0);
  const double p_max = p[order[0]];
  double kept = 0.0;
  for (size_t j = 0; j < keep; ++j)
    if (p[order[j]] >= double{sp.min_p} * p_max) kept += out[order[j]] = p[order[j]];
  for (double& v : out) v /= kept;
  return out;
}

// Draws kDraws tokens and checks every frequency f against the expected p: |f - p| <= 5 sigma + 1e-4 with the
// binomial sigma = sqrt(p (1 - p) / N) (5 sigma: about 6e-7 two-sided per token), and p == 0 tokens never drawn.
void expect_frequencies(const SamplingParams& sp, const std::vector<float>& logits, const std::vector<double>& p) {
  Sampler sampler(sp);
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts.at(static_cast<size_t>(sampler.sample(logits, {}).id));
  for (size_t t = 0; t < logits.size(); ++t) {
    const double f = static_cast<double>(counts[t]) / kDraws;
    if (p[t] == 0.0) {
      EXPECT_EQ(counts[t], 0) << "token " << t << " is outside the kept set";
    } else {
      const double tol = 5.0 * std::sqrt(p[t] * (1.0 - p[t]) / kDraws) + 1e-4;
      EXPECT_NEAR(f, p[t], tol) << "token " << t;
    }
  }
}

void expect_reference_frequencies(const SamplingParams& sp, const std::vector<float>& logits) {
  expect_frequencies(sp, logits, reference_distribution(logits, sp));
}

// Eight tokens, not sorted by id, one masked.
const std::vector<float> kLogits8 = {0.5f, 2.0f, -1.0f, 1.0f, kMasked, 1.5f, 0.0f, -0.5f};

SamplingParams params(float temperature, int top_k, float top_p, float min_p, uint64_t seed = 1) {
  SamplingParams sp;
  sp.temperature = temperature;
  sp.top_k = top_k;
  sp.top_p = top_p;
  sp.min_p = min_p;
  sp.seed = seed;
  return sp;
}

// Logits from mt19937 (whose output the standard fixes): roughly normal, sd `scale`.
std::vector<float> random_logits(size_t n, uint32_t seed, float scale) {
  std::mt19937 g(seed);
  std::vector<float> out(n);
  for (float& v : out) {
    double s = 0.0;
    for (int k = 0; k < 4; ++k) s += static_cast<double>(g() >> 8) * 0x1p-24;
    v = static_cast<float>((s - 2.0) * std::sqrt(3.0) * scale);
  }
  return out;
}

// ---- validate -----------------------------------------------------------------------------------------------------

TEST(SamplerValidate, EachFieldOutOfRangeNamesIt) {
  struct Case {
    std::string field;
    std::function<void(SamplingParams&)> set;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<Case> cases = {
      {"temperature", [](SamplingParams& p) { p.temperature = -1.0f; }},
      {"temperature", [](SamplingParams& p) { p.temperature = 100.5f; }},
      {"temperature", [&](SamplingParams& p) { p.temperature = nan; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -1; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0.0f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.01f; }},
      {"top_p", [&](SamplingParams& p) { p.top_p = nan; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.1f; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.5f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0.0f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = -1.0f; }},
      {"repetition_penalty", [&](SamplingParams& p) { p.repetition_penalty = inf; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = -2.5f; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = 2.01f; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = 3.0f; }},
      {"frequency_penalty", [&](SamplingParams& p) { p.frequency_penalty = nan; }},
      {"top_logprobs", [](SamplingParams& p) { p.top_logprobs = -1; }},
      {"top_logprobs", [](SamplingParams& p) { p.top_logprobs = 21; }},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.set(p);
    try {
      validate(p);
      ADD_FAILURE() << c.field << ": no error";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(c.field + " = ", 0), 0u) << what;
      EXPECT_NE(what.find("out of range"), std::string::npos) << what;
    }
    EXPECT_THROW(Sampler{p}, Error) << c.field;
  }
}

TEST(SamplerValidate, MessageAndEdgesOfRanges) {
  SamplingParams p;
  p.temperature = -1.0f;
  try {
    validate(p);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "temperature = -1 is out of range [0, 100]");
  }
  // The edges themselves are valid.
  for (float t : {0.0f, 100.0f}) {
    SamplingParams q;
    q.temperature = t;
    q.top_p = 1.0f;
    q.min_p = 1.0f;
    q.presence_penalty = -2.0f;
    q.frequency_penalty = 2.0f;
    q.top_logprobs = 20;
    q.top_k = 1000000;
    q.repetition_penalty = 1e-3f;
    EXPECT_NO_THROW(validate(q));
  }
  SamplingParams tiny_p;
  tiny_p.top_p = 1e-7f;
  EXPECT_NO_THROW(validate(tiny_p));
}

// ---- greedy -------------------------------------------------------------------------------------------------------

TEST(SamplerGreedy, ArgmaxTiesToLowestIdWhateverTheSeed) {
  const std::vector<float> logits = {1.0f, 3.0f, kMasked, 3.0f, 2.0f, 3.0f};
  for (uint64_t seed : {0ull, 1ull, 12345ull, ~0ull}) {
    SamplingParams sp = params(0.0f, 3, 0.5f, 0.2f, seed);  // truncation cannot change the argmax
    Sampler sampler(sp);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(sampler.sample(logits, {}).id, 1);
  }
  const std::vector<float> last = {-5.0f, kMasked, 0.25f};
  Sampler sampler(params(0.0f, 0, 1.0f, 0.0f));
  EXPECT_EQ(sampler.sample(last, {}).id, 2);
}

TEST(SamplerGreedy, LogprobsAreThoseOfTemperatureOne) {
  const std::vector<float> logits = {0.3f, 1.7f, -0.4f, 1.1f};
  SamplingParams sp = params(0.0f, 0, 1.0f, 0.0f);
  sp.top_logprobs = 2;
  Sampler sampler(sp);
  const SampledToken tok = sampler.sample(logits, {});
  const std::vector<double> ref = log_softmax(widen(logits), 1.0);
  EXPECT_EQ(tok.id, 1);
  EXPECT_NEAR(tok.logprob, ref[1], kLogprobTol);
  ASSERT_EQ(tok.top.size(), 2u);
  EXPECT_EQ(tok.top[0].id, 1);
  EXPECT_EQ(tok.top[1].id, 3);
  EXPECT_NEAR(tok.top[1].logprob, ref[3], kLogprobTol);
}

TEST(SamplerGreedy, WithoutLogprobsTheSameTokensAndNoLogprob) {
  // Greedy with logprobs off skips the exps over the vocabulary: the same ids, penalties still applied, and the
  // logprob reported as NaN. Token 1 leads until its repetition penalty (history) halves it below token 3.
  const std::vector<float> logits = {0.3f, 1.7f, kMasked, 1.1f, 1.7f};
  const std::vector<std::vector<int32_t>> histories = {{}, {1}, {1, 4}, {0, 3}};
  for (const auto& history : histories) {
    SamplingParams with = params(0.0f, 0, 1.0f, 0.0f);
    with.repetition_penalty = 2.0f;
    SamplingParams without = with;
    without.logprobs = false;
    Sampler a(with), b(without);
    const SampledToken ta = a.sample(logits, history), tb = b.sample(logits, history);
    EXPECT_EQ(ta.id, tb.id);
    EXPECT_FALSE(std::isnan(ta.logprob));
    EXPECT_TRUE(std::isnan(tb.logprob));
    EXPECT_TRUE(tb.top.empty());
  }
  // The same checks of the logits as with logprobs.
  SamplingParams without = params(0.0f, 0, 1.0f, 0.0f);
  without.logprobs = false;
  Sampler s(without);
  EXPECT_THROW(s.sample(std::vector<float>{0.0f, std::numeric_limits<float>::quiet_NaN()}, {}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{kMasked, kMasked}, {}), Error);
  // Alternatives without logprobs are refused.
  without.top_logprobs = 2;
  EXPECT_THROW(validate(without), Error);
}

// ---- the generator and reproducibility ----------------------------------------------------------------------------

TEST(SamplerRng, MatchesTheReferenceAlgorithm) {
  // From a Python transcription of splitmix64.c and xoshiro256starstar.c (its splitmix64 gives the published
  // 6457827717110365317, 3203168211198807973, ... for seed 1234567).
  Xoshiro256StarStar r0(0);
  EXPECT_EQ(r0.next(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(r0.next(), 0xbf6e1f784956452aull);
  EXPECT_EQ(r0.next(), 0x1a5f849d4933e6e0ull);
  EXPECT_EQ(r0.next(), 0x6aa594f1262d2d2cull);
  Xoshiro256StarStar r42(42);
  EXPECT_EQ(r42.next(), 0x15780b2e0c2ec716ull);
  EXPECT_EQ(r42.next(), 0x6104d9866d113a7eull);
  Xoshiro256StarStar a(42);
  EXPECT_EQ(a.next_double(), static_cast<double>(0x15780b2e0c2ec716ull >> 11) * 0x1p-53);
  for (int i = 0; i < 10000; ++i) {
    const double u = a.next_double();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

std::vector<int32_t> draw_sequence(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.sample(logits, {}).id);
  return out;
}

TEST(SamplerReproducibility, SeedFixesTheSequence) {
  const std::vector<float> logits = random_logits(64, 3, 1.0f);
  for (const SamplingParams& base : {params(1.0f, 0, 1.0f, 0.0f), params(0.8f, 20, 0.9f, 0.02f)}) {
    SamplingParams sp = base;
    sp.seed = 7;
    Sampler a(sp), b(sp);
    const std::vector<int32_t> seq = draw_sequence(a, logits, 1000);
    EXPECT_EQ(seq, draw_sequence(b, logits, 1000));
    sp.seed = 8;
    Sampler c(sp);
    EXPECT_NE(seq, draw_sequence(c, logits, 1000));
    a.reseed(7);
    EXPECT_EQ(seq, draw_sequence(a, logits, 1000));
    c.reseed(7);
    EXPECT_EQ(seq, draw_sequence(c, logits, 1000));
  }
}

TEST(SamplerReproducibility, GoldenSequence) {
  // From the same Python transcription: u = (next() >> 11) 2^-53, the first id whose running sum of exp(z - max),
  // in id order, exceeds u * sum. A change here breaks every recorded seed.
  const std::vector<float> logits = {0.5f, -1.25f, 2.0f, 0.0f, 1.0f, -0.5f, 1.5f, -2.0f};
  Sampler s(params(1.0f, 0, 1.0f, 0.0f, 2024));
  const std::vector<int32_t> expected = {0, 6, 0, 2, 6, 2, 2, 2, 3, 0, 5, 6, 6, 2, 6, 2, 0, 4, 6, 2};
  EXPECT_EQ(draw_sequence(s, logits, 20), expected);
}

// ---- statistics of the draws --------------------------------------------------------------------------------------

TEST(SamplerStats, PlainSoftmax) { expect_reference_frequencies(params(1.0f, 0, 1.0f, 0.0f), kLogits8); }
TEST(SamplerStats, LowTemperature) { expect_reference_frequencies(params(0.5f, 0, 1.0f, 0.0f, 2), kLogits8); }
TEST(SamplerStats, HighTemperature) { expect_reference_frequencies(params(2.5f, 0, 1.0f, 0.0f, 3), kLogits8); }
TEST(SamplerStats, TopK) { expect_reference_frequencies(params(1.0f, 3, 1.0f, 0.0f, 4), kLogits8); }
TEST(SamplerStats, TopKLargerThanUnmasked) { expect_reference_frequencies(params(1.0f, 50, 1.0f, 0.0f), kLogits8); }
TEST(SamplerStats, TopP) { expect_reference_frequencies(params(1.0f, 0, 0.7f, 0.0f, 5), kLogits8); }
TEST(SamplerStats, MinP) { expect_reference_frequencies(params(1.0f, 0, 1.0f, 0.3f, 6), kLogits8); }

TEST(SamplerStats, Combined) {
  expect_reference_frequencies(params(0.8f, 5, 0.9f, 0.1f, 7), kLogits8);
  expect_reference_frequencies(params(1.3f, 4, 0.75f, 0.0f, 8), kLogits8);
  expect_reference_frequencies(params(0.6f, 6, 1.0f, 0.15f, 9), kLogits8);
  expect_reference_frequencies(params(1.5f, 0, 0.8f, 0.2f, 10), kLogits8);
}

TEST(SamplerStats, TopPCutOnABoundaryWithTies) {
  // Four equal logits: p = 0.25 each, less 6e-15 for the token at -30; top_p 0.5 is reached (within the slack) after
  // two, the two lowest ids.
  const std::vector<float> logits = {kMasked, 0.0f, 0.0f, 0.0f, 0.0f, -30.0f};
  expect_frequencies(params(1.0f, 0, 0.5f, 0.0f, 11), logits, {0, 0.5, 0.5, 0, 0, 0});
  // top_p 0.75: three tokens.
  expect_frequencies(params(1.0f, 0, 0.75f, 0.0f, 12), logits, {0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0, 0});
}

TEST(SamplerStats, TopPCutOnABoundaryFromLogProbabilities) {
  // p = 0.5, 0.3, 0.2 up to float rounding of the logs; top_p 0.8 keeps exactly the first two (without the slack a
  // cumulative sum of 0.79999999 < 0.8f = 0.800000012 would keep all three).
  const std::vector<float> logits = {std::log(0.2f), std::log(0.5f), std::log(0.3f)};
  expect_frequencies(params(1.0f, 0, 0.8f, 0.0f, 13), logits, {0.0, 0.625, 0.375});
  expect_reference_frequencies(params(1.0f, 0, 0.8f, 0.0f, 13), logits);
}

TEST(SamplerStats, TopKTiesGoToLowestIds) {
  const std::vector<float> logits = {0.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  expect_frequencies(params(1.0f, 2, 1.0f, 0.0f, 14), logits, {0, 0.5, 0.5, 0, 0});
  expect_reference_frequencies(params(1.0f, 2, 1.0f, 0.0f, 14), logits);
}

TEST(SamplerStats, MinPOneKeepsTheTiedMaxima) {
  const std::vector<float> logits = {0.5f, 2.0f, kMasked, 2.0f, 1.99f};
  expect_frequencies(params(0.7f, 0, 1.0f, 1.0f, 15), logits, {0, 0.5, 0, 0.5, 0});
}

TEST(SamplerStats, TopKThenTopPInsideTiedTokens) {
  // Six tied best tokens: top-k 4 keeps ids 0-3 (p = 1/4 each after renormalising), top-p 0.6 then keeps 3 of them.
  const std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.5f, 0.5f};
  expect_frequencies(params(1.0f, 4, 0.6f, 0.0f, 16), logits, {1.0 / 3, 1.0 / 3, 1.0 / 3, 0, 0, 0, 0, 0});
  expect_reference_frequencies(params(1.0f, 4, 0.6f, 0.0f, 16), logits);
}

TEST(SamplerStats, TopPOverManyTokens) {
  // 120 flat-ish tokens: top_p 0.95 keeps most of them, across many of the sampler's histogram buckets.
  const std::vector<float> logits = random_logits(120, 5, 0.3f);
  const SamplingParams sp = params(1.0f, 0, 0.95f, 0.0f, 17);
  const std::vector<double> p = reference_distribution(logits, sp);
  EXPECT_GT(std::count_if(p.begin(), p.end(), [](double v) { return v > 0; }), 90);
  EXPECT_LT(std::count_if(p.begin(), p.end(), [](double v) { return v > 0; }), 120);
  expect_frequencies(sp, logits, p);
  expect_reference_frequencies(params(0.9f, 100, 0.97f, 0.3f, 18), logits);
}

// ---- penalties ----------------------------------------------------------------------------------------------------

// Checks that the sampler, at top_logprobs = vocab, reports log-softmax(z / t) of the hand-computed logits z.
void expect_logprobs_of(SamplingParams sp, const std::vector<float>& logits, const std::vector<int32_t>& history,
                        const std::vector<double>& z) {
  sp.top_logprobs = static_cast<int>(logits.size());
  Sampler sampler(sp);
  const SampledToken tok = sampler.sample(logits, history);
  const std::vector<double> ref = log_softmax(z, sp.temperature == 0.0f ? 1.0 : sp.temperature);
  ASSERT_EQ(tok.top.size(), logits.size());
  for (const TokenLogprob& t : tok.top) EXPECT_NEAR(t.logprob, ref[t.id], kLogprobTol) << "token " << t.id;
  EXPECT_NEAR(tok.logprob, ref[tok.id], kLogprobTol);
}

TEST(SamplerPenalties, RepetitionDividesPositiveMultipliesNegativeOncePerId) {
  const std::vector<float> logits = {2.0f, -1.0f, 1.5f, 0.5f, 1.8f};
  const std::vector<int32_t> history = {0, 1, 0, 0};  // id 0 three times: penalised once
  SamplingParams sp = params(0.0f, 0, 1.0f, 0.0f);
  sp.repetition_penalty = 2.0f;
  // z = {2 / 2, -1 * 2, 1.5, 0.5, 1.8}: the greedy choice moves from 0 to 4.
  expect_logprobs_of(sp, logits, history, {1.0, -2.0, 1.5, 0.5, 1.8});
  EXPECT_EQ(Sampler(sp).sample(logits, history).id, 4);
  EXPECT_EQ(Sampler(params(0.0f, 0, 1.0f, 0.0f)).sample(logits, history).id, 0);
  // A penalty below 1 favours the seen ids: {2 / 0.5, -1 * 0.5, ...}.
  sp.repetition_penalty = 0.5f;
  expect_logprobs_of(sp, logits, {1, 3}, {2.0, -0.5, 1.5, 1.0, 1.8});
}

TEST(SamplerPenalties, PresenceAndFrequency) {
  const std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<int32_t> history = {0, 0, 3, 0, 2, 3};  // counts {3, 0, 1, 2}
  SamplingParams sp = params(0.0f, 0, 1.0f, 0.0f);
  sp.presence_penalty = 0.5f;
  sp.frequency_penalty = 0.25f;
  // z = 1 - 0.5 [count > 0] - 0.25 count = {-0.25, 1, 0.25, 0}
  expect_logprobs_of(sp, logits, history, {-0.25, 1.0, 0.25, 0.0});
  EXPECT_EQ(Sampler(sp).sample(logits, history).id, 1);
  // Negative penalties encourage repetition: z = 1 + 1 [count > 0] + 0.5 count = {3.5, 1, 2.5, 3}.
  sp.presence_penalty = -1.0f;
  sp.frequency_penalty = -0.5f;
  expect_logprobs_of(sp, logits, history, {3.5, 1.0, 2.5, 3.0});
  EXPECT_EQ(Sampler(sp).sample(logits, history).id, 0);
}

TEST(SamplerPenalties, RepetitionFirstThenOpenAiThenTemperature) {
  const std::vector<float> logits = {1.0f, -1.0f, 0.2f};
  SamplingParams sp = params(0.5f, 0, 1.0f, 0.0f);
  sp.repetition_penalty = 2.0f;
  sp.presence_penalty = 1.0f;
  sp.frequency_penalty = 0.5f;
  // id 0 twice: 1 / 2 - 1 - 0.5 * 2 = -1.5; id 1 once: -1 * 2 - 1 - 0.5 = -3.5; then / 0.5 in log_softmax.
  expect_logprobs_of(sp, logits, {0, 1, 0}, {-1.5, -3.5, 0.2});
}

TEST(SamplerPenalties, MaskedTokensStayMasked) {
  const std::vector<float> logits = {kMasked, 0.0f, kMasked};
  SamplingParams sp = params(1.0f, 0, 1.0f, 0.0f);
  sp.repetition_penalty = 0.5f;
  sp.presence_penalty = -2.0f;
  sp.frequency_penalty = -2.0f;
  sp.top_logprobs = 3;
  Sampler sampler(sp);
  for (int i = 0; i < 200; ++i) {
    const SampledToken tok = sampler.sample(logits, std::vector<int32_t>{0, 2, 2});
    ASSERT_EQ(tok.id, 1);
    EXPECT_EQ(tok.logprob, 0.0f);
    ASSERT_EQ(tok.top.size(), 1u);  // only one token has a finite logit
  }
}

// ---- logprobs -----------------------------------------------------------------------------------------------------

TEST(SamplerLogprobs, MatchDoubleLogSoftmaxBeforeTruncation) {
  std::vector<float> logits = random_logits(1000, 11, 2.0f);
  logits[17] = logits[400] = logits[901] = kMasked;
  logits[5] = logits[6] = logits[700] = 9.0f;  // tied best, above the rest
  for (const SamplingParams& base :
       {params(0.7f, 0, 1.0f, 0.0f, 21), params(1.0f, 0, 1.0f, 0.0f, 22), params(1.2f, 40, 0.9f, 0.05f, 23)}) {
    SamplingParams sp = base;
    sp.top_logprobs = 20;
    const std::vector<double> ref = log_softmax(widen(logits), sp.temperature);
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return ref[a] > ref[b]; });
    Sampler sampler(sp);
    for (int i = 0; i < 100; ++i) {
      const SampledToken tok = sampler.sample(logits, {});
      EXPECT_NEAR(tok.logprob, ref[tok.id], kLogprobTol);
      ASSERT_EQ(tok.top.size(), 20u);
      for (size_t j = 0; j < 20; ++j) {
        EXPECT_EQ(tok.top[j].id, order[j]) << "rank " << j;
        EXPECT_NEAR(tok.top[j].logprob, ref[order[j]], kLogprobTol) << "rank " << j;
      }
    }
  }
}

TEST(SamplerLogprobs, NoneRequestedNoneReported) {
  Sampler sampler(params(1.0f, 0, 1.0f, 0.0f));
  EXPECT_TRUE(sampler.sample(kLogits8, {}).top.empty());
}

// ---- bad input ----------------------------------------------------------------------------------------------------

TEST(SamplerErrors, BadLogitsAndHistory) {
  Sampler sampler(params(1.0f, 0, 1.0f, 0.0f));
  std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  const std::vector<int32_t> none;
  EXPECT_THROW(sampler.sample(std::vector<float>{}, none), Error);
  logits[1] = std::numeric_limits<float>::quiet_NaN();
  try {
    sampler.sample(logits, none);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("logits[1] is NaN"), std::string::npos) << e.what();
  }
  logits[1] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(sampler.sample(logits, none), Error);
  EXPECT_THROW(sampler.sample(std::vector<float>{kMasked, kMasked}, none), Error);
  logits[1] = 0.5f;
  EXPECT_THROW(sampler.sample(logits, std::vector<int32_t>{0, 3}), Error);
  EXPECT_THROW(sampler.sample(logits, std::vector<int32_t>{-1}), Error);
  Sampler greedy(params(0.0f, 0, 1.0f, 0.0f));
  EXPECT_THROW(greedy.sample(std::vector<float>{kMasked}, none), Error);
  EXPECT_EQ(sampler.sample(logits, std::vector<int32_t>{0, 2}).id >= 0, true);  // still usable after errors
}

// ---- a real vocabulary --------------------------------------------------------------------------------------------

TEST(SamplerLargeVocab, DrawsOverDeepSeekVocabulary) {
  constexpr size_t kVocab = 129280;
  const std::vector<float> logits = random_logits(kVocab, 99, 3.0f);
  std::vector<int32_t> history;
  for (int32_t i = 0; i < 2000; ++i) history.push_back((i * 7919) % static_cast<int32_t>(kVocab));
  for (const SamplingParams& base : {params(1.0f, 0, 1.0f, 0.0f, 31), params(0.8f, 50, 0.9f, 0.0f, 32),
                                     params(1.0f, 0, 0.95f, 0.0f, 33), params(1.0f, 0, 1.0f, 0.05f, 34)}) {
    SamplingParams sp = base;
    sp.top_logprobs = 5;
    const std::vector<double> p = reference_distribution(logits, sp);
    Sampler sampler(sp);
    const int draws = sp.top_k == 0 && sp.top_p == 1.0f && sp.min_p == 0.0f ? 1000 : 200;
    const auto start = std::chrono::steady_clock::now();
    int outside = 0;
    for (int i = 0; i < draws; ++i) {
      const SampledToken tok = sampler.sample(logits, {});
      ASSERT_GE(tok.id, 0);
      ASSERT_LT(static_cast<size_t>(tok.id), kVocab);
      outside += p[tok.id] == 0.0;
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(outside, 0);
    std::printf("vocab %zu, T %.1f top_k %d top_p %.2f min_p %.2f: %d draws in %.0f ms\n", kVocab, sp.temperature,
                sp.top_k, sp.top_p, sp.min_p, draws, ms);
    if (draws < 1000) continue;
    // With penalties over a 2,000-token history.
    SamplingParams pen = sp;
    pen.repetition_penalty = 1.1f;
    pen.frequency_penalty = 0.2f;
    Sampler penalised(pen);
    for (int i = 0; i < 20; ++i) ASSERT_LT(static_cast<size_t>(penalised.sample(logits, history).id), kVocab);
  }
}

}  // namespace
}  // namespace whale
