#include "whale/train/rl_tasks.h"

#include <algorithm>
#include <climits>
#include <random>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/io/json_file.h"
#include "whale/io/text_file.h"
#include "whale/train/rewards.h"

namespace whale::train {
namespace {

constexpr int64_t kCountdownMin = 1, kCountdownMax = 99;
constexpr int64_t kTargetMin = 1, kTargetMax = 999;
constexpr int kCountdownAttempts = 100;

int64_t power_of_ten(int exponent) {
  int64_t p = 1;
  for (int i = 0; i < exponent; ++i) p *= 10;
  return p;
}

void check_digits(const TaskOptions& o, int max_allowed, const std::string& task) {
  if (o.min_digits < 1 || o.min_digits > o.max_digits || o.max_digits > max_allowed)
    fail("{}: operand digits [{}, {}] must satisfy 1 <= min_digits <= max_digits <= {}", task, o.min_digits,
         o.max_digits, max_allowed);
}

int64_t draw_operand(std::mt19937_64& rng, const TaskOptions& o) {
  const int digits = static_cast<int>(uniform_int(rng, o.min_digits, o.max_digits));
  return uniform_int(rng, digits == 1 ? 1 : power_of_ten(digits - 1), power_of_ten(digits) - 1);
}

RlProblem arithmetic_problem(std::mt19937_64& rng, const TaskOptions& o, RlProblem::Kind kind) {
  const int64_t a = draw_operand(rng, o);
  const int64_t b = draw_operand(rng, o);
  const bool add = kind == RlProblem::Kind::Addition;
  RlProblem p;
  p.question = fmt::format("What is {}{}{}?", a, add ? '+' : '*', b);
  p.answer = std::to_string(add ? a + b : a * b);
  p.kind = kind;
  p.verifier = RlProblem::Verifier::Numeric;
  return p;
}

RlProblem addition_problem(std::mt19937_64& rng, const TaskOptions& o) {
  return arithmetic_problem(rng, o, RlProblem::Kind::Addition);
}

RlProblem multiplication_problem(std::mt19937_64& rng, const TaskOptions& o) {
  return arithmetic_problem(rng, o, RlProblem::Kind::Multiplication);
}

// A countdown subexpression: its value and its text, parenthesised when it becomes an operand unless it is a literal.
struct Term {
  int64_t value;
  std::string text;
  bool literal;
};

std::string operand_text(const Term& t) { return t.literal ? t.text : "(" + t.text + ")"; }

// a op b for a random op, with a >= b >= 0: subtraction stays non-negative and division is only taken when exact,
// so every intermediate value is a whole number (the verifier accepts fractions, the generator needs none).
Term combine(std::mt19937_64& rng, const Term& a, const Term& b) {
  const Term& hi = a.value >= b.value ? a : b;
  const Term& lo = a.value >= b.value ? b : a;
  char op = "+-*/"[uniform_int(rng, 0, 3)];
  if (op == '/' && (lo.value == 0 || hi.value % lo.value != 0)) op = '+';
  const int64_t value = op == '+'   ? hi.value + lo.value
                        : op == '-' ? hi.value - lo.value
                        : op == '*' ? hi.value * lo.value
                                    : hi.value / lo.value;
  return {value, operand_text(hi) + " " + op + " " + operand_text(lo), false};
}

// One random way of using every number once: two random terms are replaced by their combination until one is left.
// Values stay below 99^6, far from int64 overflow.
Term random_expression(std::mt19937_64& rng, const std::vector<int64_t>& numbers) {
  std::vector<Term> terms;
  for (int64_t n : numbers) terms.push_back({n, std::to_string(n), true});
  while (terms.size() > 1) {
    const int64_t last = static_cast<int64_t>(terms.size()) - 1;
    std::swap(terms[uniform_int(rng, 0, last)], terms[last]);
    std::swap(terms[uniform_int(rng, 0, last - 1)], terms[last - 1]);
    Term merged = combine(rng, terms[last - 1], terms[last]);
    terms.resize(terms.size() - 2);
    terms.push_back(std::move(merged));
  }
  return terms.front();
}

// The sum of all numbers: at most 6 · 99, always a valid target, for the rare draw where no random expression lands
// in the target range.
Term sum_expression(const std::vector<int64_t>& numbers) {
  Term t{0, "", false};
  for (int64_t n : numbers) {
    t.text += (t.text.empty() ? "" : " + ") + std::to_string(n);
    t.value += n;
  }
  return t;
}

RlProblem countdown_problem(std::mt19937_64& rng, const TaskOptions& o) {
  RlProblem p;
  p.kind = RlProblem::Kind::Countdown;
  p.verifier = RlProblem::Verifier::Countdown;
  for (int i = 0; i < o.countdown_numbers; ++i) p.numbers.push_back(uniform_int(rng, kCountdownMin, kCountdownMax));
  Term solution = sum_expression(p.numbers);
  for (int attempt = 0; attempt < kCountdownAttempts; ++attempt) {
    Term t = random_expression(rng, p.numbers);
    if (t.value < kTargetMin || t.value > kTargetMax) continue;
    solution = std::move(t);
    break;
  }
  p.target = solution.value;
  p.answer = solution.text;
  std::string list;
  for (int64_t n : p.numbers) list += (list.empty() ? "" : ", ") + std::to_string(n);
  p.question = fmt::format("Using the numbers {}, each exactly once, with + - * /, make {}.", list, p.target);
  return p;
}

constexpr std::string_view kBlank = " \t\r\n\f\v";

bool is_blank(std::string_view s) { return s.find_first_not_of(kBlank) == std::string_view::npos; }

// The text of a required field: a string, or (when numbers_allowed) a number written as JSON writes it.
std::string required_text(const nlohmann::json& j, const char* key, bool numbers_allowed, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) fail("{}: field \"{}\" is missing", where, key);
  std::string text;
  if (it->is_string())
    text = it->get<std::string>();
  else if (numbers_allowed && it->is_number())
    text = it->dump();
  else
    fail("{}: field \"{}\" must be a {}, not {}", where, key, numbers_allowed ? "string or a number" : "string",
         it->type_name());
  if (is_blank(text)) fail("{}: field \"{}\" is empty", where, key);
  return text;
}

RlProblem::Verifier verifier_of(const nlohmann::json& j, const std::string& where) {
  const auto it = j.find("verifier");
  if (it == j.end()) return RlProblem::Verifier::Exact;
  if (!it->is_string()) fail("{}: field \"verifier\" must be a string, not {}", where, it->type_name());
  const std::string name = it->get<std::string>();
  if (name == "exact") return RlProblem::Verifier::Exact;
  if (name == "numeric") return RlProblem::Verifier::Numeric;
  // dump() escapes the value, so that the message stays on one line whatever the file holds.
  fail("{}: field \"verifier\" is {}; expected \"exact\" or \"numeric\"", where, it->dump());
}

RlProblem problem_of(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: expected a JSON object with \"question\" and \"answer\", not {}", where, j.type_name());
  RlProblem p;
  p.question = required_text(j, "question", false, where);
  p.answer = required_text(j, "answer", true, where);
  p.verifier = verifier_of(j, where);
  // Caught here rather than at reward time, where it would silently score every answer 0.
  if (p.verifier == RlProblem::Verifier::Numeric && !parse_number(p.answer))
    fail("{}: field \"answer\" is not a number, which verifier \"numeric\" needs", where);
  return p;
}

}  // namespace

