// Rewards for `whale rl`: the R1 response format (reasoning, then </think>, then the final answer) and the check of
// that answer against an RlProblem. Nothing here throws on a model's output, whatever it holds.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "whale/train/rl_tasks.h"

namespace whale::train {

struct ParsedResponse {
  bool well_formed = false;
  std::string reasoning;  // trimmed text between an optional <think> and </think>
  std::string answer;     // trimmed text after </think>
};

// Splits a completion (what the model wrote after the prompt, with or without a leading <think>, since chat
// templates differ on whether they open it) at its </think>. Well formed: exactly one </think>, at most one <think>
// and that before the </think>, and a non-empty answer. The fields are filled whenever there is exactly one
// </think>, malformed or not.
ParsedResponse parse_response(std::string_view completion);

// 1 for a well-formed response, else 0.
double format_reward(const ParsedResponse& response);

// The value of `text` as a number: optional sign, digits with optional thousands separators in groups of three
// ("1,786"), optional decimal part, optional trailing period ("1786."), surrounding whitespace ignored. No
// exponents, infinities or NaNs. nullopt when it is not such a number.
std::optional<double> parse_number(std::string_view text);

// Whether `answer` solves `problem`, by problem.verifier:
//   Exact: equal to problem.answer, both trimmed of whitespace.
//   Numeric: both parse_number, and agree within 1e-9 absolute or 1e-9 relative.
//   Countdown: an expression of integer literals, + - * / (or × ÷) and parentheses, optionally followed by
//     "= <target>", that uses problem.numbers exactly once each (as a multiset, no other literals) and evaluates to
//     problem.target in exact rational arithmetic. Intermediate fractions are allowed ((7/2)*2 makes 7); no unary
//     minus; division by zero, int64 overflow or parentheses nested deeper than 64 make it false.
bool verify(const RlProblem& problem, std::string_view answer);

// 1 when the response is well formed and its answer verifies, else 0.
double accuracy_reward(const RlProblem& problem, const ParsedResponse& response);

struct RewardWeights {
  double accuracy = 1.0;
  double format = 0.1;
};

// weights.accuracy · accuracy_reward + weights.format · format_reward.
double total_reward(const RlProblem& problem, const ParsedResponse& response, const RewardWeights& weights = {});

}  // namespace whale::train
