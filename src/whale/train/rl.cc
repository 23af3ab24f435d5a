#include "whale/train/rl.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/io/checkpoint.h"
#include "whale/io/json_file.h"
#include "whale/io/text_file.h"
#include "whale/model/model.h"
#include "whale/tokenizer/tokenizer.h"
#include "whale/train/parameters.h"
#include "whale/train/rl_sft.h"
#include "whale/train/transformer.h"

namespace whale::train {
namespace {

namespace fs = std::filesystem;

bool is_problem_file(const std::string& task) { return task.size() > 6 && task.ends_with(".jsonl"); }

ProblemSplit make_problems(const RlSettings& s) {
  if (is_problem_file(s.task)) {
    std::vector<RlProblem> all = load_problem_file(s.task);
    if (s.held_out >= static_cast<int64_t>(all.size()))
      fail("{}: {} problems, so --held-out {} leaves none to train on", s.task, all.size(), s.held_out);
    return held_out_split(std::move(all), s.held_out, s.seed);
  }
  return held_out_split(generate_problems(s.task, s.train_problems + s.held_out, s.seed, s.task_options), s.held_out,
                        s.seed);
}

// One micro-batch of sampled sequences laid out for the training pass: windows of prompt + completion, padded, and
// the flags of the positions that predict a completion token.
struct PackedBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> windows;
  std::vector<uint8_t> scored;
  std::vector<float> advantage;  // per scored token, its sequence's
};

PackedBatch pack(std::span<const Rollout* const> seqs, std::span<const float> advantages, int32_t pad) {
  PackedBatch p;
  p.B = static_cast<int64_t>(seqs.size());
  size_t longest = 2;
  for (const Rollout* r : seqs) longest = std::max(longest, r->prompt.size() + r->completion.size());
  p.T = static_cast<int64_t>(longest) - 1;
  const int64_t W = p.T + 1;
  p.windows.assign(static_cast<size_t>(p.B * W), pad);
  p.scored.assign(static_cast<size_t>(p.B * p.T), 0);
  for (int64_t b = 0; b < p.B; ++b) {
    const Rollout& r = *seqs[b];
    std::copy(r.prompt.begin(), r.prompt.end(), p.windows.begin() + b * W);
    std::copy(r.completion.begin(), r.completion.end(), p.windows.begin() + b * W + r.prompt.size());
    // Position t predicts id t + 1: completion ids sit at prompt.size() .. prompt.size() + completion.size() − 1.
    const int64_t first = static_cast<int64_t>(r.prompt.size()) - 1;
    for (int64_t t = first; t < first + static_cast<int64_t>(r.completion.size()); ++t) {
      p.scored[b * p.T + t] = 1;
      p.advantage.push_back(advantages[b]);
    }
  }
  return p;
}

struct StepSums {
  double reward = 0, accuracy = 0, format = 0, length = 0, eos = 0;
  GrpoStats grpo;
  double neg_logp = 0;  // Σ −log π(token) over sampled tokens: at temperature 1, an estimate of the entropy
  double loss = 0;
};

class RlRun {
 public:
  RlRun(const RlSettings& s, ThreadPool& pool, const RlLog& log) : s_(s), pool_(pool), log_(log) {}

  void run() {
    if (!s_.write_sft.empty()) return write_sft();
    if (s_.resume && !fs::exists(s_.out / "rl_state.json"))
      fail("{}: no RL run to resume there (rl_state.json is missing)", s_.out.string());
    fs::path init = s_.init;
    int64_t start = 0;
    nlohmann::json state;
    if (s_.resume) {
      state = read_json_file(s_.out / "rl_state.json");
      if (!state.contains("step") || !state["step"].is_number_integer() || !state.contains("init") ||
          !state["init"].is_string())
        fail("{}: missing \"step\" or \"init\"", (s_.out / "rl_state.json").string());
      start = state["step"].get<int64_t>();
      if (init.empty()) init = state["init"].get<std::string>();
    }
    if (init.empty()) fail("give --init DIR (the model to start from) or --resume");
    init_ = fs::absolute(init);
    const fs::path config_file = init_ / "config.json";
    raw_config_ = read_json_file(config_file);
    const ModelConfig config = parse_model_config(raw_config_, config_file.string());
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(init_));
    policy_ = with_context(config_file.string(), [&] { return std::make_unique<ParameterSet>(config); });
    policy_->load(Checkpoint(s_.resume ? s_.out : init_));
    if (s_.grpo.beta > 0) {
      reference_ = std::make_unique<ParameterSet>(config);
      reference_->load(Checkpoint(init_));
      reference_t_ = std::make_unique<Transformer>(*reference_, pool_);
    }
    policy_t_ = std::make_unique<Transformer>(*policy_, pool_);
    optimizer_ = std::make_unique<Optimizer>(*policy_, optimizer_settings(), pool_);
    if (s_.resume) {
      optimizer_->load_moments(s_.out / "optimizer.safetensors");
      step_index_ = start * s_.updates_per_batch;
    }
    problems_ = make_problems(s_);
    if (problems_.train.empty()) fail("{}: no training problems left after holding out {}", s_.task, s_.held_out);
    log_(fmt::format("rl: {} parameters, task {}: {} training and {} held-out problems; {} steps of {} problems x {} "
                     "samples", policy_->trainable_count(), s_.task, problems_.train.size(),
                     problems_.held_out.size(), s_.steps, s_.prompts_per_step, s_.rollout.samples_per_problem));

