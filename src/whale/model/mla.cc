#include "whale/model/mla.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "whale/core/cache_line.h"
#include "whale/core/error.h"
#include "whale/core/uninit_vector.h"
#include "whale/kernels/activations.h"
#include "whale/kernels/matmul.h"
#include "whale/kernels/norm.h"
#include "whale/kernels/rope.h"

namespace whale {

AttentionForm parse_attention_form(std::string_view name) {
  if (name == "absorbed") return AttentionForm::Absorbed;
  if (name == "naive") return AttentionForm::Naive;
  fail("unknown attention form \"{}\" (expected \"absorbed\" or \"naive\")", name);
}

namespace {

struct HeadDims {
  int dn, dr, dv, dqk, rank;
  static HeadDims of(const ModelConfig& c) {
    return {c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.qk_head_dim(), c.kv_lora_rank};
  }
};

// Head's W_UV rows [r_uv, r_uv + dv) of kv_b as a weight: in place where the format can be cut there, else decoded
// into `scratch`.
Weight2D head_w_uv(const Weight2D& kv_b, int64_t r_uv, const HeadDims& d, std::vector<float>& scratch) {
  if (std::optional<Weight2D> w = weight_rows(kv_b, r_uv, r_uv + d.dv)) return *w;
  scratch.resize(static_cast<size_t>(d.dv) * d.rank);
  decode_rows(kv_b, r_uv, r_uv + d.dv, scratch.data());
  Weight2D f{};
  f.dtype = DType::F32;
  f.rows = d.dv;
  f.cols = d.rank;
  f.data = reinterpret_cast<const uint8_t*>(scratch.data());
  return f;
}

constexpr int kQueryChunk = 64;  // queries per causal chunk: keys past the chunk's last position are never scored
// From this many queries on, the absorbed form runs as attend_expanded: expanding every cached latent once costs
// less than moving each query into latent space.
constexpr int kExpandedMinTokens = 64;
// Up to this many queries, the absorbed form scores all heads in one pass over the cache (attend_absorbed_few).
constexpr int kFewQueries = 4;
// A few queries' attention over a cache of at least this many tokens runs as attend_absorbed_long: the cached latents
// read once per step rather than once per thread, for four more fork/joins.
constexpr int kLongCacheContext = 256;
constexpr int kLongCacheScoreTokens = 64;  // cached tokens per scoring item of attend_absorbed_long

// row [n_ctx] of one query's scores, of which it may see the first len: softmax(scale · those), the rest 0.
void masked_softmax(float* row, int len, int n_ctx, float scale) {
  for (int s = 0; s < len; ++s) row[s] *= scale;
  softmax_inplace(row, len);
  std::fill(row + len, row + n_ctx, 0.0f);
}

// Scores [m, n_ctx] of m consecutive queries, the first seeing first_len keys and each next one more.
void causal_softmax(float* scores, int m, int n_ctx, int first_len, float scale) {
  for (int i = 0; i < m; ++i) masked_softmax(scores + static_cast<size_t>(i) * n_ctx, first_len + i, n_ctx, scale);
}

// scores [m, n_ctx] (row stride n_ctx) = q [m, rank + dr] · [c ‖ k_rope]ᵀ over the layer's cached tokens [k0, k1)
// (columns k0..k1 of scores), read in place page by page. Each score is one dot product (row_dots), computed the same
// whatever the page size, the range and however many queries come together. Each page's call prefetches the next
// page's rows of the range (a layer's rows of a page are contiguous), which the hardware would fetch only on demand.
void score_cached(const LatentKvCache& cache, int layer, int n_ctx, const float* q, int m, float* scores, int k0,
                  int k1) {
  const int pt = cache.page_tokens(), row = cache.row_size();
  for (int p0 = k0; p0 < k1; p0 = (p0 / pt + 1) * pt) {
    const int end = std::min(k1, (p0 / pt + 1) * pt), next_end = std::min(k1, end + pt);
    const float* next = end < k1 ? cache.row(layer, end) : nullptr;
    row_dots(q, row, m, cache.row(layer, p0), row, end - p0, row, scores + p0, n_ctx, next,
             static_cast<int64_t>(next_end - end) * row * static_cast<int64_t>(sizeof(float)));
  }
}
void score_cached(const LatentKvCache& cache, int layer, int n_ctx, const float* q, int m, float* scores) {
  score_cached(cache, layer, n_ctx, q, m, scores, 0, n_ctx);
}

// y [m, rank] (row stride ldy) += p [m, n_ctx] (row stride ldp) · c over the layer's first n_ctx cached latents, page
// by page: every element gets its FMAs in token order (add_scaled_rows), whatever the page size.
void mix_cached(const float* p, int64_t ldp, int m, const LatentKvCache& cache, int layer, int n_ctx, float* y,
                int64_t ldy) {
  const int pt = cache.page_tokens();
  for (int p0 = 0; p0 < n_ctx; p0 += pt)
    add_scaled_rows(p + p0, ldp, m, cache.row(layer, p0), cache.row_size(), std::min(pt, n_ctx - p0),
                    cache.kv_lora_rank(), y, ldy);
}

// The same for latent columns [c0, c1) only, the rows read in place by add_scaled_rows_at (bitwise add_scaled_rows:
// c0 a multiple of kMixColumns, a column gets the bits of the call above), for long caches: each cached row's lines
// are read from memory once per call and prefetched ahead, across the pages.
constexpr int kMixColumns = 64;
void mix_cached_columns(const float* p, int64_t ldp, int m, const LatentKvCache& cache, int layer, int n_ctx, float* y,
                        int64_t ldy, int c0, int c1) {
  std::vector<const float*> rows(static_cast<size_t>(n_ctx));
  for (int j = 0; j < n_ctx; ++j) rows[j] = cache.row(layer, j) + c0;
  add_scaled_rows_at(p, ldp, m, rows.data(), n_ctx, c1 - c0, y + c0, ldy);
}

// o [T, heads·dv] from q [T, heads·dqk] and the cached latents, naive form: every cached latent is expanded to this
// head's k_nope and v through W_UK and W_UV (deepseek-spec §2.2, the reference's "naive" attention).
void attend_naive(const MlaContext& ctx, const AttentionWeights& w, int layer, const LatentKvCache& cache, int pos0,
                  const float* q, int T, float* o) {
  const ModelConfig& c = ctx.config;
  const HeadDims d = HeadDims::of(c);
  const int heads = c.num_attention_heads, rows_per_head = d.dn + d.dv, n_ctx = pos0 + T;
  const float scale = static_cast<float>(c.softmax_scale());
  const Weight2D kv_b = w.kv_b_proj.view();
  ctx.pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
    std::vector<float> w_head(static_cast<size_t>(rows_per_head) * d.rank), buf, keys, values;
    for (int64_t h = h0; h < h1; ++h) {
      decode_rows(kv_b, h * rows_per_head, (h + 1) * rows_per_head, w_head.data());
      keys.resize(static_cast<size_t>(n_ctx) * d.dn);
      values.resize(static_cast<size_t>(n_ctx) * d.dv);
      for (int s = 0; s < n_ctx; ++s) {
        const float* latent = cache.row(layer, s);
        for (int j = 0; j < d.dn; ++j) keys[s * d.dn + j] = dot(w_head.data() + j * d.rank, latent, d.rank);
        for (int i = 0; i < d.dv; ++i) values[s * d.dv + i] = dot(w_head.data() + (d.dn + i) * d.rank, latent, d.rank);
      }
      for (int t = 0; t < T; ++t) {
        const float* qh = q + (static_cast<size_t>(t) * heads + h) * d.dqk;
        const int ctx_len = pos0 + t + 1;
        buf.resize(ctx_len);
        for (int s = 0; s < ctx_len; ++s)
          buf[s] = scale * (dot(qh, keys.data() + s * d.dn, d.dn) + dot(qh + d.dn, cache.row(layer, s) + d.rank, d.dr));
        softmax_inplace(buf.data(), ctx_len);
        float* oh = o + (static_cast<size_t>(t) * heads + h) * d.dv;
        std::fill(oh, oh + d.dv, 0.0f);
        for (int s = 0; s < ctx_len; ++s)
          for (int i = 0; i < d.dv; ++i) oh[i] += buf[s] * values[s * d.dv + i];
      }
    }
  });
}

