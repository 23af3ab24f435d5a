#include "whale/train/rewards.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <numeric>
#include <vector>

#include <fmt/format.h>

namespace whale::train {
namespace {

constexpr std::string_view kSpace = " \t\r\n\f\v";
constexpr std::string_view kOpenThink = "<think>", kCloseThink = "</think>";
constexpr int kMaxNesting = 64;

std::string_view trim(std::string_view s) {
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

size_t occurrences(std::string_view text, std::string_view tag) {
  size_t n = 0;
  for (size_t at = text.find(tag); at != std::string_view::npos; at = text.find(tag, at + tag.size())) ++n;
  return n;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Appends the run of digits at text[i...] to `out`; returns how many there were.
size_t take_digits(std::string_view text, size_t& i, std::string& out) {
  const size_t start = i;
  while (i < text.size() && is_digit(text[i])) out += text[i++];
  return i - start;
}

// The integer part at text[i...] without its separators: plain digits, or 1-3 digits then ",ddd" groups.
bool take_integer_part(std::string_view text, size_t& i, std::string& digits) {
  const size_t lead = take_digits(text, i, digits);
  if (i >= text.size() || text[i] != ',') return true;
  if (lead < 1 || lead > 3) return false;
  while (i < text.size() && text[i] == ',') {
    ++i;
    if (take_digits(text, i, digits) != 3) return false;
  }
  return true;
}

bool close_enough(double a, double b) {
  const double diff = std::fabs(a - b);
  return diff <= 1e-9 || diff <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

// A countdown value in lowest terms: den > 0, and neither part is INT64_MIN, so negating either cannot overflow.
struct Rational {
  int64_t num;
  int64_t den;
};

// int64 arithmetic where nullopt stands for an overflow anywhere upstream.
using Checked = std::optional<int64_t>;

Checked mul(Checked a, Checked b) {
  int64_t r;
  if (!a || !b || __builtin_mul_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}

Checked add(Checked a, Checked b) {
  int64_t r;
  if (!a || !b || __builtin_add_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}

Checked sub(Checked a, Checked b) {
  int64_t r;
  if (!a || !b || __builtin_sub_overflow(*a, *b, &r)) return std::nullopt;
  return r;
}

std::optional<Rational> fraction(Checked num, Checked den) {
  if (!num || !den || *den == 0 || *num == INT64_MIN || *den == INT64_MIN) return std::nullopt;
  int64_t n = *num, d = *den;
  if (d < 0) n = -n, d = -d;
  const int64_t g = std::gcd(n, d);  // >= 1, since d > 0
  return Rational{n / g, d / g};
}

// a op b, or nullopt on division by zero or overflow.
std::optional<Rational> apply(char op, const Rational& a, const Rational& b) {
  switch (op) {
    case '+': return fraction(add(mul(a.num, b.den), mul(b.num, a.den)), mul(a.den, b.den));
    case '-': return fraction(sub(mul(a.num, b.den), mul(b.num, a.den)), mul(a.den, b.den));
    case '*': return fraction(mul(a.num, b.num), mul(a.den, b.den));
    default: return fraction(mul(a.num, b.den), mul(a.den, b.num));  // '/': a zero divisor makes den 0
  }
}

// Recursive descent over a countdown answer:
//   answer     := expression [ "=" ["-"] integer ]
//   expression := term (("+" | "-") term)*
//   term       := factor (("*" | "/") factor)*
//   factor     := integer | "(" expression ")"
// Every failure is a nullopt that rises to the top; nothing throws. Recursion deepens only at parentheses, and those
// are capped at kMaxNesting, so hostile input cannot exhaust the stack.
class CountdownParser {
 public:
  // max_literals: more integer literals than the problem has numbers already fail, so long inputs stop early.
  CountdownParser(std::string_view text, size_t max_literals) : s_(text), max_literals_(max_literals) {}

  // The value of the whole text, or nullopt unless it is all one answer.
  std::optional<Rational> parse() {
    std::optional<Rational> value = expression(0);
    skip_space();
    if (value && pos_ < s_.size() && s_[pos_] == '=' && !take_stated_result()) return std::nullopt;
    skip_space();
    if (pos_ != s_.size()) return std::nullopt;
    return value;
  }

  const std::vector<int64_t>& literals() const { return literals_; }
  // The integer after "=", when the answer states one.
  std::optional<int64_t> stated_result() const { return stated_; }

 private:
  void skip_space() {
    while (pos_ < s_.size() && kSpace.find(s_[pos_]) != std::string_view::npos) ++pos_;
  }

  // The operator at the cursor if it is one of `ops` (× and ÷ in UTF-8 read as * and /), consumed; else 0.
  char take_operator(std::string_view ops) {
    skip_space();
    const std::string_view rest = s_.substr(pos_);
    char op = rest.empty() ? '\0' : rest[0];
    size_t length = 1;
    if (rest.starts_with("\xC3\x97")) op = '*', length = 2;
    if (rest.starts_with("\xC3\xB7")) op = '/', length = 2;
    if (op == '\0' || ops.find(op) == std::string_view::npos) return '\0';
    pos_ += length;
    return op;
  }

  std::optional<int64_t> integer() {
    skip_space();
    const char* first = s_.data() + pos_;
    const char* last = s_.data() + s_.size();
    if (first == last || !is_digit(*first)) return std::nullopt;  // from_chars would take a '-'
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc()) return std::nullopt;  // out of range
    pos_ += static_cast<size_t>(end - first);
    return value;
  }

  bool take_stated_result() {
    ++pos_;  // '='
    skip_space();
    const bool negative = pos_ < s_.size() && s_[pos_] == '-';
    if (negative) ++pos_;
    const std::optional<int64_t> n = integer();
    if (n) stated_ = negative ? -*n : *n;
    return n.has_value();
  }

  std::optional<Rational> expression(int depth) {
    std::optional<Rational> left = term(depth);
    for (char op; left && (op = take_operator("+-"));) {
      const std::optional<Rational> right = term(depth);
      left = right ? apply(op, *left, *right) : std::nullopt;
    }
    return left;
  }

  std::optional<Rational> term(int depth) {
    std::optional<Rational> left = factor(depth);
    for (char op; left && (op = take_operator("*/"));) {
      const std::optional<Rational> right = factor(depth);
      left = right ? apply(op, *left, *right) : std::nullopt;
    }
    return left;
  }

  std::optional<Rational> factor(int depth) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '(') {
      if (depth >= kMaxNesting) return std::nullopt;
      ++pos_;
      const std::optional<Rational> inner = expression(depth + 1);
      skip_space();
      if (!inner || pos_ >= s_.size() || s_[pos_] != ')') return std::nullopt;
      ++pos_;
      return inner;
    }
    const std::optional<int64_t> n = integer();
    if (!n || literals_.size() >= max_literals_) return std::nullopt;
    literals_.push_back(*n);
    return Rational{*n, 1};
  }

  std::string_view s_;
  size_t pos_ = 0;
  size_t max_literals_;
  std::vector<int64_t> literals_;
  std::optional<int64_t> stated_;
};

bool verify_countdown(const RlProblem& problem, std::string_view answer) {
  CountdownParser parser(answer, problem.numbers.size());
  const std::optional<Rational> value = parser.parse();
  if (!value || value->den != 1 || value->num != problem.target) return false;
  if (parser.stated_result() && *parser.stated_result() != problem.target) return false;
  std::vector<int64_t> used = parser.literals(), given = problem.numbers;
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  return used == given;
}

}  // namespace

ParsedResponse parse_response(std::string_view completion) {
  ParsedResponse r;
  const size_t close = completion.find(kCloseThink);
  if (close == std::string_view::npos || occurrences(completion, kCloseThink) != 1) return r;
  std::string_view before = completion.substr(0, close);
  const size_t open = before.find(kOpenThink);
  if (open != std::string_view::npos) before.remove_prefix(open + kOpenThink.size());
  r.reasoning = trim(before);
  r.answer = trim(completion.substr(close + kCloseThink.size()));
  const size_t opens = occurrences(completion, kOpenThink);
  r.well_formed = !r.answer.empty() && (opens == 0 || (opens == 1 && open != std::string_view::npos));
  return r;
}

double format_reward(const ParsedResponse& response) { return response.well_formed ? 1.0 : 0.0; }

std::optional<double> parse_number(std::string_view text) {
  text = trim(text);
  size_t i = 0;
  const bool negative = i < text.size() && text[i] == '-';
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  std::string whole, part;
  if (!take_integer_part(text, i, whole)) return std::nullopt;
  if (i < text.size() && text[i] == '.') take_digits(text, ++i, part);
  if (i != text.size() || (whole.empty() && part.empty())) return std::nullopt;
  // from_chars takes neither '+' nor separators nor an empty side of the point: hand it the normalised form.
  const std::string plain = fmt::format("{}{}.{}", negative ? "-" : "", whole.empty() ? "0" : whole,
                                        part.empty() ? "0" : part);
  double value = 0.0;
  const auto [end, ec] = std::from_chars(plain.data(), plain.data() + plain.size(), value);
  if (ec != std::errc() || end != plain.data() + plain.size()) return std::nullopt;
  return value;
}

bool verify(const RlProblem& problem, std::string_view answer) {
  switch (problem.verifier) {
    case RlProblem::Verifier::Exact:
      return trim(answer) == trim(problem.answer);
    case RlProblem::Verifier::Numeric: {
      const std::optional<double> got = parse_number(answer), want = parse_number(problem.answer);
      return got && want && close_enough(*got, *want);
    }
    case RlProblem::Verifier::Countdown:
      return verify_countdown(problem, answer);
  }
  return false;
}

double accuracy_reward(const RlProblem& problem, const ParsedResponse& response) {
  return response.well_formed && verify(problem, response.answer) ? 1.0 : 0.0;
}

double total_reward(const RlProblem& problem, const ParsedResponse& response, const RewardWeights& weights) {
  return weights.accuracy * accuracy_reward(problem, response) + weights.format * format_reward(response);
}

}  // namespace whale::train
