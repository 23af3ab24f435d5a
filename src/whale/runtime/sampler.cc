#include "whale/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "whale/core/error.h"
#include "whale/kernels/activations.h"

namespace whale {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Slack on the top-p comparison: see step 5 in sampler.h.
constexpr double kTopPSlack = 1e-6;
// Top-k and top-p histogram x = z - max in kBuckets buckets of width 1 / kBucketsPerUnit down to x = -64 (where
// exp(x) is 1.6e-28 of the best token's weight); the last bucket holds everything below.
constexpr double kBucketsPerUnit = 32.0;
constexpr uint16_t kNoBucket = 0xffff;  // w == 0: never kept

// Throws unless lo <= v <= hi (lo < v when open_lo); NaN fails both comparisons.
void check_range(const char* name, double v, double lo, double hi, bool open_lo, const char* range) {
  const bool ok = (open_lo ? v > lo : v >= lo) && v <= hi;
  if (!ok) fail("{} = {} is out of range {}", name, v, range);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// splitmix64: advances `state` by the golden gamma and returns the mixed value.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Strict total order on candidates: higher z first, then lower id. It makes every sort and selection below give one
// result on every standard library.
bool better(const auto& a, const auto& b) { return a.z > b.z || (a.z == b.z && a.id < b.id); }

// Index of the first entry whose running sum of w exceeds target; the last entry with w > 0 when rounding leaves
// target at or past the total. Entries with w == 0 are never returned (target >= 0).
template <typename WeightOf>
size_t pick(size_t n, double target, WeightOf weight_of) {
  double cum = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < n; ++i) {
    const double w = weight_of(i);
    if (w <= 0.0) continue;
    cum += w;
    last_positive = i;
    if (target < cum) return i;
  }
  return last_positive;
}

}  // namespace

void validate(const SamplingParams& p) {
  check_range("temperature", p.temperature, 0.0, 100.0, false, "[0, 100]");
  if (p.top_k < 0) fail("top_k = {} is out of range [0, inf)", p.top_k);
  check_range("top_p", p.top_p, 0.0, 1.0, true, "(0, 1]");
  check_range("min_p", p.min_p, 0.0, 1.0, false, "[0, 1]");
  if (!(p.repetition_penalty > 0.0f && std::isfinite(p.repetition_penalty)))
    fail("repetition_penalty = {} is out of range (0, inf)", p.repetition_penalty);
  check_range("presence_penalty", p.presence_penalty, -2.0, 2.0, false, "[-2, 2]");
  check_range("frequency_penalty", p.frequency_penalty, -2.0, 2.0, false, "[-2, 2]");
  if (p.top_logprobs < 0 || p.top_logprobs > 20) fail("top_logprobs = {} is out of range [0, 20]", p.top_logprobs);
  if (p.top_logprobs > 0 && !p.logprobs) fail("top_logprobs = {} needs logprobs", p.top_logprobs);
}

Xoshiro256StarStar::Xoshiro256StarStar(uint64_t seed) {
  // Four distinct splitmix64 outputs (it is a bijection of distinct states), so the state is never all zero.
  for (uint64_t& s : s_) s = splitmix64(seed);
}

uint64_t Xoshiro256StarStar::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

Sampler::Sampler(const SamplingParams& p) : params_(p), rng_(p.seed) { validate(p); }

void Sampler::reseed(uint64_t seed) { rng_ = Xoshiro256StarStar(seed); }