// The same, absorbed form (DeepSeek-V3 inference/model.py), for a chunk of queries (more than kFewQueries, fewer than
// kExpandedMinTokens): queries move into latent space, q_lat = W_UKᵀ·q_nope, score against the cached latents
// directly, mix latents, and only the mix goes through W_UV. Per head, as products: q_lat [T, rank] = q_nope·W_UK;
// scores [T, ctx] = [q_lat ‖ q_rope]·[c ‖ k_rope]ᵀ; mixed = softmax·c; o = mixed·W_UVᵀ, read in place from kv_b_proj.
void attend_absorbed(const MlaContext& ctx, const AttentionWeights& w, int layer, const LatentKvCache& cache,
                     int pos0, const float* q, int T, float* o) {
  const ModelConfig& c = ctx.config;
  const HeadDims d = HeadDims::of(c);
  const int heads = c.num_attention_heads, rows_per_head = d.dn + d.dv;
  const int row = cache.row_size();  // rank + dr
  const float scale = static_cast<float>(c.softmax_scale());
  const Weight2D kv_b = w.kv_b_proj.view();

  ctx.pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
    std::vector<float> w_uv_f32, q_nope(static_cast<size_t>(T) * d.dn);
    // q_cat and mixed from a cache-line boundary, as the cache's rows: row_dots and add_scaled_rows read whole vectors.
    AlignedVector<float> q_cat(static_cast<size_t>(T) * row), mixed;
    std::vector<float> scores, oh(static_cast<size_t>(T) * d.dv);
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t r_uk = h * rows_per_head, r_uv = r_uk + d.dn;
      for (int t = 0; t < T; ++t) {
        const float* qh = q + (static_cast<size_t>(t) * heads + h) * d.dqk;
        std::copy_n(qh, d.dn, q_nope.data() + static_cast<size_t>(t) * d.dn);
        float* qc = q_cat.data() + static_cast<size_t>(t) * row;
        std::fill(qc, qc + d.rank, 0.0f);
        std::copy_n(qh + d.dn, d.dr, qc + d.rank);
      }
      add_scaled_weight_rows(kv_b, r_uk, r_uv, q_nope.data(), d.dn, T, q_cat.data(), row);

      const Weight2D w_uv = head_w_uv(kv_b, r_uv, d, w_uv_f32);

      for (int t0 = 0; t0 < T; t0 += kQueryChunk) {
        const int m = std::min(kQueryChunk, T - t0), n_ctx = pos0 + t0 + m;
        scores.assign(static_cast<size_t>(m) * n_ctx, 0.0f);
        score_cached(cache, layer, n_ctx, q_cat.data() + static_cast<size_t>(t0) * row, m, scores.data());
        causal_softmax(scores.data(), m, n_ctx, pos0 + t0 + 1, scale);
        // The mix as scaled latent rows added in token order (as attend_absorbed_few): a query's zero probabilities
        // past its context add nothing. (As a matmul against the latents transposed, its inner length was the
        // context, a few dozen for a chunk of a short prompt, and it ran at ~13 GFLOP/s.)
        mixed.assign(static_cast<size_t>(m) * d.rank, 0.0f);
        mix_cached(scores.data(), n_ctx, m, cache, layer, n_ctx, mixed.data(), d.rank);
        // The latent mix goes into W_UV rounded to about 16 bits, not 8: for q8/q4 weights one int8 rounding here is
        // the one activation rounding the naive form does not have, and on the test models it multiplied the logits'
        // error by up to six.
        matmul_serial_wide_activations(w_uv, mixed.data(), m, oh.data() + static_cast<size_t>(t0) * d.dv);
      }
      for (int t = 0; t < T; ++t)
        std::copy_n(oh.data() + static_cast<size_t>(t) * d.dv, d.dv, o + (static_cast<size_t>(t) * heads + h) * d.dv);
    }
  });
}

