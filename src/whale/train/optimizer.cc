#include "whale/train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "whale/core/error.h"
#include "whale/io/safetensors.h"
#include "whale/io/safetensors_writer.h"
#include "whale/train/ops.h"

namespace whale::train {

double learning_rate(const OptimizerSettings& o, int64_t s) {
  if (s < o.warmup) return o.lr * static_cast<double>(s + 1) / static_cast<double>(o.warmup);
  const double lr_min = o.lr * o.min_lr_ratio;
  const double progress = static_cast<double>(s - o.warmup) / static_cast<double>(std::max<int64_t>(1, o.steps - o.warmup));
  return lr_min + (o.lr - lr_min) * (1.0 + std::cos(std::numbers::pi * std::min(1.0, progress))) / 2.0;
}

Optimizer::Optimizer(ParameterSet& params, const OptimizerSettings& settings, ThreadPool& pool)
    : params_(params), o_(settings), pool_(pool) {
  if (o_.kind == OptimizerKind::AdamW) {
    m_.assign(params.values().size(), 0.0f);
    v_.assign(params.values().size(), 0.0f);
  }
}

double Optimizer::step(int64_t s) {
  std::vector<float>& w = params_.values();
  std::vector<float>& g = params_.grads();
  // Squared norm: per-tensor partial sums in double, added in tensor order (the same for any thread count).
  std::vector<double> partial(params_.tensors().size(), 0.0);
  pool_.parallel_for(static_cast<int64_t>(partial.size()), [&](int64_t t0, int64_t t1) {
    for (int64_t k = t0; k < t1; ++k) {
      const TrainTensor& t = params_.tensors()[k];
      if (!t.trainable) continue;
      double sq = 0.0;
      for (int64_t i = t.offset; i < t.offset + t.numel; ++i) sq += static_cast<double>(g[i]) * g[i];
      partial[k] = sq;
    }
  });
  double sq = 0.0;
  for (double p : partial) sq += p;
  const double norm = std::sqrt(sq);
  const double lr = learning_rate(o_, s);

  if (o_.kind == OptimizerKind::Sgd) {
    for (const TrainTensor& t : params_.tensors())
      if (t.trainable)
        for (int64_t i = t.offset; i < t.offset + t.numel; ++i) w[i] -= static_cast<float>(lr) * g[i];
    return norm;
  }

  const float clip = (o_.clip > 0.0 && norm > o_.clip) ? static_cast<float>(o_.clip / (norm + 1e-6)) : 1.0f;
  const double k = static_cast<double>(s + 1);
  const double bc1 = 1.0 - std::pow(o_.beta1, k), bc2 = 1.0 - std::pow(o_.beta2, k);
  const float b1 = static_cast<float>(o_.beta1), b2 = static_cast<float>(o_.beta2);
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float eps = static_cast<float>(o_.eps);
  for (const TrainTensor& t : params_.tensors()) {
    if (!t.trainable) continue;
    const float decay = t.shape.size() == 2 ? static_cast<float>(1.0 - lr * o_.weight_decay) : 1.0f;
    split(&pool_, t.numel, 1 << 14, [&](int64_t i0, int64_t i1) {
      float* __restrict wt = w.data() + t.offset;
      float* __restrict mt = m_.data() + t.offset;
      float* __restrict vt = v_.data() + t.offset;
      const float* __restrict gt = g.data() + t.offset;
      for (int64_t i = i0; i < i1; ++i) {
        const float gi = gt[i] * clip;
        mt[i] = b1 * mt[i] + (1.0f - b1) * gi;
        vt[i] = b2 * vt[i] + (1.0f - b2) * gi * gi;
        wt[i] = wt[i] * decay - step_size * mt[i] / (std::sqrt(vt[i]) / bc2_sqrt + eps);
      }
    });
  }
  return norm;
}

void update_routing_bias(float* bias, const std::vector<int64_t>& counts, double gamma) {
  if (counts.empty()) return;
  double total = 0.0;
  for (int64_t c : counts) total += static_cast<double>(c);
  const double mean = total / static_cast<double>(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > mean) bias[i] -= static_cast<float>(gamma);
    else if (counts[i] < mean) bias[i] += static_cast<float>(gamma);
  }
}

double max_violation(const std::vector<int64_t>& counts) {
  if (counts.empty()) return 0.0;
  double total = 0.0;
  int64_t most = 0;
  for (int64_t c : counts) {
    total += static_cast<double>(c);
    most = std::max(most, c);
  }
  if (total == 0.0) return 0.0;
  return static_cast<double>(most) / (total / static_cast<double>(counts.size())) - 1.0;
}

void Optimizer::save_moments(const std::filesystem::path& file) const {
  if (o_.kind != OptimizerKind::AdamW) return;
  const int64_t n = static_cast<int64_t>(m_.size());
  SafetensorsWriter w(file.string(), {{"adam.m", DType::F32, {n}}, {"adam.v", DType::F32, {n}}});
  for (const TensorSpec& t : w.order()) w.write(t.name, (t.name == "adam.m" ? m_ : v_).data(), t.nbytes());
  w.finish();
}

void Optimizer::load_moments(const std::filesystem::path& file) {
  if (o_.kind != OptimizerKind::AdamW) return;
  SafetensorsFile f(file.string());
  for (auto* target : {&m_, &v_}) {
    const TensorView t = f.view(target == &m_ ? "adam.m" : "adam.v");
    if (t.dtype != DType::F32 || t.nbytes != target->size() * sizeof(float))
      fail("{}: tensor {} does not match this model's {} parameters", file.string(), t.name, target->size());
    std::memcpy(target->data(), t.data, t.nbytes);
  }
}

}  // namespace whale::train
