// Tokenizer speed: load time of tokenizer.json and single-thread encode throughput over a corpus of cases
// (tests/tokenizer/make_corpus.mjs output). Prints one JSON line with the median of --repeat runs.
//   tokenizer_bench --tokenizer DIR --corpus corpus.json [--repeat 5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/tokenizer/tokenizer.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, corpus_path;
  int repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tokenizer")) dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--corpus")) corpus_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--repeat")) repeat = std::max(1, std::atoi(argv[i + 1]));
  }
  if (dir.empty() || corpus_path.empty()) {
    std::fprintf(stderr, "usage: tokenizer_bench --tokenizer DIR --corpus corpus.json [--repeat N]\n");
    return 2;
  }
  try {
    std::ifstream in(corpus_path);
    if (!in) whale::fail("{}: cannot open", corpus_path);
    const nlohmann::json corpus = nlohmann::json::parse(in);
    std::vector<std::string> texts;
    size_t bytes = 0;
    for (const auto& c : corpus) {
      texts.push_back(c.at("text").get<std::string>());
      bytes += texts.back().size();
    }

    std::vector<double> load_s, encode_s;
    size_t n_ids = 0;
    for (int r = 0; r < repeat; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      const whale::Tokenizer tok = whale::Tokenizer::load(dir);
      load_s.push_back(seconds_since(t0));
      // A fresh tokenizer each round, so every round starts with a cold piece cache.
      t0 = std::chrono::steady_clock::now();
      n_ids = 0;
      for (const std::string& t : texts) n_ids += tok.encode(t, false).size();
      encode_s.push_back(seconds_since(t0));
    }
    std::printf("{\"engine\":\"whale\",\"cases\":%zu,\"bytes\":%zu,\"ids\":%zu,\"load_ms\":%.1f,\"encode_s\":%.3f,"
                "\"encode_mb_s\":%.2f}\n",
                texts.size(), bytes, n_ids, 1e3 * median(load_s), median(encode_s), bytes / 1e6 / median(encode_s));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