// A sequence's few queries for attend_absorbed_few: its cache, its first position, and its tokens [t0, t0 + n) of the
// step's queries and outputs.
struct FewQueries {
  const LatentKvCache* cache;
  int pos0, t0, n;
};

// Heads [h0, h1) of the packed queries q [T, heads·dqk] into latent space: row t·stride + (h − base) of q_cat (rank + dr
// wide, its rank part zero on entry) becomes [q_nope·W_UK ‖ q_rope], every token at once (each token's row is the bits
// it gets alone, add_scaled_weight_rows, as in attend_absorbed). Each head's W_UK rows are small products that would
// wait on memory line by line: the next head's rows are fetched while this one computes, one line per line read, and
// after the last head the rows at prefetch_after (−1: none).
void latent_queries(const Weight2D& kv_b, const HeadDims& d, int heads, const float* q, int T, int64_t h0, int64_t h1,
                    int64_t stride, int64_t base, int64_t prefetch_after, float* q_cat) {
  const int rows_per_head = d.dn + d.dv, row = d.rank + d.dr;
  std::vector<float> q_nope(static_cast<size_t>(T) * d.dn);
  prefetch_rows(kv_b, h0 * rows_per_head, h0 * rows_per_head + d.dn);
  for (int64_t h = h0; h < h1; ++h) {
    const int64_t next = h + 1 < h1 ? (h + 1) * rows_per_head : prefetch_after;
    for (int t = 0; t < T; ++t) {
      const float* qh = q + (static_cast<size_t>(t) * heads + h) * d.dqk;
      std::copy_n(qh, d.dn, q_nope.data() + static_cast<size_t>(t) * d.dn);
      std::copy_n(qh + d.dn, d.dr, q_cat + (static_cast<size_t>(t) * stride + (h - base)) * row + d.rank);
    }
    add_scaled_weight_rows(kv_b, h * rows_per_head, h * rows_per_head + d.dn, q_nope.data(), d.dn, T,
                           q_cat + (h - base) * row, stride * row, next);
  }
}

