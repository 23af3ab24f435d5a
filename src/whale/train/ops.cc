#include "whale/train/ops.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "whale/kernels/activations.h"
#include "whale/train/blas.h"

namespace whale::train {

void split(ThreadPool* pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (!pool || pool->size() == 1 || n < 2 * grain) {
    fn(0, n);
    return;
  }
  pool->parallel_for(n, fn, grain);
}

namespace {

int64_t column_grain(int64_t rows, int64_t depth) {
  // Slices of at least 16 columns, and of at least ~64k multiply-adds, so that small products stay on one thread.
  const int64_t work_per_column = std::max<int64_t>(1, rows * depth);
  return std::max<int64_t>(16, (1 << 16) / work_per_column);
}

}  // namespace

void linear_forward(ThreadPool* pool, const float* x, const float* W, float* y, int64_t N, int64_t I, int64_t O,
                    bool accumulate) {
  if (N == 0 || O == 0) return;
  const float beta = accumulate ? 1.0f : 0.0f;
  split(pool, O, column_grain(N, I), [&](int64_t o0, int64_t o1) {
    sgemm(false, true, N, o1 - o0, I, 1.0f, x, I, W + o0 * I, I, beta, y + o0, O);
  });
}

void linear_backward(ThreadPool* pool, const float* x, const float* W, const float* dy, float* dx, float* dW, int64_t N,
                     int64_t I, int64_t O, bool accumulate_dx) {
  if (N == 0) return;
  if (dx) {
    const float beta = accumulate_dx ? 1.0f : 0.0f;
    split(pool, I, column_grain(N, O), [&](int64_t i0, int64_t i1) {
      sgemm(false, false, N, i1 - i0, O, 1.0f, dy, O, W + i0, I, beta, dx + i0, I);
    });
  }
  split(pool, O, column_grain(N, I), [&](int64_t o0, int64_t o1) {
    sgemm(true, false, o1 - o0, I, N, 1.0f, dy + o0, O, x, I, 1.0f, dW + o0 * I, I);
  });
}

void rmsnorm_forward(ThreadPool* pool, const float* x, int64_t ldx, const float* w, int64_t N, int64_t D, float eps,
                     float* y, int64_t ldy, float* rstd) {
  split(pool, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* xr = x + n * ldx;
      double ss = 0.0;
      for (int64_t i = 0; i < D; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float r = static_cast<float>(1.0 / std::sqrt(ss / D + eps));
      rstd[n] = r;
      float* yr = y + n * ldy;
      for (int64_t i = 0; i < D; ++i) yr[i] = w[i] * (xr[i] * r);
    }
  });
}

void rmsnorm_backward(ThreadPool* pool, const float* x, int64_t ldx, const float* w, const float* rstd, const float* dy,
                      int64_t ldy, int64_t N, int64_t D, float* dx, int64_t lddx, float* dw, bool accumulate_dx) {
  // dw is summed over rows: each slice keeps its own partial sum, added in slice order (deterministic).
  const int slices = pool ? pool->size() : 1;
  std::vector<double> partial(static_cast<size_t>(slices) * D, 0.0);
  auto body = [&](int64_t n0, int64_t n1, double* dw_part) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* xr = x + n * ldx;
      const float* dyr = dy + n * ldy;
      const double r = rstd[n];
      double dot = 0.0;  // Σ dy ⊙ w ⊙ x
      for (int64_t i = 0; i < D; ++i) {
        dot += static_cast<double>(dyr[i]) * w[i] * xr[i];
        dw_part[i] += static_cast<double>(dyr[i]) * xr[i] * r;
      }
      const double c = dot * r * r * r / D;
      float* dxr = dx + n * lddx;
      for (int64_t i = 0; i < D; ++i) {
        const float v = static_cast<float>(r * dyr[i] * w[i] - c * xr[i]);
        dxr[i] = accumulate_dx ? dxr[i] + v : v;
      }
    }
  };
  if (!pool || pool->size() == 1 || N < 32) {
    body(0, N, partial.data());
  } else {
    // parallel_for gives slice s to thread s, but not its index: recover it from the slice's start.
    const int64_t per = (N + slices - 1) / slices;
    pool->parallel_for(slices, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; ++s) body(s * per, std::min(N, (s + 1) * per), partial.data() + s * D);
    });
  }
  for (int s = 0; s < slices; ++s)
    for (int64_t i = 0; i < D; ++i) dw[i] += static_cast<float>(partial[s * D + i]);
}

