// Continuous batching: Model::forward_batch against one-sequence forward calls, and BatchEngine against Generator.
// Needs a checkpoint: WHALE_TEST_MODEL (set by CTest to the v3 fixture); skipped without it.
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "whale/core/error.h"
#include "whale/runtime/batch_engine.h"
#include "whale/runtime/generator.h"
#include "whale/runtime/reasoning_splitter.h"

namespace whale {
namespace {

const char* test_model() { return std::getenv("WHALE_TEST_MODEL"); }

std::vector<int32_t> tokens(int n, int seed) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((seed * 37 + i * 11) % 200 + 3));
  return t;
}

// The logits of every token of `prompt`, fed to a fresh cache in chunks of `chunk` tokens.
std::vector<float> logits_in_chunks(const Model& model, const std::vector<int32_t>& prompt, size_t chunk,
                                    ThreadPool& pool, LatentKvCache cache) {
  std::vector<float> logits;
  for (size_t i = 0; i < prompt.size(); i += chunk) {
    const std::span<const int32_t> part(prompt.data() + i, std::min(chunk, prompt.size() - i));
    const std::vector<float> rows = model.forward(part, cache, pool, AttentionForm::Absorbed, Model::LogitRows::All);
    logits.insert(logits.end(), rows.begin(), rows.end());
  }
  return logits;
}

TEST(ForwardBatch, EachSequenceGetsWhatItGetsAlone) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  ThreadPool pool(2);
  // Three sequences at different positions: a prompt chunk, a decode step after a prompt, and a fresh prompt.
  const std::vector<int32_t> a0 = tokens(9, 1), a1 = tokens(6, 2), b0 = tokens(12, 3), b1 = {7}, c0 = tokens(5, 4);
  LatentKvCache a = model.make_cache(64), b = model.make_cache(64), c = model.make_cache(64);
  LatentKvCache a_ref = model.make_cache(64), b_ref = model.make_cache(64), c_ref = model.make_cache(64);
  model.forward(a0, a_ref, pool);
  model.forward(b0, b_ref, pool);
  const std::vector<float> want_a = model.forward(a1, a_ref, pool, AttentionForm::Absorbed, Model::LogitRows::All);
  const std::vector<float> want_b = model.forward(b1, b_ref, pool, AttentionForm::Absorbed, Model::LogitRows::Last);
  const std::vector<float> want_c = model.forward(c0, c_ref, pool, AttentionForm::Absorbed, Model::LogitRows::Last);

  const Model::SequenceStep first[] = {{a0, &a, Model::LogitRows::None}, {b0, &b, Model::LogitRows::Last}};
  const auto r0 = model.forward_batch(first, pool);
  EXPECT_TRUE(r0[0].empty());
  EXPECT_EQ(r0[1].size(), static_cast<size_t>(model.config().vocab_size));
  const Model::SequenceStep second[] = {{a1, &a, Model::LogitRows::All}, {b1, &b, Model::LogitRows::Last},
                                        {c0, &c, Model::LogitRows::Last}};
  const auto r1 = model.forward_batch(second, pool);
  EXPECT_EQ(r1[0], want_a);
  EXPECT_EQ(r1[1], want_b);
  EXPECT_EQ(r1[2], want_c);
  EXPECT_EQ(a.size(), 15);
  EXPECT_EQ(b.size(), 13);
  EXPECT_EQ(c.size(), 5);

  // Several sequences of a few queries each (decode steps, which attention takes together) around a prompt chunk.
  const std::vector<int32_t> a2 = {11}, b2 = tokens(3, 5), c2 = tokens(2, 6), d0 = tokens(7, 7);
  LatentKvCache d = model.make_cache(64), d_ref = model.make_cache(64);
  const std::vector<float> want_a2 = model.forward(a2, a_ref, pool, AttentionForm::Absorbed, Model::LogitRows::All);
  const std::vector<float> want_b2 = model.forward(b2, b_ref, pool, AttentionForm::Absorbed, Model::LogitRows::All);
  const std::vector<float> want_c2 = model.forward(c2, c_ref, pool, AttentionForm::Absorbed, Model::LogitRows::All);
  const std::vector<float> want_d = model.forward(d0, d_ref, pool, AttentionForm::Absorbed, Model::LogitRows::Last);
  const Model::SequenceStep third[] = {{a2, &a, Model::LogitRows::All}, {d0, &d, Model::LogitRows::Last},
                                       {b2, &b, Model::LogitRows::All}, {c2, &c, Model::LogitRows::All}};
  const auto r2 = model.forward_batch(third, pool);
  EXPECT_EQ(r2[0], want_a2);
  EXPECT_EQ(r2[1], want_d);
  EXPECT_EQ(r2[2], want_b2);
  EXPECT_EQ(r2[3], want_c2);
}