// Heads [h0, h1) of o [T, heads·dv]: each head's W_UV times its mixed latents, row t·stride + (h − base) of mixed
// (rank wide), rounded to about 16 bits (matmul_serial_wide_activations). The later heads' rows are left to the
// hardware prefetcher: fetching each next head's rows in one burst before its product held the thread on its fill
// buffers (W_UV's loop over 8 heads 77-80 µs per layer with the bursts, 64 without; q4, Xeon with 2 vCPUs).
void head_values(const Weight2D& kv_b, const HeadDims& d, int heads, const float* mixed, int T, int64_t h0, int64_t h1,
                 int64_t stride, int64_t base, float* o) {
  const int rows_per_head = d.dn + d.dv;
  std::vector<float> w_uv_f32, mixed_h(static_cast<size_t>(T) * d.rank), oh(static_cast<size_t>(T) * d.dv);
  for (int64_t h = h0; h < h1; ++h) {
    const Weight2D w_uv = head_w_uv(kv_b, h * rows_per_head + d.dn, d, w_uv_f32);
    for (int t = 0; t < T; ++t)
      std::copy_n(mixed + (static_cast<size_t>(t) * stride + (h - base)) * d.rank, d.rank,
                  mixed_h.data() + static_cast<size_t>(t) * d.rank);
    matmul_serial_wide_activations(w_uv, mixed_h.data(), T, oh.data());
    for (int t = 0; t < T; ++t)
      std::copy_n(oh.data() + static_cast<size_t>(t) * d.dv, d.dv, o + (static_cast<size_t>(t) * heads + h) * d.dv);
  }
}

// The absorbed form for a few queries per sequence (decode), for every sequence of a step at once: the same products
// as attend_absorbed, but each thread takes its heads together, so that a pass over a sequence's cached latents serves
// all of them (the cache is read twice per thread, layer and sequence: scores, then the mix), and W_UK and W_UV are
// read once per step for all sequences instead of once per sequence. A thread's heads become rows of a sequence's
// queries, i = t·nh + (h − h0): Q [n·nh, rank + dr] = [q_nope·W_UK ‖ q_rope]; scores = Q·[c ‖ k_rope]ᵀ; softmax;
// mixed = P·c; o = mixed·W_UVᵀ per head. Every (query, head) sees the same operations in the same order as in
// attend_absorbed, whatever the other sequences: bitwise the same results (each product below is independent per
// token).
void attend_absorbed_few(const MlaContext& ctx, const AttentionWeights& w, int layer,
                         std::span<const FewQueries> seqs, const float* q, float* o) {
  const ModelConfig& c = ctx.config;
  const HeadDims d = HeadDims::of(c);
  const int heads = c.num_attention_heads, rows_per_head = d.dn + d.dv;
  const int row = d.rank + d.dr;
  const float scale = static_cast<float>(c.softmax_scale());
  const Weight2D kv_b = w.kv_b_proj.view();
  int T = 0;
  for (const FewQueries& s : seqs) T = std::max(T, s.t0 + s.n);

  ctx.pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
    const int nh = static_cast<int>(h1 - h0);
    AlignedVector<float> q_cat(static_cast<size_t>(T) * nh * row, 0.0f);
    // After the last W_UK, the first W_UV.
    latent_queries(kv_b, d, heads, q, T, h0, h1, nh, h0, h0 * rows_per_head + d.dn, q_cat.data());

    std::vector<float> scores;
    AlignedVector<float> mixed(static_cast<size_t>(T) * nh * d.rank, 0.0f);
    for (const FewQueries& s : seqs) {
      const int n_ctx = s.pos0 + s.n, m = s.n * nh;
      scores.assign(static_cast<size_t>(m) * n_ctx, 0.0f);
      score_cached(*s.cache, layer, n_ctx, q_cat.data() + static_cast<size_t>(s.t0) * nh * row, m, scores.data());
      for (int i = 0; i < m; ++i)
        masked_softmax(scores.data() + static_cast<size_t>(i) * n_ctx, s.pos0 + i / nh + 1, n_ctx, scale);
      mix_cached(scores.data(), n_ctx, m, *s.cache, layer, n_ctx, mixed.data() + static_cast<size_t>(s.t0) * nh * d.rank,
                 d.rank);
    }

    head_values(kv_b, d, heads, mixed.data(), T, h0, h1, nh, h0, o);
  });
}

