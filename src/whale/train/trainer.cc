#include "whale/train/trainer.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/io/checkpoint.h"
#include "whale/io/json_file.h"
#include "whale/io/text_file.h"
#include "whale/tokenizer/tokenizer.h"
#include "whale/train/blas.h"
#include "whale/train/flops.h"

namespace whale::train {
namespace {

namespace fs = std::filesystem;

struct StepTotals {
  double total = 0, main = 0, mtp = 0, balance = 0;
  int64_t mtp_tokens = 0, mtp_correct = 0;
  void add(const BatchLoss& l, double scale) {
    total += l.total * scale;
    main += l.main * scale;
    mtp += l.mtp * scale;
    balance += l.balance * scale;
    mtp_tokens += l.mtp_tokens;
    mtp_correct += l.mtp_correct;
  }
};

class Trainer {
 public:
  Trainer(const TrainSettings& s, ThreadPool& pool, const TrainLog& log) : s_(s), pool_(pool), log_(log) {}

  void run() {
    const fs::path config_file = s_.resume ? s_.out / "config.json"
                                 : !s_.init.empty() ? s_.init / "config.json"
                                                    : s_.config;
    if (config_file.empty()) fail("give --config MODEL.json, --init DIR or --resume");
    if (s_.resume && !fs::exists(s_.out / "trainer_state.json"))
      fail("{}: no run to resume there (trainer_state.json is missing)", s_.out.string());
    raw_config_ = read_json_file(config_file);
    const ModelConfig config = parse_model_config(raw_config_, config_file.string());
    params_ = with_context(config_file.string(), [&] { return std::make_unique<ParameterSet>(config); });

    tokenizer_dir_ = !s_.tokenizer.empty() ? s_.tokenizer
                     : s_.resume          ? s_.out
                                          : s_.init;
    std::optional<Tokenizer> tokenizer;
    if (!tokenizer_dir_.empty() && fs::exists(tokenizer_dir_ / "tokenizer.json")) tokenizer = Tokenizer::load(tokenizer_dir_);
    else if (!s_.tokenizer.empty()) fail("{}: no tokenizer.json in the --tokenizer directory", s_.tokenizer.string());

    int64_t start = 0;
    if (s_.resume) {
      params_->load(Checkpoint(s_.out));
    } else if (!s_.init.empty()) {
      params_->load(Checkpoint(s_.init));
    } else {
      params_->init_random(s_.seed, s_.init_std);
    }
    dataset_ = std::make_unique<Dataset>(
        load_token_stream(s_.data, tokenizer ? &*tokenizer : nullptr, config.eos_token_id, config.vocab_size),
        s_.val_fraction, s_.seq_len, s_.order, s_.seed);
    optimizer_ = std::make_unique<Optimizer>(*params_, s_.optimizer, pool_);
    transformer_ = std::make_unique<Transformer>(*params_, pool_);
    if (s_.resume) start = load_state();

    log_(fmt::format("train: {} threads, OpenBLAS {} kernels", pool_.size(), blas_core_name()));
    log_(fmt::format("train: {} parameters, {} training / {} validation tokens, {} steps of {} × {} × {} tokens",
                     params_->trainable_count(), dataset_->train_tokens(), dataset_->val_tokens(), s_.optimizer.steps,
                     s_.grad_accum, s_.batch_size, s_.seq_len));
    fs::create_directories(s_.out);
    std::ofstream journal(s_.out / "train_log.jsonl", start > 0 ? std::ios::app : std::ios::trunc);
    if (!journal) fail("{}: cannot write", (s_.out / "train_log.jsonl").string());

    const int64_t end = s_.stop_at > 0 ? std::min(s_.stop_at, s_.optimizer.steps) : s_.optimizer.steps;
    if (start >= end) fail("{}: the run already has {} of its {} steps", s_.out.string(), start, end);
    for (int64_t step = start; step < end; ++step) {
      nlohmann::json line = train_step(step);
      const bool last = step + 1 == end;
      if ((s_.eval_every > 0 && (step + 1) % s_.eval_every == 0) || last) {
        const auto [val_loss, val_mtp_acc] = evaluate();
        line["val_loss"] = val_loss;
        if (val_mtp_acc >= 0) line["val_mtp_accuracy"] = val_mtp_acc;
        log_(fmt::format("step {}: validation loss {:.4f}", step + 1, val_loss));
      }
      journal << line.dump() << "\n" << std::flush;
      if ((s_.save_every > 0 && (step + 1) % s_.save_every == 0) || last) save(step + 1);
    }
  }