// Attention walks the latent cache page by page; the page size must not change a bit of the result, whichever form
// the attention takes (a chunk of queries, a few queries, a long chunk expanded).
TEST(ForwardBatch, PageSizeChangesNothing) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  ThreadPool pool(2);
  LatentKvCache small = model.make_cache(160, 3), large = model.make_cache(160, 64);
  EXPECT_EQ(small.page_tokens(), 3);
  for (const std::vector<int32_t>& chunk : {tokens(9, 1), tokens(4, 2), std::vector<int32_t>{5}, tokens(7, 3),
                                            tokens(70, 4), std::vector<int32_t>{6}}) {
    const auto want = model.forward(chunk, large, pool, AttentionForm::Absorbed, Model::LogitRows::All);
    EXPECT_EQ(model.forward(chunk, small, pool, AttentionForm::Absorbed, Model::LogitRows::All), want)
        << "after " << large.size() << " tokens";
  }
  EXPECT_EQ(small.size(), 92);
  EXPECT_EQ(small.pages().size(), 31u);
}

// Up to kExpandedMinTokens queries a chunk, the absorbed and few-query attention forms give a query the same bits
// whatever the chunk it comes in, so a prompt's logits do not depend on how it is split (one pass, token by token,
// 7 at a time; a prompt split between engine steps). Before the absorbed form mixed the latents in token order as the
// few-query form does, the three differed in the last bits.
TEST(ForwardBatch, ShortPromptLogitsDoNotDependOnChunking) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  ThreadPool pool(2);
  const std::vector<int32_t> prompt = tokens(40, 5);
  auto chunked = [&](size_t chunk) { return logits_in_chunks(model, prompt, chunk, pool, model.make_cache(64, 16)); };
  const std::vector<float> whole = chunked(prompt.size());
  ASSERT_EQ(whole.size(), prompt.size() * static_cast<size_t>(model.config().vocab_size));
  for (size_t chunk : {1u, 3u, 7u, 16u}) EXPECT_EQ(chunked(chunk), whole) << "chunks of " << chunk;
}

// Decode over a long cache runs in phases split by cached tokens and by latent columns (attend_absorbed_long) instead
// of by heads; a query must still get the bits a prompt chunk gives it (attend_absorbed, 7 queries a chunk), with any
// number of threads, over pages that the scoring ranges cross, and batched with a short-cache sequence.
TEST(ForwardBatch, LongCacheDecodeLogitsDoNotDependOnChunking) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  const std::vector<int32_t> prompt = tokens(300, 8);  // past 256 cached tokens the long-cache form takes over
  const int vocab = model.config().vocab_size;
  auto chunked = [&](size_t chunk, int threads) {
    ThreadPool pool(threads);
    return logits_in_chunks(model, prompt, chunk, pool, model.make_cache(320, 24));
  };
  const std::vector<float> want = chunked(7, 2);
  ASSERT_EQ(want.size(), prompt.size() * static_cast<size_t>(vocab));
  for (int threads : {1, 2, 3}) EXPECT_EQ(chunked(1, threads), want) << threads << " threads";

  // One step of a long-cache sequence batched with a short-cache one gives each what it gets alone.
  ThreadPool pool(2);
  LatentKvCache a = model.make_cache(320), b = model.make_cache(320);
  LatentKvCache a_ref = model.make_cache(320), b_ref = model.make_cache(320);
  for (LatentKvCache* cache : {&a, &a_ref}) model.forward(std::span(prompt).first(290), *cache, pool);
  for (LatentKvCache* cache : {&b, &b_ref}) model.forward(std::span(prompt).first(10), *cache, pool);
  const std::vector<int32_t> a1 = {prompt[290]}, b1 = {prompt[10]};
  const std::vector<float> want_a = model.forward(a1, a_ref, pool, AttentionForm::Absorbed, Model::LogitRows::Last);
  const std::vector<float> want_b = model.forward(b1, b_ref, pool, AttentionForm::Absorbed, Model::LogitRows::Last);
  const Model::SequenceStep step[] = {{a1, &a, Model::LogitRows::Last}, {b1, &b, Model::LogitRows::Last}};
  const auto got = model.forward_batch(step, pool);
  EXPECT_EQ(got[0], want_a);
  EXPECT_EQ(got[1], want_b);
}