// attend_absorbed_few over long caches: the same products, in phases each split over the pool by what it reads, so
// that a step reads each cached latent about twice in all instead of twice per thread: W_UK by heads, the scores by
// cached tokens, the softmax by rows, the mix by latent columns, W_UV by heads. Queries are rows i = t·heads + h.
// Every (query, head) gets the operations of attend_absorbed_few in the same order (row_dots and add_scaled_rows give
// an element the same bits whatever its range): bitwise the same results, at the cost of five fork/joins instead of
// one (kLongCacheContext).
void attend_absorbed_long(const MlaContext& ctx, const AttentionWeights& w, int layer,
                          std::span<const FewQueries> seqs, const float* q, float* o) {
  const ModelConfig& c = ctx.config;
  const HeadDims d = HeadDims::of(c);
  const int heads = c.num_attention_heads;
  const int row = d.rank + d.dr;
  const float scale = static_cast<float>(c.softmax_scale());
  const Weight2D kv_b = w.kv_b_proj.view();
  ThreadPool& pool = ctx.pool;
  int T = 0;
  for (const FewQueries& s : seqs) T = std::max(T, s.t0 + s.n);
  const int64_t rows = static_cast<int64_t>(T) * heads;

  AlignedVector<float> q_cat(static_cast<size_t>(rows) * row, 0.0f);
  pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
    latent_queries(kv_b, d, heads, q, T, h0, h1, heads, 0, -1, q_cat.data());
  });

  // Per sequence its scores [n·heads, n_ctx]; the work as (sequence, range) items, taken in order by the threads.
  struct Item {
    int seq, begin, end;
  };
  std::vector<std::vector<float>> scores(seqs.size());
  std::vector<Item> score_items, mix_items;
  std::vector<std::pair<int, int>> score_rows;  // (sequence, row)
  for (size_t i = 0; i < seqs.size(); ++i) {
    const FewQueries& s = seqs[i];
    const int n_ctx = s.pos0 + s.n;
    scores[i].resize(static_cast<size_t>(s.n) * heads * n_ctx);
    for (int k0 = 0; k0 < n_ctx; k0 += kLongCacheScoreTokens)
      score_items.push_back({static_cast<int>(i), k0, std::min(n_ctx, k0 + kLongCacheScoreTokens)});
    for (int c0 = 0; c0 < d.rank; c0 += kMixColumns)
      mix_items.push_back({static_cast<int>(i), c0, std::min(d.rank, c0 + kMixColumns)});
    for (int r = 0; r < s.n * heads; ++r) score_rows.emplace_back(static_cast<int>(i), r);
  }
  // A thread's items of one sequence are adjacent ranges: one call for all of them, so that the kernels' blocking and
  // prefetches run across the items' bounds.
  const auto for_each_run = [](const std::vector<Item>& items, int64_t a, int64_t b, auto&& fn) {
    for (int64_t j = a; j < b;) {
      int64_t e = j + 1;
      while (e < b && items[e].seq == items[j].seq) ++e;
      fn(items[j].seq, items[j].begin, items[e - 1].end);
      j = e;
    }
  };
  pool.parallel_for(static_cast<int64_t>(score_items.size()), [&](int64_t a, int64_t b) {
    for_each_run(score_items, a, b, [&](int i, int begin, int end) {
      const FewQueries& s = seqs[i];
      score_cached(*s.cache, layer, s.pos0 + s.n, q_cat.data() + static_cast<size_t>(s.t0) * heads * row,
                   s.n * heads, scores[i].data(), begin, end);
    });
  });
  pool.parallel_for(static_cast<int64_t>(score_rows.size()), [&](int64_t a, int64_t b) {
    for (int64_t j = a; j < b; ++j) {
      const auto [i, r] = score_rows[j];
      const FewQueries& s = seqs[i];
      const int n_ctx = s.pos0 + s.n;
      masked_softmax(scores[i].data() + static_cast<size_t>(r) * n_ctx, s.pos0 + r / heads + 1, n_ctx, scale);
    }
  });
  AlignedVector<float> mixed(static_cast<size_t>(rows) * d.rank, 0.0f);
  pool.parallel_for(static_cast<int64_t>(mix_items.size()), [&](int64_t a, int64_t b) {
    for_each_run(mix_items, a, b, [&](int i, int begin, int end) {
      const FewQueries& s = seqs[i];
      const int n_ctx = s.pos0 + s.n;
      mix_cached_columns(scores[i].data(), n_ctx, s.n * heads, *s.cache, layer, n_ctx,
                         mixed.data() + static_cast<size_t>(s.t0) * heads * d.rank, d.rank, begin, end);
    });
  });

  pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
    head_values(kv_b, d, heads, mixed.data(), T, h0, h1, heads, 0, o);
  });
}