    if (s_.eval_only) {
      const std::string line = evaluate(0).dump();
      std::fprintf(stdout, "%s\n", line.c_str());
      return;
    }
    fs::create_directories(s_.out);
    std::ofstream journal(s_.out / "rl_log.jsonl", start > 0 ? std::ios::app : std::ios::trunc);
    if (!journal) fail("{}: cannot write", (s_.out / "rl_log.jsonl").string());
    const int64_t end = s_.stop_at > 0 ? std::min(s_.stop_at, s_.steps) : s_.steps;
    if (start >= end) fail("{}: the run already has {} of its {} steps", s_.out.string(), start, end);
    if (start == 0) journal << evaluate(0).dump() << "\n" << std::flush;
    for (int64_t step = start; step < end; ++step) {
      journal << train_step(step).dump() << "\n" << std::flush;
      const bool last = step + 1 == end;
      if ((s_.eval_every > 0 && (step + 1) % s_.eval_every == 0) || (last && end == s_.steps))
        journal << evaluate(step + 1).dump() << "\n" << std::flush;
      if ((s_.save_every > 0 && (step + 1) % s_.save_every == 0) || last) save(step + 1);
    }
  }

 private:
  // Worked examples of the training split: needs only the tokenizer (its chat template), not a model.
  void write_sft() {
    const fs::path dir = !s_.tokenizer.empty() ? s_.tokenizer : s_.init;
    if (dir.empty()) fail("--write-sft needs --tokenizer DIR (or --init DIR) for the chat template");
    const Tokenizer tokenizer = Tokenizer::load(dir);
    const ProblemSplit split = make_problems(s_);
    if (split.train.empty()) fail("{}: no training problems left after holding out {}", s_.task, s_.held_out);
    write_sft_examples(s_.write_sft, tokenizer, split.train, s_.sft_examples, s_.seed + 1,
                       s_.sft_direct_fraction);
    log_(fmt::format("rl: wrote {} examples ({}% answered without working) of {} training problems ({} held out) "
                     "to {}", s_.sft_examples, 100.0 * s_.sft_direct_fraction, split.train.size(),
                     split.held_out.size(), s_.write_sft.string()));
  }

  // The policy as an inference model: written as a checkpoint to out/.policy and mapped from there.
  std::unique_ptr<Model> policy_model() {
    const fs::path dir = s_.out / ".policy";
    write_checkpoint(dir);
    return std::make_unique<Model>(dir);
  }

  void write_checkpoint(const fs::path& dir) {
    fs::create_directories(dir);
    write_text_file(dir / "config.json", f32_checkpoint_config(raw_config_));
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
      if (fs::exists(init_ / name)) fs::copy_file(init_ / name, dir / name, fs::copy_options::overwrite_existing);
    policy_->save(dir);
  }

  std::vector<RlProblem> step_problems(int64_t step) const {
    std::vector<RlProblem> out;
    const int64_t n = static_cast<int64_t>(problems_.train.size());
    for (int64_t i = 0; i < s_.prompts_per_step; ++i) out.push_back(problems_.train[(step * s_.prompts_per_step + i) % n]);
    return out;
  }