// Caches that share pages (a prefix reused across sequences) each see their own tokens after the shared ones: a
// write into a shared page goes to a copy.
TEST(ForwardBatch, SharedPagesAreCopiedBeforeWrites) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  ThreadPool pool(2);
  const std::vector<int32_t> prefix = tokens(10, 1), x = {5, 6}, y = {7}, z = {8}, w = {9};
  LatentKvCache a = model.make_cache(64, 3), a_ref = model.make_cache(64, 3), b_ref = model.make_cache(64, 3);
  model.forward(prefix, a, pool);
  model.forward(prefix, a_ref, pool);
  model.forward(prefix, b_ref, pool);
  LatentKvCache b = model.make_cache(64, 3);
  b.share(a.pages(), 10);  // token 9 sits in page 3, which b then writes into
  EXPECT_EQ(b.size(), 10);
  EXPECT_EQ(b.pages()[3], a.pages()[3]);
  const auto all = Model::LogitRows::All;
  const auto b1 = model.forward(x, b, pool, AttentionForm::Absorbed, all);
  EXPECT_NE(b.pages()[3], a.pages()[3]);
  EXPECT_EQ(b.pages()[2], a.pages()[2]);  // full pages stay shared
  const auto a1 = model.forward(y, a, pool, AttentionForm::Absorbed, all);
  const auto b2 = model.forward(z, b, pool, AttentionForm::Absorbed, all);
  const auto a2 = model.forward(w, a, pool, AttentionForm::Absorbed, all);
  EXPECT_EQ(b1, model.forward(x, b_ref, pool, AttentionForm::Absorbed, all));
  EXPECT_EQ(a1, model.forward(y, a_ref, pool, AttentionForm::Absorbed, all));
  EXPECT_EQ(b2, model.forward(z, b_ref, pool, AttentionForm::Absorbed, all));
  EXPECT_EQ(a2, model.forward(w, a_ref, pool, AttentionForm::Absorbed, all));
  EXPECT_THROW(b.share(a.pages(), 13), Error);  // a holds 12 tokens: 4 pages of 3
}

TEST(ForwardBatch, RejectsASharedCacheAndOverflow) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  ThreadPool pool(1);
  LatentKvCache a = model.make_cache(8);
  const std::vector<int32_t> t = tokens(3, 1), long_t = tokens(9, 2);
  const Model::SequenceStep shared[] = {{t, &a}, {t, &a}};
  EXPECT_THROW(model.forward_batch(shared, pool), Error);
  const Model::SequenceStep overflow[] = {{long_t, &a}};
  EXPECT_THROW(model.forward_batch(overflow, pool), Error);
}

struct Collected {
  std::vector<int32_t> ids;
  std::string text;
  SequenceOutcome outcome;
};

// Submits a request and returns a future of what it produced.
std::future<Collected> run(BatchEngine& engine, std::vector<int32_t> prompt, int max_tokens,
                           std::shared_ptr<SequenceRequest>* out = nullptr) {
  auto done = std::make_shared<std::promise<Collected>>();
  auto got = std::make_shared<Collected>();
  auto r = std::make_shared<SequenceRequest>();
  r->prompt = std::move(prompt);
  r->sampling.temperature = 0;
  r->options.max_tokens = max_tokens;
  r->on_token = [got](std::string_view text, const SampledToken& t) {
    got->ids.push_back(t.id);
    got->text += text;
    return true;
  };
  r->on_done = [got, done](std::string_view tail, const SequenceOutcome& o) {
    got->text += tail;
    got->outcome = o;
    done->set_value(*got);
  };
  if (out) *out = r;
  EXPECT_TRUE(engine.submit(r));
  return done->get_future();
}