// The same for many queries, expanded form computed as products: all cached latents go through kv_b_proj once
// ([n_ctx, heads·(dn+dv)], one matmul over the pool), then per head scores = [q_nope ‖ q_rope]·[k_nope ‖ k_rope]ᵀ in
// causal chunks and o = softmax·v. For a long prompt this is about a fifth of the absorbed form's arithmetic
// (per head and query, 192 + 128 instead of 576 + 512 multiply-adds per key, plus the per-head projections).
void attend_expanded(const MlaContext& ctx, const AttentionWeights& w, int layer, const LatentKvCache& cache,
                     int pos0, const float* q, int T, float* o) {
  const ModelConfig& c = ctx.config;
  const HeadDims d = HeadDims::of(c);
  const int heads = c.num_attention_heads, rows_per_head = d.dn + d.dv, n_total = pos0 + T;
  const int key = d.dn + d.dr;
  const float scale = static_cast<float>(c.softmax_scale());

  UninitVector<float> latents(static_cast<size_t>(n_total) * d.rank);
  for (int s = 0; s < n_total; ++s) std::copy_n(cache.row(layer, s), d.rank, latents.data() + static_cast<size_t>(s) * d.rank);
  UninitVector<float> kv(static_cast<size_t>(n_total) * heads * rows_per_head);  // [n_ctx, heads·(dn + dv)]
  // Rounded to about 16 bits for q8/q4 weights, as the absorbed form reads the latents: rounding them once to int8
  // moved the test models' logits several times further from the reference.
  matmul_wide_activations(w.kv_b_proj.view(), latents.data(), n_total, kv.data(), ctx.pool);

  // Per head its keys transposed, [dn + dr, n_ctx], so that the scores are x·W products (add_scaled_rows: each query
  // element broadcast against a row of keys, no sums across lanes), as the mix already is. As dot products of
  // 192-long rows (matmul_serial's f32 panels, or row_dots) they took 2.0-2.3x (1.4-1.5x) the time of this form: a
  // prompt of 512 tokens spent about 4% of its time on them (BF16 bench model, session 56).
  ctx.pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
    // Rows of keys_t padded past a multiple of 16 floats: at n_ctx = 512 they were 2 KB apart, and the transpose's
    // stores to one column of them fell into two of L1's sets.
    constexpr int kBlock = 16;  // tokens transposed at a time: their rows read, each key row's 16 values stored at once
    const int64_t ldk = (n_total + kBlock - 1) / kBlock * kBlock + kBlock;
    std::vector<float> keys_t(static_cast<size_t>(key * ldk)), values(static_cast<size_t>(n_total) * d.dv);
    std::vector<float> q_cat(static_cast<size_t>(T) * key), scores, oh(static_cast<size_t>(T) * d.dv);
    for (int64_t h = h0; h < h1; ++h) {
      for (int s0 = 0; s0 < n_total; s0 += kBlock) {
        const int n = std::min(kBlock, n_total - s0);
        const float* src[kBlock];
        const float* rope[kBlock];
        for (int j = 0; j < n; ++j) {
          src[j] = kv.data() + (static_cast<size_t>(s0 + j) * heads + h) * rows_per_head;
          rope[j] = cache.row(layer, s0 + j) + d.rank;
          std::copy_n(src[j] + d.dn, d.dv, values.data() + static_cast<size_t>(s0 + j) * d.dv);
        }
        for (int c = 0; c < d.dn; ++c)
          for (int j = 0; j < n; ++j) keys_t[c * ldk + s0 + j] = src[j][c];
        for (int c = 0; c < d.dr; ++c)
          for (int j = 0; j < n; ++j) keys_t[(d.dn + c) * ldk + s0 + j] = rope[j][c];
      }
      for (int t = 0; t < T; ++t)
        std::copy_n(q + (static_cast<size_t>(t) * heads + h) * d.dqk, key, q_cat.data() + static_cast<size_t>(t) * key);
      std::fill(oh.begin(), oh.end(), 0.0f);
      for (int t0 = 0; t0 < T; t0 += kQueryChunk) {
        const int m = std::min(kQueryChunk, T - t0), n_ctx = pos0 + t0 + m;
        scores.assign(static_cast<size_t>(m) * n_ctx, 0.0f);
        add_scaled_rows(q_cat.data() + static_cast<size_t>(t0) * key, key, m, keys_t.data(), ldk, key, n_ctx,
                        scores.data(), n_ctx);
        causal_softmax(scores.data(), m, n_ctx, pos0 + t0 + 1, scale);
        add_scaled_rows(scores.data(), n_ctx, m, values.data(), d.dv, n_ctx, d.dv,
                        oh.data() + static_cast<size_t>(t0) * d.dv, d.dv);
      }
      for (int t = 0; t < T; ++t)
        std::copy_n(oh.data() + static_cast<size_t>(t) * d.dv, d.dv, o + (static_cast<size_t>(t) * heads + h) * d.dv);
    }
  });
}

}  // namespace

