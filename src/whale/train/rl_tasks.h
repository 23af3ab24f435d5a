// Verifiable problems for `whale rl` (R1-Zero-style GRPO): generated arithmetic and countdown problems, and
// question / answer pairs from a user's .jsonl file. The rewards that check a model's answers are in rewards.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace whale::train {

struct RlProblem {
  enum class Kind { Addition, Multiplication, Countdown, Qa };
  // How an answer is checked (rewards.h, verify): exact text, a number, or a countdown expression.
  enum class Verifier { Exact, Numeric, Countdown };

  std::string question;          // the user-facing prompt text, e.g. "What is 47*38?"
  std::string answer;            // canonical answer text, e.g. "1786"; for countdown, one solution expression
  Kind kind = Kind::Qa;
  std::vector<int64_t> numbers;  // countdown: the numbers to use, each exactly once; empty otherwise
  int64_t target = 0;            // countdown: the value to make
  Verifier verifier = Verifier::Exact;
};

struct TaskOptions {
  // Addition and multiplication: each operand's digit count is drawn uniformly from [min_digits, max_digits], then
  // the operand uniformly among the numbers with that many digits (one digit: 1..9). At most 18 digits for addition
  // and 9 for multiplication, so that the result fits in int64.
  int min_digits = 1;
  int max_digits = 3;
  // Countdown: how many numbers (2..6), each drawn uniformly from [1, 99].
  int countdown_numbers = 4;
};

// A uniform draw from [lo, hi] by rejection from rng's 64-bit outputs. std::uniform_int_distribution's mapping is
// left to each standard library, and problem sets and example orders must not depend on which one whale was built
// with.
int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi);

// `count` problems of `task` ("addition", "multiplication" or "countdown"), a pure function of (task, count, seed,
// options) on every standard library. Countdown targets lie in [1, 999] and are reachable by construction.
std::vector<RlProblem> generate_problems(const std::string& task, int64_t count, uint64_t seed,
                                         const TaskOptions& options = {});

// `held_out` without the problems whose question text is also a question of `train`; with held-out problems
// generated from another seed, this makes the two sets disjoint.
std::vector<RlProblem> remove_overlap(const std::vector<RlProblem>& train, std::vector<RlProblem> held_out);

struct ProblemSplit {
  std::vector<RlProblem> train;
  std::vector<RlProblem> held_out;
};

// Shuffles `problems` (a pure function of seed) and holds out the first held_out_count of them; training problems
// whose question also appears among the held-out ones are dropped, so the training set may come out smaller.
// Throws Error unless 0 <= held_out_count <= problems.size().
ProblemSplit held_out_split(std::vector<RlProblem> problems, int64_t held_out_count, uint64_t seed);

// The problems of a .jsonl text: one object per line, {"question": string, "answer": string or number,
// "verifier": "exact" | "numeric" (optional, default "exact")}; blank lines skipped, other fields ignored. Errors
// are one line naming source:line and the field at fault; a text without problems is an error too.
std::vector<RlProblem> parse_problem_lines(std::string_view text, const std::string& source);

// parse_problem_lines on the contents of `path`; throws Error naming it if it cannot be read.
std::vector<RlProblem> load_problem_file(const std::filesystem::path& path);

}  // namespace whale::train