 private:
  nlohmann::json train_step(int64_t step) {
    const auto t0 = std::chrono::steady_clock::now();
    params_->zero_grads();
    transformer_->reset_expert_counts();
    StepTotals totals;
    const double scale = 1.0 / static_cast<double>(s_.grad_accum);
    for (int64_t a = 0; a < s_.grad_accum; ++a) {
      const std::vector<int32_t> batch = dataset_->micro_batch(step * s_.grad_accum + a, s_.batch_size);
      totals.add(transformer_->run(batch, s_.batch_size, s_.seq_len, s_.loss, true, static_cast<float>(scale)), scale);
    }
    if (step == 0 && !s_.dump_gradients.empty()) params_->save_gradients(s_.dump_gradients);
    const double lr = learning_rate(s_.optimizer, step);
    const double grad_norm = optimizer_->step(step);

    nlohmann::json maxvio = nlohmann::json::object(), load = nlohmann::json::object();
    double worst = 0.0;
    const TModel& m = params_->model();
    auto balance_layer = [&](const TLayer& layer) {
      if (!layer.moe) return;
      const std::vector<int64_t>& counts = transformer_->expert_counts()[layer.index];
      const double v = max_violation(counts);
      maxvio[std::to_string(layer.index)] = v;
      load[std::to_string(layer.index)] = counts;
      worst = std::max(worst, v);
      if (layer.moe->bias && s_.optimizer.kind == OptimizerKind::AdamW && s_.bias_update_rate > 0)
        update_routing_bias(layer.moe->bias, counts, s_.bias_update_rate);
    };
    for (const TLayer& layer : m.layers) balance_layer(layer);
    if (m.mtp && s_.loss.mtp > 0) balance_layer(m.mtp->layer);

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tokens = static_cast<double>(s_.grad_accum * s_.batch_size * s_.seq_len);
    const double flops = tokens * training_flops_per_token(params_->config(), s_.seq_len, s_.loss.mtp > 0);
    nlohmann::json line = {{"step", step + 1}, {"loss", totals.total}, {"main_loss", totals.main},
                           {"lr", lr}, {"grad_norm", grad_norm}, {"seconds", seconds},
                           {"tokens_per_second", tokens / seconds}, {"gflops_per_second", flops / seconds * 1e-9}};
    if (totals.mtp_tokens > 0) {
      line["mtp_loss"] = totals.mtp;
      line["mtp_accuracy"] = static_cast<double>(totals.mtp_correct) / static_cast<double>(totals.mtp_tokens);
    }
    if (s_.loss.balance > 0) line["balance_loss"] = totals.balance;
    if (!maxvio.empty()) {
      line["maxvio"] = maxvio;
      line["maxvio_max"] = worst;
      line["expert_load"] = load;
    }
    if (s_.log_every > 0 && ((step + 1) % s_.log_every == 0 || step == 0))
      log_(fmt::format("step {}/{}: loss {:.4f}  lr {:.2e}  grad norm {:.3f}{}  {:.0f} tok/s  {:.1f} GFLOP/s", step + 1,
                       s_.optimizer.steps, totals.total, lr, grad_norm,
                       maxvio.empty() ? std::string() : fmt::format("  maxvio {:.3f}", worst), tokens / seconds,
                       flops / seconds * 1e-9));
    return line;
  }

  // Mean main loss over the validation windows, and the MTP head's accuracy on token t+2 (-1 without MTP).
  std::pair<double, double> evaluate() {
    int64_t count = 0;
    const std::vector<int32_t> windows = dataset_->validation_windows(s_.eval_windows, count);
    if (count == 0) return {std::nan(""), -1.0};
    double loss = 0.0;
    int64_t mtp_tokens = 0, mtp_correct = 0;
    const int64_t W = s_.seq_len + 1;
    for (int64_t b0 = 0; b0 < count; b0 += s_.batch_size) {
      const int64_t nb = std::min(s_.batch_size, count - b0);
      const std::span<const int32_t> part(windows.data() + b0 * W, static_cast<size_t>(nb * W));
      const BatchLoss l = transformer_->run(part, nb, s_.seq_len, s_.loss, false);
      loss += l.main * static_cast<double>(nb);
      mtp_tokens += l.mtp_tokens;
      mtp_correct += l.mtp_correct;
    }
    return {loss / static_cast<double>(count),
            mtp_tokens > 0 ? static_cast<double>(mtp_correct) / static_cast<double>(mtp_tokens) : -1.0};
  }

  void save(int64_t steps_done) {
    fs::create_directories(s_.out);
    write_text_file(s_.out / "config.json", f32_checkpoint_config(raw_config_));
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      const fs::path from = tokenizer_dir_ / name;
      if (!tokenizer_dir_.empty() && fs::exists(from) && !fs::equivalent(tokenizer_dir_, s_.out))
        fs::copy_file(from, s_.out / name, fs::copy_options::overwrite_existing);
    }
    params_->save(s_.out);
    optimizer_->save_moments(s_.out / "optimizer.safetensors");
    std::ostringstream rng;
    rng << dataset_->rng();
    write_text_file(s_.out / "trainer_state.json",
               nlohmann::json{{"step", steps_done}, {"data_rng", rng.str()}}.dump(2) + "\n");
    log_(fmt::format("step {}: saved {}", steps_done, s_.out.string()));
  }

  int64_t load_state() {
    const nlohmann::json st = read_json_file(s_.out / "trainer_state.json");
    if (!st.contains("step") || !st["step"].is_number_integer())
      fail("{}: missing integer \"step\"", (s_.out / "trainer_state.json").string());
    std::istringstream rng(st.value("data_rng", std::string()));
    rng >> dataset_->rng();
    optimizer_->load_moments(s_.out / "optimizer.safetensors");
    return st["step"].get<int64_t>();
  }

  const TrainSettings& s_;
  ThreadPool& pool_;
  const TrainLog& log_;
  nlohmann::json raw_config_;
  fs::path tokenizer_dir_;
  std::unique_ptr<ParameterSet> params_;
  std::unique_ptr<Dataset> dataset_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<Transformer> transformer_;
};

}  // namespace

void run_training(const TrainSettings& settings, ThreadPool& pool, const TrainLog& log) {
  Trainer(settings, pool, log).run();
}

}  // namespace whale::train
