// The token sampler: from one position's logits to the next token id, with its log-probability.
//
// Order of operations in Sampler::sample (the same as Hugging Face's logits processors and llama.cpp's chain):
//   1. penalties, on the raw logits, for each distinct id in the history (count = its occurrences):
//        repetition (CTRL, arXiv:1909.05858 §4.1, as HF): z = z > 0 ? z / repetition_penalty : z * repetition_penalty
//        then OpenAI's: z -= presence_penalty * (count > 0) + frequency_penalty * count
//   2. temperature: z /= temperature; temperature 0 is greedy: the argmax of z, ties to the lowest id, and the steps
//      below are skipped (truncation always keeps the argmax, so they could not change the choice)
//   3. softmax: p = exp(z - max z) / sum. Tokens with p == 0 (logit -inf, or exp underflow in double) are never kept.
//   4. top-k: the top_k most probable tokens; ties at the cut go to the lowest id (as the MoE routers do)
//   5. top-p: the smallest prefix, in descending probability (ties to the lowest id), whose probability renormalised
//      after top-k sums to >= top_p - 1e-6; always at least one token. The 1e-6 slack absorbs the rounding of top_p
//      to float (0.3f is 0.300000012) and of probabilities computed from logits, so a cut that falls exactly on a
//      boundary (0.5 + 0.3 with top_p 0.8) keeps two tokens, not three.
//   6. min-p: keep tokens with p >= min_p * p_max (the ratio does not depend on the renormalisation)
//   7. renormalise over the kept tokens and draw one with u from the generator below.
// All arithmetic after reading the logits is in double. Every non-greedy call consumes exactly one output of the
// generator; greedy calls consume none. Given a seed and a call sequence the tokens are the same on every platform
// and standard library: the generator is fully specified, rankings use a strict total order (probability, then id),
// every sum is added in a fixed order (ids ascending; top-p's cumulative mass bucket by bucket, then within the cut's
// bucket in rank order), the draw walks the kept tokens in id order, and nothing depends on threads. The one input
// from outside is libm's exp(), correct to within an ulp everywhere, which could move a draw only when u * mass lands
// within ~1e-16 (relative) of a boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace whale {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy (argmax; ties to the lowest id)
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off; keep tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // 1 = off; once per distinct id seen: logit > 0 ? logit / rp : logit * rp
  float presence_penalty = 0.0f;    // OpenAI: logit -= presence_penalty * (count > 0)
  float frequency_penalty = 0.0f;   // OpenAI: logit -= frequency_penalty * count
  uint64_t seed = 0;
  int top_logprobs = 0;  // how many top alternatives to report (0..20)
  // false: the chosen token's logprob is not wanted (SampledToken::logprob is NaN), which spares greedy decoding a
  // pass of exps over the whole vocabulary (about 0.1 ms of a 100k vocabulary, per token and sequence).
  bool logprobs = true;
};

// Throws Error naming the first field out of range (e.g. "temperature = -1 is out of range [0, 100]"): temperature
// in [0, 100], top_k >= 0, top_p in (0, 1], min_p in [0, 1], repetition_penalty finite and > 0, presence_penalty and
// frequency_penalty in [-2, 2] (as OpenAI), top_logprobs in [0, 20] and 0 without logprobs. NaN is out of every
// range.
void validate(const SamplingParams& p);

struct TokenLogprob {
  int32_t id;
  float logprob;
};

struct SampledToken {
  int32_t id;
  // Log-probability of the chosen token under the distribution after penalties and temperature and before
  // truncation (top-k, top-p, min-p): what the model, as configured, thinks of the token, comparable across settings
  // of the truncation knobs. With temperature 0 the distribution is the one at temperature 1 (the limit at 0 is
  // degenerate and would report 0 and -inf). NaN when SamplingParams::logprobs is false.
  float logprob;
  // The top_logprobs most probable tokens of that same distribution, best first, ties to the lowest id; fewer when
  // fewer tokens have a finite logit.
  std::vector<TokenLogprob> top;
};

// xoshiro256** 1.0 (Blackman and Vigna, https://prng.di.unimi.it/xoshiro256starstar.c), its state seeded with four
// successive outputs of splitmix64 (https://prng.di.unimi.it/splitmix64.c) from the seed, as the authors advise.
class Xoshiro256StarStar {
 public:
  // Seeds the state from `seed` by splitmix64.
  explicit Xoshiro256StarStar(uint64_t seed);
  // The next 64-bit output.
  uint64_t next();
  // The next output as a double in [0, 1): (x >> 11) * 2^-53.
  double next_double() { return static_cast<double>(next() >> 11) * 0x1p-53; }

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  // Validates p (see validate) and seeds the generator with p.seed.
  explicit Sampler(const SamplingParams& p);

  // Picks the next token from logits[vocab] (not modified) given the ids generated or seen so far (for penalties).
  // Throws Error on an empty vocabulary, a NaN or +inf logit, all logits -inf (after penalties), or a history id
  // outside [0, vocab).
  SampledToken sample(std::span<const float> logits, std::span<const int32_t> history);

  // Restarts the generator as if constructed with this seed.
  void reseed(uint64_t seed);

  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    double z;  // logit after penalties and temperature
    int32_t id;
  };

  // Fills z_ with the penalised logits, in double; checks logits and history.
  void penalised_logits(std::span<const float> logits, std::span<const int32_t> history);
  // The id drawn from the tokens kept by top-k, top-p and min-p, given w_ = exp(z_ - max).
  int32_t draw_truncated(double max);
  // The worst token kept by top-k and top-p (every token at least as good is kept); none when neither is on.
  std::optional<Candidate> truncation_cut(double max);
  // The top_logprobs best tokens by z_, with logprob z - log_norm.
  std::vector<TokenLogprob> top_alternatives(double log_norm) const;

  SamplingParams params_;
  Xoshiro256StarStar rng_;
  // Workspace reused across calls so that sampling allocates nothing once warm.
  std::vector<double> z_;
  std::vector<double> w_;
  std::vector<int32_t> counts_;
  std::vector<Candidate> candidates_;
  static constexpr size_t kBuckets = 2048;  // of the top-k/top-p histogram (sampler.cc)
  std::vector<uint16_t> bucket_of_;
  std::vector<size_t> bucket_count_ = std::vector<size_t>(kBuckets);
  std::vector<double> bucket_mass_ = std::vector<double>(kBuckets);
  size_t buckets_used_ = 0;  // 1 + the last bucket the previous call filled
};

}  // namespace whale