  nlohmann::json train_step(int64_t step) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<RlProblem> problems = step_problems(step);
    RolloutSettings rs = s_.rollout;
    const uint64_t sampling_seed = s_.sampling_seed.value_or(s_.seed);
    rs.seed = sampling_seed * 1000003 + static_cast<uint64_t>(step) * 65537;
    std::vector<Rollout> rollouts;
    {
      const std::unique_ptr<Model> model = policy_model();
      rollouts = sample_rollouts(*model, *tokenizer_, pool_, problems, rs);
    }
    const double sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    StepSums sums;
    std::vector<double> rewards(rollouts.size());
    for (size_t k = 0; k < rollouts.size(); ++k) {
      const ParsedResponse parsed = parse_response(rollouts[k].text);
      const RlProblem& p = problems[rollouts[k].problem];
      rewards[k] = total_reward(p, parsed, s_.rewards);
      sums.reward += rewards[k];
      sums.accuracy += accuracy_reward(p, parsed);
      sums.format += format_reward(parsed);
      sums.length += static_cast<double>(rollouts[k].completion.size());
      sums.eos += rollouts[k].finish == FinishReason::Eos;
    }
    shuffle_rewards(rewards, s_.shuffle_rewards, s_.rollout.samples_per_problem,
                    sampling_seed ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(step + 1)));
    const std::vector<float> advantages = group_advantages(rewards, s_.rollout.samples_per_problem);
    const double mixed = mixed_group_fraction(advantages, s_.rollout.samples_per_problem);

    policy_->zero_grads();
    policy_t_->reset_expert_counts();
    const double grad_norm = update(rollouts, advantages, sums);
    if (s_.bias_update_rate > 0)
      for (const TLayer& layer : policy_->model().layers)
        if (layer.moe && layer.moe->bias)
          update_routing_bias(layer.moe->bias, policy_t_->expert_counts()[layer.index], s_.bias_update_rate);

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double n = static_cast<double>(rollouts.size());
    const double tokens = std::max<double>(1.0, static_cast<double>(sums.grpo.tokens));
    nlohmann::json line = {{"step", step + 1},
                           {"reward", sums.reward / n},
                           {"accuracy", sums.accuracy / n},
                           {"format", sums.format / n},
                           {"response_length", sums.length / n},
                           {"eos_fraction", sums.eos / n},
                           {"mixed_groups", mixed},
                           {"kl", sums.grpo.kl / tokens},
                           {"entropy", sums.neg_logp / tokens},
                           {"clipped_fraction", static_cast<double>(sums.grpo.clipped) / tokens},
                           {"loss", sums.loss},
                           {"lr", learning_rate(optimizer_settings(), step * s_.updates_per_batch)},
                           {"grad_norm", grad_norm},
                           {"sample_seconds", sample_seconds},
                           {"seconds", seconds}};
    log_(fmt::format("step {}/{}: reward {:.3f}  accuracy {:.3f}  format {:.3f}  length {:.1f}  mixed groups {:.2f}  "
                     "kl {:.4f}  entropy {:.3f}  grad norm {:.3f}  {:.1f} s ({:.1f} s sampling)",
                     step + 1, s_.steps, sums.reward / n, sums.accuracy / n, sums.format / n, sums.length / n, mixed,
                     sums.grpo.kl / tokens, sums.neg_logp / tokens, grad_norm, seconds, sample_seconds));
    return line;
  }

  // The schedule counts optimizer steps: updates_per_batch of them per RL step.
  OptimizerSettings optimizer_settings() const {
    OptimizerSettings o = s_.optimizer;
    o.steps = s_.steps * s_.updates_per_batch;
    o.warmup = s_.optimizer.warmup * s_.updates_per_batch;
    return o;
  }

  // The policy updates on the step's samples: --updates-per-batch optimizer steps, each over all micro-batches.
  // With one (on-policy, the default) the sampling policy's log-probabilities are the current ones, so π_old is
  // taken from the same forward pass and ρ = 1 where the gradient is taken. With more, π_old is the policy before
  // the first update (one forward pass without gradients), and later updates see ρ ≠ 1 and the clip.
  double update(const std::vector<Rollout>& rollouts, const std::vector<float>& advantages, StepSums& sums) {
    double scored_tokens = 0;
    for (const Rollout& r : rollouts) scored_tokens += static_cast<double>(r.completion.size());
    if (scored_tokens == 0) return 0.0;
    const int32_t pad = static_cast<int32_t>(tokenizer_->eos_id().value_or(0));
    struct Micro {
      PackedBatch p;
      std::vector<float> ref, old;
    };
    std::vector<Micro> micro;
    auto capture_into = [](std::vector<float>& out) {
      return TokenObjective([&out](std::span<const float> lp, std::span<float>) {
        out.assign(lp.begin(), lp.end());
        return 0.0;
      });
    };
    for (size_t b0 = 0; b0 < rollouts.size(); b0 += static_cast<size_t>(s_.micro_batch)) {
      const size_t b1 = std::min(rollouts.size(), b0 + static_cast<size_t>(s_.micro_batch));
      std::vector<const Rollout*> seqs;
      std::vector<float> adv;
      for (size_t k = b0; k < b1; ++k)
        if (!rollouts[k].completion.empty()) {
          seqs.push_back(&rollouts[k]);
          adv.push_back(advantages[k]);
        }
      if (seqs.empty()) continue;
      Micro& m = micro.emplace_back(Micro{pack(seqs, adv, pad), {}, {}});
      if (reference_t_) reference_t_->run_objective(m.p.windows, m.p.B, m.p.T, m.p.scored, capture_into(m.ref), {}, false);
      if (s_.updates_per_batch > 1)
        policy_t_->run_objective(m.p.windows, m.p.B, m.p.T, m.p.scored, capture_into(m.old), {}, false);
    }
    double grad_norm = 0.0;
    for (int u = 0; u < s_.updates_per_batch; ++u) {
      if (u > 0) policy_->zero_grads();
      StepSums pass;
      for (const Micro& m : micro) {
        const TokenObjective objective = [&](std::span<const float> lp, std::span<float> scale) {
          for (float v : lp) pass.neg_logp -= v;
          const std::span<const float> old = m.old.empty() ? lp : std::span<const float>(m.old);
          const std::span<const float> reference = m.ref.empty() ? lp : std::span<const float>(m.ref);
          return grpo_objective(lp, old, reference, m.p.advantage, s_.grpo, scored_tokens, scale, &pass.grpo);
        };
        pass.loss += policy_t_->run_objective(m.p.windows, m.p.B, m.p.T, m.p.scored, objective, {}, true).main;
      }
      grad_norm = optimizer_->step(step_index_++);
      // The log reports the first pass (the sampling policy itself), except for the clipping, which only later
      // passes can show.
      if (u == 0) {
        sums.neg_logp = pass.neg_logp;
        sums.loss = pass.loss;
        sums.grpo = pass.grpo;
      } else {
        sums.grpo.clipped += pass.grpo.clipped;
      }
    }
    return grad_norm;
  }

  nlohmann::json evaluate(int64_t step) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::unique_ptr<Model> model = s_.eval_only ? std::make_unique<Model>(init_) : policy_model();
    const RlEval e = evaluate_policy(*model, *tokenizer_, pool_, problems_.held_out, s_);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log_(fmt::format("eval at step {}: pass@1 {:.3f}  pass@{} {:.3f}  greedy {:.3f}  format {:.3f}  length {:.1f}  "
                     "({} problems, {:.1f} s)",
                     step, e.pass1, s_.eval_samples, e.pass_k, e.greedy, e.format, e.mean_length,
                     problems_.held_out.size(), seconds));
    return {{"step", step},
            {"eval", {{"pass1", e.pass1}, {fmt::format("pass{}", s_.eval_samples), e.pass_k}, {"greedy", e.greedy},
                      {"format", e.format}, {"response_length", e.mean_length},
                      {"problems", problems_.held_out.size()}, {"seconds", seconds}}}};
  }

  void save(int64_t steps_done) {
    write_checkpoint(s_.out);
    optimizer_->save_moments(s_.out / "optimizer.safetensors");
    write_text_file(s_.out / "rl_state.json",
                    nlohmann::json{{"step", steps_done}, {"init", init_.string()}}.dump(2) + "\n");
    log_(fmt::format("step {}: saved {}", steps_done, s_.out.string()));
  }

  const RlSettings& s_;
  ThreadPool& pool_;
  const RlLog& log_;
  fs::path init_;
  nlohmann::json raw_config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ParameterSet> policy_, reference_;
  std::unique_ptr<Transformer> policy_t_, reference_t_;
  std::unique_ptr<Optimizer> optimizer_;
  ProblemSplit problems_;
  int64_t step_index_ = 0;
};

}  // namespace