// The greedy tokens of `prompt` run alone through a Generator with its own pool.
std::vector<int32_t> greedy_alone(const Model& model, const Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                                  int context, int max_tokens) {
  ThreadPool solo(2);
  Generator g(model, tokenizer, solo, context);
  SamplingParams sp;
  sp.temperature = 0;
  Sampler sampler(sp);
  GenerateOptions o;
  o.max_tokens = max_tokens;
  return g.generate(prompt, sampler, o, [](std::string_view) { return true; }).tokens;
}

TEST(BatchEngine, GreedySequencesMatchGeneratorAlone) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  const Tokenizer tokenizer = Tokenizer::load(test_model());
  ThreadPool pool(2);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 7; ++i) prompts.push_back(tokens(3 + 5 * i, i));  // up to 33 tokens: several prefill chunks
  std::vector<std::vector<int32_t>> alone;
  for (const auto& p : prompts) alone.push_back(greedy_alone(model, tokenizer, p, 128, 10));
  EngineOptions eo;
  eo.slots = 3;  // fewer slots than sequences: some wait in the queue
  eo.context = 128;
  eo.prefill_chunk = 8;
  BatchEngine engine(model, tokenizer, pool, eo);
  std::vector<std::future<Collected>> futures;
  for (const auto& p : prompts) futures.push_back(run(engine, p, 10));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Collected c = futures[i].get();
    EXPECT_EQ(c.ids, alone[i]) << "sequence " << i;
    EXPECT_EQ(c.outcome.completion_tokens, static_cast<int>(c.ids.size()));
    EXPECT_EQ(c.outcome.prompt_tokens, static_cast<int>(prompts[i].size()));
  }
  const EngineStats st = engine.stats();
  EXPECT_EQ(st.sequences_started, prompts.size());
  EXPECT_EQ(st.active, 0);
}

TEST(BatchEngine, ReusesAPrefixCancelsAndRefusesWhenFull) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  const Tokenizer tokenizer = Tokenizer::load(test_model());
  ThreadPool pool(1);
  EngineOptions eo;
  eo.slots = 1;
  eo.context = 64;
  eo.max_queue = 1;
  BatchEngine engine(model, tokenizer, pool, eo);
  std::vector<int32_t> p = tokens(20, 5);
  EXPECT_EQ(run(engine, p, 2).get().outcome.cached_tokens, 0);
  p.push_back(9);
  EXPECT_EQ(run(engine, p, 2).get().outcome.cached_tokens, 20);  // the first 20 tokens are still in the slot

  // A cancelled sequence ends with Cancelled.
  std::shared_ptr<SequenceRequest> r;
  auto f = run(engine, tokens(5, 6), 40, &r);
  r->cancelled->store(true);
  const Collected c = f.get();
  EXPECT_TRUE(c.outcome.finish == FinishReason::Cancelled || c.outcome.completion_tokens <= 40);

  // Bad requests throw; a prompt that fills the context is refused.
  auto empty = std::make_shared<SequenceRequest>();
  EXPECT_THROW(engine.submit(empty), Error);
  auto too_long = std::make_shared<SequenceRequest>();
  too_long->prompt = tokens(64, 1);
  EXPECT_THROW(engine.submit(too_long), Error);

  // A full queue refuses (the server answers 429): the one slot held busy inside its sequence's first on_token, one
  // sequence waiting, and a third is turned away; the two accepted ones then finish.
  std::promise<void> entered, release, busy_done;
  std::shared_future<void> gate = release.get_future().share();
  bool first = true;
  auto busy = std::make_shared<SequenceRequest>();
  busy->prompt = tokens(4, 7);
  busy->sampling.temperature = 0;
  busy->options.max_tokens = 3;
  busy->options.ignore_eos = true;  // the first token must reach on_token
  busy->on_token = [&](std::string_view, const SampledToken&) {
    if (first) {
      first = false;
      entered.set_value();
      gate.wait();
    }
    return true;
  };
  busy->on_done = [&](std::string_view, const SequenceOutcome&) { busy_done.set_value(); };
  ASSERT_TRUE(engine.submit(busy));
  entered.get_future().wait();
  auto waiting = run(engine, tokens(4, 8), 2);
  auto refused = std::make_shared<SequenceRequest>();
  refused->prompt = tokens(4, 9);
  refused->options.max_tokens = 1;
  EXPECT_FALSE(engine.submit(refused)) << "a full queue accepted a request";
  EXPECT_EQ(engine.stats().queue_depth, 1);
  release.set_value();
  busy_done.get_future().wait();
  EXPECT_EQ(waiting.get().outcome.completion_tokens, 2);
  EXPECT_TRUE(engine.submit(refused)) << "the queue did not take requests again once it had room";
}

