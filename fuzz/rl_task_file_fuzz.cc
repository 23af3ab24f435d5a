// libFuzzer target: whale rl's inputs on arbitrary bytes. The bytes as a problem file (parse_problem_lines) must give
// problems with a question and an answer, or throw whale::Error; the same bytes as a model's completion
// (parse_response) and as an answer to each verifier must never throw. Anything else (a crash, a sanitizer report,
// another exception type, a stack overflow in the countdown parser) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "whale/core/error.h"
#include "whale/train/rewards.h"
#include "whale/train/rl_tasks.h"

namespace {

// One problem per verifier; the countdown one's numbers include a repeat and a large value, so that the multiset
// check and the overflow checks are reachable.
whale::train::RlProblem problem(whale::train::RlProblem::Verifier verifier) {
  whale::train::RlProblem p;
  p.verifier = verifier;
  p.answer = verifier == whale::train::RlProblem::Verifier::Numeric ? "1,786.5" : "(50 - 25) * 7 + 3";
  p.numbers = {3, 7, 25, 50, 50, 3037000500};
  p.target = 178;
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using Verifier = whale::train::RlProblem::Verifier;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& p : whale::train::parse_problem_lines(text, "fuzz.jsonl"))
      if (p.question.empty() || p.answer.empty()) std::abort();
  } catch (const whale::Error&) {
  }
  const whale::train::ParsedResponse response = whale::train::parse_response(text);
  if (response.well_formed && response.answer.empty()) std::abort();
  for (Verifier v : {Verifier::Exact, Verifier::Numeric, Verifier::Countdown}) {
    const whale::train::RlProblem p = problem(v);
    whale::train::verify(p, text);
    const double reward = whale::train::total_reward(p, response);
    if (!(reward >= 0.0 && reward <= 1.1 + 1e-12)) std::abort();
  }
  return 0;
}