int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;  // 0: all 2^64 values
  if (span == 0) return static_cast<int64_t>(rng());
  // A multiple of span: the draws at or above it would favour the low residues.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + x % span);
}

std::vector<RlProblem> generate_problems(const std::string& task, int64_t count, uint64_t seed,
                                         const TaskOptions& options) {
  if (count < 0) fail("{}: the problem count must be >= 0 (got {})", task, count);
  RlProblem (*make)(std::mt19937_64&, const TaskOptions&) = nullptr;
  if (task == "addition") {
    check_digits(options, 18, task);
    make = addition_problem;
  } else if (task == "multiplication") {
    check_digits(options, 9, task);
    make = multiplication_problem;
  } else if (task == "countdown") {
    if (options.countdown_numbers < 2 || options.countdown_numbers > 6)
      fail("countdown: countdown_numbers must be in [2, 6] (got {})", options.countdown_numbers);
    make = countdown_problem;
  } else {
    fail("unknown task \"{}\" (expected addition, multiplication or countdown)", task);
  }
  std::mt19937_64 rng(seed);
  std::vector<RlProblem> problems;
  problems.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) problems.push_back(make(rng, options));
  return problems;
}

std::vector<RlProblem> remove_overlap(const std::vector<RlProblem>& train, std::vector<RlProblem> held_out) {
  std::unordered_set<std::string_view> seen;
  for (const RlProblem& p : train) seen.insert(p.question);
  std::erase_if(held_out, [&](const RlProblem& p) { return seen.contains(p.question); });
  return held_out;
}

ProblemSplit held_out_split(std::vector<RlProblem> problems, int64_t held_out_count, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(problems.size());
  if (held_out_count < 0 || held_out_count > n)
    fail("the held-out count must be in [0, {}], the number of problems (got {})", n, held_out_count);
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(problems[i], problems[uniform_int(rng, 0, i)]);
  ProblemSplit split;
  split.held_out.assign(std::make_move_iterator(problems.begin()),
                        std::make_move_iterator(problems.begin() + held_out_count));
  problems.erase(problems.begin(), problems.begin() + held_out_count);
  // remove_overlap is symmetric in purpose: here it keeps the training problems clear of the held-out questions.
  split.train = remove_overlap(split.held_out, std::move(problems));
  return split;
}

std::vector<RlProblem> parse_problem_lines(std::string_view text, const std::string& source) {
  std::vector<RlProblem> problems;
  for_each_json_line(text, source, kBlank, [&](const nlohmann::json& j, const std::string& where) {
    problems.push_back(problem_of(j, where));
  });
  if (problems.empty()) fail("{}: no problems (every line is blank)", source);
  return problems;
}

std::vector<RlProblem> load_problem_file(const std::filesystem::path& path) {
  std::error_code ec;
  // Reading a directory "succeeds" with no bytes, which would be reported as an empty file.
  if (std::filesystem::is_directory(path, ec)) fail("{}: is a directory, not a .jsonl file", path.string());
  return parse_problem_lines(read_text_file(path), path.string());
}

}  // namespace whale::train