// A prompt that starts like one another slot is running takes that slot's whole pages of the shared start (through
// the prefix cache) and computes only the rest; with the prefix cache off it computes everything.
TEST(BatchEngine, SharesPrefixPagesAcrossSlots) {
  if (!test_model()) GTEST_SKIP() << "WHALE_TEST_MODEL is not set";
  const Model model(test_model());
  const Tokenizer tokenizer = Tokenizer::load(test_model());
  std::vector<int32_t> first = tokens(130, 7), second = first;  // 130 shared tokens: two whole pages and 2 more
  for (int32_t t : tokens(5, 8)) first.push_back(t);
  for (int32_t t : tokens(6, 9)) second.push_back(t);
  const std::vector<int32_t> alone = greedy_alone(model, tokenizer, second, 256, 5);
  for (const int prefix_cache_tokens : {1024, 0}) {
    ThreadPool pool(2);
    EngineOptions eo;
    eo.slots = 2;
    eo.context = 256;
    eo.prefix_cache_tokens = prefix_cache_tokens;
    BatchEngine engine(model, tokenizer, pool, eo);
    // The first sequence holds its slot (its first token waits for the second's submission) while the second runs.
    std::promise<void> started, submitted;
    auto go = submitted.get_future().share();
    auto r = std::make_shared<SequenceRequest>();
    r->prompt = first;
    r->sampling.temperature = 0;
    r->options.max_tokens = 20;
    r->options.ignore_eos = true;
    std::promise<void> done;
    auto finished = done.get_future();
    r->on_token = [&started, go, n = 0](std::string_view, const SampledToken&) mutable {
      if (n++ == 0) {
        started.set_value();
        go.wait();
      }
      return true;
    };
    r->on_done = [&done](std::string_view, const SequenceOutcome&) { done.set_value(); };
    ASSERT_TRUE(engine.submit(r));
    started.get_future().wait();
    auto f = run(engine, second, 5);
    submitted.set_value();
    const Collected c = f.get();
    finished.wait();
    EXPECT_EQ(c.outcome.cached_tokens, prefix_cache_tokens ? 128 : 0);
    EXPECT_EQ(c.ids, alone);
    const EngineStats st = engine.stats();
    EXPECT_EQ(st.cached_prompt_tokens, prefix_cache_tokens ? 128u : 0u);
    EXPECT_EQ(st.prefix_cache_tokens, prefix_cache_tokens ? 128 : 0);  // the two prompts' shared pages, once
  }
}

TEST(ReasoningSplitter, SplitsAtTheClosingTagAcrossPieces) {
  ReasoningSplitter s(true);
  std::string thinking, answer;
  auto out = [&](std::string_view t, bool th) { (th ? thinking : answer) += t; };
  for (std::string_view piece : {"I think", " so </th", "ink>\n\nYes", "."}) s.push(piece, out);
  s.finish(out);
  EXPECT_EQ(thinking, "I think so </think>");
  EXPECT_EQ(answer, "\n\nYes.");
  EXPECT_FALSE(s.thinking());
}

}  // namespace
}  // namespace whale