void Sampler::penalised_logits(std::span<const float> logits, std::span<const int32_t> history) {
  const size_t vocab = logits.size();
  if (vocab == 0) fail("sampler: empty logits");
  if (vocab > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail("sampler: vocabulary of {} does not fit 32-bit token ids", vocab);
  z_.resize(vocab);
  // One pass without branches; the offending index is looked for only when there is one.
  bool bad = false;
  for (size_t i = 0; i < vocab; ++i) {
    const float v = logits[i];
    bad |= !(v < std::numeric_limits<float>::infinity());  // NaN or +inf
    z_[i] = v;
  }
  if (bad)
    for (size_t i = 0; i < vocab; ++i) {
      if (std::isnan(logits[i])) fail("sampler: logits[{}] is NaN", i);
      if (logits[i] == std::numeric_limits<float>::infinity())
        fail("sampler: logits[{}] is +inf (only -inf masks a token)", i);
    }
  for (size_t j = 0; j < history.size(); ++j) {
    if (history[j] < 0 || static_cast<size_t>(history[j]) >= vocab)
      fail("sampler: history[{}] = {} is not a token id (vocabulary of {})", j, history[j], vocab);
  }

  const double rp = params_.repetition_penalty;
  const double presence = params_.presence_penalty;
  const double frequency = params_.frequency_penalty;
  if (rp == 1.0 && presence == 0.0 && frequency == 0.0) return;
  // Count occurrences in a vocab-sized table, then visit each distinct id once and zero its count again, so the
  // table is all zero between calls and the cost is O(history), not O(vocab).
  counts_.resize(vocab, 0);
  for (int32_t id : history) ++counts_[id];
  for (int32_t id : history) {
    const int32_t count = counts_[id];
    if (count == 0) continue;  // already penalised
    counts_[id] = 0;
    double& z = z_[id];
    z = z > 0.0 ? z / rp : z * rp;  // -inf stays -inf
    z -= presence + frequency * count;
  }
}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  penalised_logits(logits, history);
  const size_t vocab = z_.size();
  const bool greedy = params_.temperature == 0.0f;
  if (!greedy) {
    const double t = params_.temperature;
    for (double& z : z_) z /= t;
  }

  // The first maximum is the greedy choice (ties to the lowest id) and the softmax shift.
  const auto argmax = static_cast<size_t>(first_argmax(z_.data(), static_cast<int64_t>(vocab)));
  const double max = z_[argmax];
  if (max == -kInf) fail("sampler: every logit is -inf (after penalties), so no token can be drawn");
  if (greedy && !params_.logprobs)
    return SampledToken{static_cast<int32_t>(argmax), std::numeric_limits<float>::quiet_NaN(), {}};

  w_.resize(vocab);
  // exp(-inf) = 0; w_[argmax] = 1. A vocabulary of exps per token and sequence: the SIMD kernel is several times
  // faster than a loop of std::exp (about 0.4 ms of a 129k vocabulary per token otherwise).
  const double sum = exp_shifted_sum(z_.data(), max, w_.data(), static_cast<int64_t>(vocab));
  const double log_norm = max + std::log(sum);

  const int32_t id = greedy ? static_cast<int32_t>(argmax) : draw_truncated(max);
  return SampledToken{id, static_cast<float>(z_[id] - log_norm), top_alternatives(log_norm)};
}

int32_t Sampler::draw_truncated(double max) {
  const double u = rng_.next_double();
  const size_t vocab = w_.size();
  // p_i >= min_p * p_max  <=>  w_i >= min_p, since w = exp(z - max) has maximum exp(0) = 1.
  const double min_w = params_.min_p;
  // Top-k and top-p keep every token at least as good as `cut` in the order of better(); no cut keeps all.
  const std::optional<Candidate> cut = truncation_cut(max);
  auto weight = [&](size_t i) {
    const double w = w_[i];
    if (w < min_w) return 0.0;
    if (cut && !(z_[i] > cut->z || (z_[i] == cut->z && static_cast<int32_t>(i) <= cut->id))) return 0.0;
    return w;
  };
  // Draw over the kept tokens in id order, so the result does not depend on how selection arranged candidates_.
  double kept = 0.0;
  for (size_t i = 0; i < vocab; ++i) kept += weight(i);
  return static_cast<int32_t>(pick(vocab, u * kept, weight));
}