RlEval evaluate_policy(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                       std::span<const RlProblem> problems, const RlSettings& s) {
  RlEval e;
  if (problems.empty()) return e;
  RolloutSettings rs = s.rollout;
  rs.samples_per_problem = s.eval_samples;
  rs.temperature = s.eval_temperature;
  rs.top_p = s.eval_top_p;
  rs.seed = 0x5eed;
  const std::vector<Rollout> sampled = sample_rollouts(model, tokenizer, pool, problems, rs);
  std::vector<int> correct(problems.size(), 0);
  for (const Rollout& r : sampled) {
    const ParsedResponse parsed = parse_response(r.text);
    const bool ok = accuracy_reward(problems[r.problem], parsed) > 0;
    correct[r.problem] += ok;
    e.pass1 += ok;
    e.format += format_reward(parsed);
    e.mean_length += static_cast<double>(r.completion.size());
  }
  const double n = static_cast<double>(sampled.size());
  e.pass1 /= n;
  e.format /= n;
  e.mean_length /= n;
  for (int c : correct) e.pass_k += c > 0;
  e.pass_k /= static_cast<double>(problems.size());
  rs.samples_per_problem = 1;
  rs.temperature = 0.0f;
  for (const Rollout& r : sample_rollouts(model, tokenizer, pool, problems, rs))
    e.greedy += accuracy_reward(problems[r.problem], parse_response(r.text)) > 0;
  e.greedy /= static_cast<double>(problems.size());
  return e;
}

void run_rl(const RlSettings& settings, ThreadPool& pool, const RlLog& log) { RlRun(settings, pool, log).run(); }

}  // namespace whale::train
