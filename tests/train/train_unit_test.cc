// Unit checks of the training pieces that the end-to-end comparison with PyTorch (train_reference_test.py) does not
// isolate: the learning-rate schedule, bias balancing, MaxVio, the data layout of docs/training.md, and the ops'
// backward passes against central differences in double of their own forward formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "whale/core/error.h"
#include "whale/train/dataset.h"
#include "whale/train/ops.h"
#include "whale/train/optimizer.h"

namespace whale::train {
namespace {

TEST(LearningRate, WarmupThenCosineToTheFloor) {
  OptimizerSettings o;
  o.lr = 1.0;
  o.warmup = 4;
  o.steps = 14;
  o.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(o, 0), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(o, 3), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(o, 4), 1.0);                      // cosine starts at the peak
  EXPECT_NEAR(learning_rate(o, 9), 0.1 + 0.9 * 0.5, 1e-12);        // halfway
  EXPECT_NEAR(learning_rate(o, 14), 0.1, 1e-12);                   // the floor
  o.warmup = 0;
  EXPECT_DOUBLE_EQ(learning_rate(o, 0), 1.0);
}

TEST(RoutingBias, MovesOverloadedDownAndUnderloadedUp) {
  std::vector<float> bias = {0.0f, 0.5f, -0.5f, 1.0f};
  update_routing_bias(bias.data(), {10, 30, 20, 20}, 0.25);  // mean 20
  EXPECT_FLOAT_EQ(bias[0], 0.25f);
  EXPECT_FLOAT_EQ(bias[1], 0.25f);
  EXPECT_FLOAT_EQ(bias[2], -0.5f);
  EXPECT_FLOAT_EQ(bias[3], 1.0f);
  EXPECT_DOUBLE_EQ(max_violation({10, 30, 20, 20}), 0.5);
  EXPECT_DOUBLE_EQ(max_violation({5, 5, 5, 5}), 0.0);
  EXPECT_DOUBLE_EQ(max_violation({0, 0}), 0.0);
}

TEST(Dataset, SequentialWindowsFollowTheDocumentedLayout) {
  std::vector<int32_t> stream(100);
  for (int i = 0; i < 100; ++i) stream[i] = i;
  Dataset d(stream, 0.1, 8, DataOrder::Sequential, 0);  // 10 validation ids: training split 0..89
  EXPECT_EQ(d.train_tokens(), 90);
  EXPECT_EQ(d.val_tokens(), 10);
  const std::vector<int32_t> m3 = d.micro_batch(3, 4);  // window b starts at ((3·4 + b)·8) mod 82
  ASSERT_EQ(m3.size(), 4u * 9u);
  for (int b = 0; b < 4; ++b) {
    const int start = ((3 * 4 + b) * 8) % 82;
    for (int t = 0; t < 9; ++t) EXPECT_EQ(m3[b * 9 + t], start + t) << "window " << b;
  }
  int64_t count = 0;
  const std::vector<int32_t> val = d.validation_windows(10, count);
  EXPECT_EQ(count, 1);  // 10 ids hold one window of 9
  EXPECT_EQ(val.front(), 90);
  EXPECT_THROW(Dataset(std::vector<int32_t>(8), 0.0, 8, DataOrder::Sequential, 0), Error);
}

TEST(Dataset, RandomWindowsAreReproducibleAndInRange) {
  std::vector<int32_t> stream(1000);
  for (int i = 0; i < 1000; ++i) stream[i] = i;
  Dataset a(stream, 0.0, 16, DataOrder::Random, 7), b(stream, 0.0, 16, DataOrder::Random, 7);
  for (int m = 0; m < 5; ++m) {
    const std::vector<int32_t> x = a.micro_batch(m, 3), y = b.micro_batch(m, 3);
    EXPECT_EQ(x, y);
    for (int w = 0; w < 3; ++w) {
      EXPECT_LE(x[w * 17] + 16, 999);
      for (int t = 1; t < 17; ++t) EXPECT_EQ(x[w * 17 + t], x[w * 17] + t);  // consecutive ids
    }
  }
}

// Central differences in double of a scalar function of x, for checking a backward pass.
template <typename Fn>
std::vector<double> numeric_gradient(std::vector<float> x, Fn loss) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float keep = x[i];
    const float h = 1e-2f * std::max(1.0f, std::fabs(keep));
    x[i] = keep + h;
    const double up = loss(x);
    x[i] = keep - h;
    const double down = loss(x);
    x[i] = keep;
    g[i] = (up - down) / (2.0 * h);
  }
  return g;
}