std::optional<Sampler::Candidate> Sampler::truncation_cut(double max) {
  const bool top_p = params_.top_p < 1.0f;
  if (params_.top_k == 0 && !top_p) return std::nullopt;

  // Histogram of the tokens with w > 0 by x = z - max: bucket b holds x in (-(b + 1), -b] / kBucketsPerUnit, the
  // last everything lower. Bucket order agrees with better() (z larger => bucket no later; equal z => same bucket),
  // so top-k and top-p need only sort the one bucket their cut falls in. Each bucket's mass is added in id order:
  // the cut does not depend on the standard library.
  const size_t vocab = w_.size();
  bucket_of_.resize(vocab);
  // Only buckets [0, buckets_used_) can be non-zero from the last call.
  std::fill_n(bucket_count_.begin(), buckets_used_, 0);
  std::fill_n(bucket_mass_.begin(), buckets_used_, 0.0);
  size_t n = 0, end = 0;
  for (size_t i = 0; i < vocab; ++i) {
    if (!(w_[i] > 0.0)) {
      bucket_of_[i] = kNoBucket;
      continue;
    }
    const double scaled = (max - z_[i]) * kBucketsPerUnit;
    const uint16_t b = scaled < kBuckets - 1 ? static_cast<uint16_t>(scaled) : uint16_t{kBuckets - 1};
    bucket_of_[i] = b;
    ++bucket_count_[b];
    bucket_mass_[b] += w_[i];
    ++n;
    end = std::max<size_t>(end, b + 1);
  }
  buckets_used_ = end;
  // Fills candidates_ with the members of bucket b, best first.
  auto load_bucket = [&](size_t b) {
    candidates_.clear();
    for (size_t i = 0; i < vocab; ++i)
      if (bucket_of_[i] == b) candidates_.push_back({z_[i], static_cast<int32_t>(i)});
    std::sort(candidates_.begin(), candidates_.end(), [](const Candidate& a, const Candidate& c) {
      return better(a, c);
    });
  };

  // Top-k: buckets before k_bucket are kept whole, and the best k_take members of k_bucket (loaded in candidates_).
  size_t k_bucket = kBuckets, k_take = 0;
  double total = 0.0;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    size_t before = 0;
    k_bucket = 0;
    while (before + bucket_count_[k_bucket] < static_cast<size_t>(params_.top_k)) before += bucket_count_[k_bucket++];
    k_take = static_cast<size_t>(params_.top_k) - before;
    load_bucket(k_bucket);
    if (!top_p) return candidates_[k_take - 1];
    for (size_t b = 0; b < k_bucket; ++b) total += bucket_mass_[b];
    for (size_t j = 0; j < k_take; ++j) total += w_[candidates_[j].id];
  } else {
    for (size_t b = 0; b < end; ++b) total += bucket_mass_[b];
  }

  // Top-p: walk the buckets best first to the one where the mass reaches (top_p - slack) * total, then its members.
  const double target = (params_.top_p - kTopPSlack) * total;
  double cum = 0.0;
  for (size_t b = 0; b < end && b <= k_bucket; ++b) {
    if (bucket_count_[b] == 0) continue;
    const bool partial = b == k_bucket;
    if (!partial && cum + bucket_mass_[b] < target) {
      cum += bucket_mass_[b];
      continue;
    }
    if (!partial) load_bucket(b);
    const size_t members = partial ? k_take : candidates_.size();
    for (size_t j = 0; j < members; ++j) {
      cum += w_[candidates_[j].id];
      if (cum >= target) return candidates_[j];
    }
    return candidates_[members - 1];  // rounding kept the sum short of target: the bucket is the last one kept
  }
  return std::nullopt;  // rounding kept the total short of target: keep everything
}

std::vector<TokenLogprob> Sampler::top_alternatives(double log_norm) const {
  const size_t k = static_cast<size_t>(params_.top_logprobs);
  std::vector<Candidate> best;  // sorted by better(); ids are visited in increasing order, so ties keep the lowest
  best.reserve(k + 1);
  for (size_t i = 0; i < z_.size() && k > 0; ++i) {
    const double z = z_[i];
    if (z == -kInf || (best.size() == k && !(z > best.back().z))) continue;
    const Candidate c{z, static_cast<int32_t>(i)};
    best.insert(std::upper_bound(best.begin(), best.end(), c, [](const Candidate& a, const Candidate& b) {
      return better(a, b);
    }), c);
    if (best.size() > k) best.pop_back();
  }
  std::vector<TokenLogprob> out;
  out.reserve(best.size());
  for (const Candidate& c : best) out.push_back({c.id, static_cast<float>(c.z - log_norm)});
  return out;
}

}  // namespace whale