RopeTable make_rope_table(const std::vector<double>& inv_freq, int64_t T) {
  RopeTable t;
  t.half = static_cast<int>(inv_freq.size());
  t.cos.resize(static_cast<size_t>(T) * t.half);
  t.sin.resize(static_cast<size_t>(T) * t.half);
  for (int64_t p = 0; p < T; ++p)
    for (int i = 0; i < t.half; ++i) {
      const double a = static_cast<double>(p) * inv_freq[i];
      t.cos[p * t.half + i] = static_cast<float>(std::cos(a));
      t.sin[p * t.half + i] = static_cast<float>(std::sin(a));
    }
  return t;
}

void rope_rotate(float* x, int64_t ld, int64_t N, int64_t T, const RopeTable& table, bool inverse) {
  const float sign = inverse ? -1.0f : 1.0f;
  for (int64_t n = 0; n < N; ++n) {
    float* xr = x + n * ld;
    const float* c = table.cos.data() + (n % T) * table.half;
    const float* s = table.sin.data() + (n % T) * table.half;
    for (int i = 0; i < table.half; ++i) {
      const float a = xr[2 * i], b = xr[2 * i + 1];
      const float si = sign * s[i];
      xr[2 * i] = a * c[i] - b * si;
      xr[2 * i + 1] = a * si + b * c[i];
    }
  }
}

void swiglu_forward(ThreadPool* pool, const float* g, const float* u, float* h, int64_t n) {
  split(pool, n, 1 << 14, [&](int64_t i0, int64_t i1) {
    std::copy(g + i0, g + i1, h + i0);
    swiglu_inplace(h + i0, u + i0, i1 - i0);
  });
}

void swiglu_backward(ThreadPool* pool, const float* g, const float* u, const float* dh, float* dg, float* du,
                     int64_t n) {
  split(pool, n, 1 << 14, [&](int64_t i0, int64_t i1) {
    whale::swiglu_backward(g + i0, u + i0, dh + i0, dg + i0, du + i0, i1 - i0);
  });
}

double cross_entropy(ThreadPool* pool, float* logits, const int32_t* target, int64_t N, int64_t V, float scale,
                     int64_t* correct) {
  std::vector<double> loss(static_cast<size_t>(N), 0.0);
  std::vector<char> right(static_cast<size_t>(N), 0);
  split(pool, N, 4, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* row = logits + n * V;
      const int32_t t = target[n];
      if (t < 0) {
        std::fill(row, row + V, 0.0f);
        continue;
      }
      const int64_t arg = std::max_element(row, row + V) - row;
      const float mx = row[arg];
      double sum = 0.0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
      loss[n] = std::log(sum) + mx - row[t];
      right[n] = arg == t;
      const double inv = 1.0 / sum;
      for (int64_t v = 0; v < V; ++v) row[v] = static_cast<float>(scale * std::exp(static_cast<double>(row[v]) - mx) * inv);
      row[t] -= scale;
    }
  });
  double total = 0.0;
  int64_t hits = 0;
  for (int64_t n = 0; n < N; ++n) {
    total += loss[n];
    hits += right[n];
  }
  if (correct) *correct = hits;
  return total;
}

double scored_log_probs(ThreadPool* pool, float* logits, const int32_t* target, int64_t N, int64_t V,
                        const TokenObjective& objective, bool gradient, float grad_scale) {
  std::vector<int64_t> rows;
  for (int64_t n = 0; n < N; ++n)
    if (target[n] >= 0) rows.push_back(n);
  const int64_t S = static_cast<int64_t>(rows.size());
  std::vector<double> lse(static_cast<size_t>(S));
  std::vector<float> logp(static_cast<size_t>(S)), scale(static_cast<size_t>(S), 0.0f);
  split(pool, S, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* row = logits + rows[i] * V;
      const float mx = *std::max_element(row, row + V);
      double sum = 0.0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
      lse[i] = std::log(sum) + mx;
      logp[i] = static_cast<float>(row[target[rows[i]]] - lse[i]);
    }
  });
  const double value = objective(logp, scale);
  if (!gradient) return value;
  std::vector<char> scored(static_cast<size_t>(N), 0);
  for (int64_t n : rows) scored[n] = 1;
  split(pool, N, 4, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      if (!scored[n]) std::fill(logits + n * V, logits + (n + 1) * V, 0.0f);
  });
  split(pool, S, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* row = logits + rows[i] * V;
      const double s = static_cast<double>(grad_scale) * scale[i];
      for (int64_t v = 0; v < V; ++v) row[v] = static_cast<float>(s * std::exp(static_cast<double>(row[v]) - lse[i]));
      row[target[rows[i]]] -= static_cast<float>(s);
    }
  });
  return value;
}

}  // namespace whale::train