TEST(Ops, RmsnormBackwardMatchesCentralDifferences) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  const int64_t N = 3, D = 7;
  std::vector<float> x(N * D), w(D), dy(N * D);
  for (auto* v : {&x, &w, &dy})
    for (float& e : *v) e = n(rng);
  auto loss_of = [&](const std::vector<float>& xs, const std::vector<float>& ws) {
    std::vector<float> y(N * D), r(N);
    rmsnorm_forward(nullptr, xs.data(), D, ws.data(), N, D, 1e-6f, y.data(), D, r.data());
    double s = 0.0;
    for (int64_t i = 0; i < N * D; ++i) s += static_cast<double>(y[i]) * dy[i];
    return s;
  };
  std::vector<float> y(N * D), r(N), dx(N * D), dw(D, 0.0f);
  rmsnorm_forward(nullptr, x.data(), D, w.data(), N, D, 1e-6f, y.data(), D, r.data());
  rmsnorm_backward(nullptr, x.data(), D, w.data(), r.data(), dy.data(), D, N, D, dx.data(), D, dw.data());
  const std::vector<double> gx = numeric_gradient(x, [&](const std::vector<float>& v) { return loss_of(v, w); });
  const std::vector<double> gw = numeric_gradient(w, [&](const std::vector<float>& v) { return loss_of(x, v); });
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(dx[i], gx[i], 2e-3 * (1.0 + std::fabs(gx[i]))) << i;
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(dw[i], gw[i], 2e-3 * (1.0 + std::fabs(gw[i]))) << i;
}

TEST(Ops, SwigluBackwardMatchesCentralDifferences) {
  const std::vector<float> g = {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f}, u = {1.5f, -2.0f, 0.3f, 1.0f, -0.4f};
  const std::vector<float> dh = {0.3f, -1.0f, 2.0f, 0.5f, 1.5f};
  std::vector<float> dg(5), du(5);
  swiglu_backward(nullptr, g.data(), u.data(), dh.data(), dg.data(), du.data(), 5);
  for (int i = 0; i < 5; ++i) {
    auto f = [&](double gi, double ui) { return gi / (1.0 + std::exp(-gi)) * ui * dh[i]; };
    const double e = 1e-4;
    EXPECT_NEAR(dg[i], (f(g[i] + e, u[i]) - f(g[i] - e, u[i])) / (2 * e), 1e-4);
    EXPECT_NEAR(du[i], (f(g[i], u[i] + e) - f(g[i], u[i] - e)) / (2 * e), 1e-4);
  }
}

TEST(Ops, RopeInverseUndoesTheRotation) {
  const RopeTable table = make_rope_table({1.0, 0.1, 0.01}, 5);
  std::vector<float> x(5 * 6), y;
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.37f - 3.0f;
  y = x;
  rope_rotate(y.data(), 6, 5, 5, table, false);
  EXPECT_NE(y, x);
  rope_rotate(y.data(), 6, 5, 5, table, true);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-5f);
}

TEST(Ops, CrossEntropyLossAndGradient) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<int32_t> target = {2, -1};
  int64_t correct = 0;
  const double loss = cross_entropy(nullptr, logits.data(), target.data(), 2, 3, 0.5f, &correct);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(loss, std::log(z) - 3.0, 1e-6);
  EXPECT_EQ(correct, 1);
  EXPECT_NEAR(logits[0], 0.5 * std::exp(1.0) / z, 1e-6);
  EXPECT_NEAR(logits[2], 0.5 * (std::exp(3.0) / z - 1.0), 1e-6);
  EXPECT_EQ(logits[3], 0.0f);  // no target: no gradient
}

}  // namespace
}  // namespace whale::train