void mla_forward(const MlaContext& ctx, const AttentionWeights& w, int layer,
                 std::span<const AttentionSegment> segments, const float* x, float* out) {
  const ModelConfig& c = ctx.config;
  const HeadDims d = HeadDims::of(c);
  const int heads = c.num_attention_heads, row_size = d.rank + d.dr;
  const float eps = static_cast<float>(c.rms_norm_eps);
  ThreadPool& pool = ctx.pool;
  int T = 0;
  for (const AttentionSegment& s : segments) T += s.n_tokens;
  if (T == 0) return;

  // Queries [T, heads·dqk] (through q_lora when the model has it), and the latents with the shared rope key: the
  // projections that read x go in one pass, for every sequence of the batch at once.
  // Uninitialized: every buffer below is written in full (products, attention's outputs) before it is read.
  UninitVector<float> q(static_cast<size_t>(T) * heads * d.dqk);
  UninitVector<float> kva(static_cast<size_t>(T) * row_size);
  UninitVector<float> qa;
  PhaseTimer phase(ctx.phases, StepPhase::AttentionInput, [&] {
    return (w.q_proj ? weight_bytes(w.q_proj->view())
                     : weight_bytes(w.q_a_proj->view()) + weight_bytes(w.q_b_proj->view())) +
           weight_bytes(w.kv_a_proj_with_mqa.view());
  });
  if (w.q_proj) {
    const MatmulJob jobs[] = {{w.q_proj->view(), x, T, q.data()}, {w.kv_a_proj_with_mqa.view(), x, T, kva.data()}};
    matmul_batch(jobs, pool);
  } else {
    qa.resize(static_cast<size_t>(T) * c.q_lora_rank);
    const MatmulJob jobs[] = {{w.q_a_proj->view(), x, T, qa.data()}, {w.kv_a_proj_with_mqa.view(), x, T, kva.data()}};
    matmul_batch(jobs, pool);
    for (int t = 0; t < T; ++t) {
      float* row = qa.data() + static_cast<size_t>(t) * c.q_lora_rank;
      rmsnorm(row, w.q_a_layernorm.data(), c.q_lora_rank, eps, row);
    }
    matmul(w.q_b_proj->view(), qa.data(), T, q.data(), pool);
  }

  // Per sequence: rope at its own positions, its latents into its own cache, attention over its own cache. Sequences
  // with a few queries each (decode) go through attention together.
  phase.start(StepPhase::CacheWrite);
  const auto kv_b_bytes = [&] { return weight_bytes(w.kv_b_proj.view()); };
  UninitVector<float> o(static_cast<size_t>(T) * heads * d.dv);
  std::vector<FewQueries> few;
  int t0 = 0;
  for (const AttentionSegment& s : segments) {
    if (s.n_tokens == 0) continue;
    LatentKvCache& cache = *s.cache;
    const int n = s.n_tokens, pos0 = s.pos0;
    float* qs = q.data() + static_cast<size_t>(t0) * heads * d.dqk;
    for (int t = 0; t < n; ++t) {
      const RopeRotation rotation = rope_rotation(ctx.rope_inv_freq, pos0 + t);
      for (int h = 0; h < heads; ++h)
        rope_interleaved(qs + (static_cast<size_t>(t) * heads + h) * d.dqk + d.dn, rotation);
      const float* src = kva.data() + static_cast<size_t>(t0 + t) * row_size;
      float* row = cache.row(layer, pos0 + t);
      rmsnorm(src, w.kv_a_layernorm.data(), d.rank, eps, row);
      std::memcpy(row + d.rank, src + d.rank, sizeof(float) * d.dr);
      rope_interleaved(row + d.rank, rotation);
    }
    float* os = o.data() + static_cast<size_t>(t0) * heads * d.dv;
    static_assert(kFewQueries < kExpandedMinTokens);
    const bool few_queries = ctx.form != AttentionForm::Naive && n <= kFewQueries;
    if (few_queries) {
      few.push_back({&cache, pos0, t0, n});
    } else {
      phase.start(StepPhase::Attention, kv_b_bytes);
      if (ctx.form == AttentionForm::Naive) attend_naive(ctx, w, layer, cache, pos0, qs, n, os);
      else if (n >= kExpandedMinTokens) attend_expanded(ctx, w, layer, cache, pos0, qs, n, os);
      else attend_absorbed(ctx, w, layer, cache, pos0, qs, n, os);
      phase.start(StepPhase::CacheWrite);
    }
    t0 += n;
  }
  // Sequences of a few queries each: their queries packed one after the other (their t0 then index the packed rows),
  // attended together, and their outputs put back; those with long caches apart (attend_absorbed_long).
  const auto attend_packed = [&](std::vector<FewQueries> group, bool long_caches) {
    if (group.empty()) return;
    const size_t q_row = static_cast<size_t>(heads) * d.dqk, o_row = static_cast<size_t>(heads) * d.dv;
    std::vector<int> at(group.size());
    std::vector<float> q_few;
    int packed = 0;
    for (size_t i = 0; i < group.size(); ++i) {
      at[i] = group[i].t0;
      q_few.insert(q_few.end(), q.begin() + static_cast<std::ptrdiff_t>(at[i] * q_row),
                   q.begin() + static_cast<std::ptrdiff_t>((at[i] + group[i].n) * q_row));
      group[i].t0 = packed;
      packed += group[i].n;
    }
    std::vector<float> o_few(static_cast<size_t>(packed) * o_row);
    if (long_caches) attend_absorbed_long(ctx, w, layer, group, q_few.data(), o_few.data());
    else attend_absorbed_few(ctx, w, layer, group, q_few.data(), o_few.data());
    for (size_t i = 0; i < group.size(); ++i)
      std::copy_n(o_few.begin() + static_cast<std::ptrdiff_t>(group[i].t0 * o_row), group[i].n * o_row,
                  o.begin() + static_cast<std::ptrdiff_t>(at[i] * o_row));
  };
  phase.start(StepPhase::Attention, [&] { return few.empty() ? int64_t{0} : kv_b_bytes(); });
  std::vector<FewQueries> short_caches, long_caches;
  for (const FewQueries& f : few) (f.pos0 + f.n >= kLongCacheContext ? long_caches : short_caches).push_back(f);
  attend_packed(std::move(short_caches), false);
  attend_packed(std::move(long_caches), true);
  phase.start(StepPhase::AttentionOutput, [&] { return weight_bytes(w.o_proj.view()); });
  matmul(w.o_proj.view(), o.data(), T, out, pool);
}

void mla_forward(const MlaContext& ctx, const AttentionWeights& w, int layer, LatentKvCache& cache, int pos0,
                 const float* x, int n_tokens, float* out) {
  const AttentionSegment segment{&cache, pos0, n_tokens};
  mla_forward(ctx, w, layer, std::span(&segment, 1), x, out);
}

}  // namespace whale
