// whale rl's problems and rewards: the generators against answers recomputed here (countdown targets against a
// brute-force solver), the user problem file's errors, the R1 response format, and the verifiers on edge cases and
// hostile input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "whale/core/error.h"
#include "whale/train/rewards.h"
#include "whale/train/rl_tasks.h"

namespace whale::train {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = RlProblem::Kind;
using Verifier = RlProblem::Verifier;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

int digit_count(int64_t n) { return static_cast<int>(std::to_string(n).size()); }

RlProblem qa(std::string question, std::string answer) {
  RlProblem p;
  p.question = std::move(question);
  p.answer = std::move(answer);
  return p;
}

RlProblem countdown(std::vector<int64_t> numbers, int64_t target) {
  RlProblem p;
  p.kind = Kind::Countdown;
  p.verifier = Verifier::Countdown;
  p.numbers = std::move(numbers);
  p.target = target;
  return p;
}

// ---- a brute-force countdown solver, independent of rewards.cc ----

struct Frac {
  int64_t n, d;  // d > 0, lowest terms; the test's values are far from overflow
};

Frac frac(int64_t n, int64_t d) {
  if (d < 0) n = -n, d = -d;
  const int64_t g = std::gcd(n, d);
  return {n / g, d / g};
}

struct Item {
  Frac value;
  std::string text;
};

// Some expression that uses every item once and makes target, or "" when there is none (all orders, all of
// + - * /, fractions allowed, as the verifier allows them).
std::string solve(const std::vector<Item>& items, int64_t target) {
  if (items.size() == 1)
    return items[0].value.d == 1 && items[0].value.n == target ? items[0].text : "";
  for (size_t i = 0; i < items.size(); ++i)
    for (size_t j = 0; j < items.size(); ++j) {
      if (i == j) continue;
      std::vector<Item> rest;
      for (size_t k = 0; k < items.size(); ++k)
        if (k != i && k != j) rest.push_back(items[k]);
      const Frac a = items[i].value, b = items[j].value;
      const std::string ta = "(" + items[i].text + ")", tb = "(" + items[j].text + ")";
      std::vector<Item> next = {{frac(a.n * b.d + b.n * a.d, a.d * b.d), ta + "+" + tb},
                                {frac(a.n * b.d - b.n * a.d, a.d * b.d), ta + "-" + tb},
                                {frac(a.n * b.n, a.d * b.d), ta + "*" + tb}};
      if (b.n != 0) next.push_back({frac(a.n * b.d, a.d * b.n), ta + "/" + tb});
      for (const Item& c : next) {
        rest.push_back(c);
        if (std::string s = solve(rest, target); !s.empty()) return s;
        rest.pop_back();
      }
    }
  return "";
}

std::string solve(const RlProblem& p) {
  std::vector<Item> items;
  for (int64_t n : p.numbers) items.push_back({{n, 1}, std::to_string(n)});
  return solve(items, p.target);
}

// ---- generators ----

TEST(RlTasks, SameSeedSameProblemsOtherSeedOthers) {
  for (const std::string task : {"addition", "multiplication", "countdown"}) {
    const auto a = generate_problems(task, 50, 7, {});
    const auto b = generate_problems(task, 50, 7, {});
    const auto c = generate_problems(task, 50, 8, {});
    ASSERT_EQ(a.size(), 50u);
    int differing = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].question, b[i].question) << task << " " << i;
      EXPECT_EQ(a[i].answer, b[i].answer) << task << " " << i;
      EXPECT_EQ(a[i].numbers, b[i].numbers) << task << " " << i;
      differing += a[i].question != c[i].question;
    }
    EXPECT_GT(differing, 40) << task;
  }
}

// Pinned values: a change here means every saved problem set and held-out score silently changes meaning, so it has to
// be deliberate (it would also catch std::uniform_int_distribution, whose output differs between standard libraries).
TEST(RlTasks, PinnedProblemsForSeedOne) {
  const auto add = generate_problems("addition", 2, 1, {});
  const auto mul = generate_problems("multiplication", 1, 1, {});
  const auto cd = generate_problems("countdown", 1, 1, {});
  EXPECT_EQ(add[0].question, "What is 862+1?");
  EXPECT_EQ(add[1].question, "What is 7+865?");
  EXPECT_EQ(mul[0].question, "What is 862*1?");
  EXPECT_EQ(cd[0].question, "Using the numbers 69, 79, 1, 19, each exactly once, with + - * /, make 10.");
  EXPECT_EQ(cd[0].answer, "((69 + 19) + 1) - 79");
}

TEST(RlTasks, ArithmeticQuestionsAnswersAndDigitRanges) {
  const std::regex add_re(R"(What is (\d+)\+(\d+)\?)"), mul_re(R"(What is (\d+)\*(\d+)\?)");
  TaskOptions o;
  o.min_digits = 2;
  o.max_digits = 4;
  for (const std::string task : {"addition", "multiplication"}) {
    const bool add = task == "addition";
    std::set<int> digits_seen;
    for (const RlProblem& p : generate_problems(task, 300, 3, o)) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(p.question, m, add ? add_re : mul_re)) << p.question;
      const int64_t a = std::stoll(m[1]), b = std::stoll(m[2]);
      for (int64_t x : {a, b}) {
        EXPECT_GE(digit_count(x), 2) << p.question;
        EXPECT_LE(digit_count(x), 4) << p.question;
        digits_seen.insert(digit_count(x));
      }
      EXPECT_EQ(p.answer, std::to_string(add ? a + b : a * b)) << p.question;
      EXPECT_EQ(p.kind, add ? Kind::Addition : Kind::Multiplication);
      EXPECT_EQ(p.verifier, Verifier::Numeric);
      EXPECT_TRUE(p.numbers.empty());
      EXPECT_TRUE(verify(p, p.answer));
    }
    EXPECT_EQ(digits_seen, (std::set<int>{2, 3, 4})) << task;
  }
}

TEST(RlTasks, WidestOperandsDoNotOverflow) {
  TaskOptions o;
  o.min_digits = o.max_digits = 9;
  for (const RlProblem& p : generate_problems("multiplication", 20, 5, o)) {
    const std::regex re(R"(What is (\d{9})\*(\d{9})\?)");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(p.question, m, re)) << p.question;
    EXPECT_EQ(p.answer, std::to_string(std::stoll(m[1]) * std::stoll(m[2])));
  }
  o.min_digits = o.max_digits = 18;
  for (const RlProblem& p : generate_problems("addition", 20, 5, o)) {
    const std::regex re(R"(What is (\d{18})\+(\d{18})\?)");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(p.question, m, re)) << p.question;
    EXPECT_EQ(p.answer, std::to_string(std::stoll(m[1]) + std::stoll(m[2])));
  }
}

TEST(RlTasks, CountdownProblemsAreWellFormedAndTheirAnswersVerify) {
  for (int count : {2, 3, 4, 6}) {
    TaskOptions o;
    o.countdown_numbers = count;
    for (const RlProblem& p : generate_problems("countdown", 200, 11, o)) {
      EXPECT_EQ(p.kind, Kind::Countdown);
      EXPECT_EQ(p.verifier, Verifier::Countdown);
      ASSERT_EQ(p.numbers.size(), static_cast<size_t>(count));
      std::string list;
      for (int64_t n : p.numbers) {
        EXPECT_GE(n, 1);
        EXPECT_LE(n, 99);
        list += (list.empty() ? "" : ", ") + std::to_string(n);
      }
      EXPECT_GE(p.target, 1);
      EXPECT_LE(p.target, 999);
      EXPECT_EQ(p.question,
                fmt::format("Using the numbers {}, each exactly once, with + - * /, make {}.", list, p.target));
      EXPECT_TRUE(verify(p, p.answer)) << p.question << " answer " << p.answer;
    }
  }
}

TEST(RlTasks, CountdownTargetsAreReachableByBruteForce) {
  for (const RlProblem& p : generate_problems("countdown", 50, 2024, {})) {
    const std::string solution = solve(p);
    ASSERT_FALSE(solution.empty()) << p.question;
    EXPECT_TRUE(verify(p, solution)) << p.question << " " << solution;
  }
}

TEST(RlTasks, CountdownTargetsVary) {
  std::set<int64_t> targets;
  for (const RlProblem& p : generate_problems("countdown", 200, 4, {})) targets.insert(p.target);
  EXPECT_GT(targets.size(), 100u);  // not stuck on the sum fallback or a few values
}

TEST(RlTasks, RejectsUnknownTasksAndBadOptions) {
  EXPECT_THAT(error_of([] { generate_problems("subtraction", 1, 0, {}); }),
              AllOf(HasSubstr("\"subtraction\""), HasSubstr("addition"), HasSubstr("multiplication"),
                    HasSubstr("countdown")));
  EXPECT_THAT(error_of([] { generate_problems("addition", -1, 0, {}); }), HasSubstr(">= 0"));
  for (auto [lo, hi] : std::vector<std::pair<int, int>>{{0, 3}, {3, 2}, {1, 10}}) {
    TaskOptions o;
    o.min_digits = lo;
    o.max_digits = hi;
    EXPECT_THAT(error_of([&] { generate_problems("multiplication", 1, 0, o); }), HasSubstr("max_digits <= 9"));
  }
  TaskOptions o;
  o.max_digits = 18;
  EXPECT_EQ(error_of([&] { generate_problems("addition", 1, 0, o); }), "");
  o.max_digits = 19;
  EXPECT_THAT(error_of([&] { generate_problems("addition", 1, 0, o); }), HasSubstr("max_digits <= 18"));
  for (int n : {1, 7}) {
    TaskOptions c;
    c.countdown_numbers = n;
    EXPECT_THAT(error_of([&] { generate_problems("countdown", 1, 0, c); }), HasSubstr("countdown_numbers"));
  }
  EXPECT_TRUE(generate_problems("countdown", 0, 0, {}).empty());
}

TEST(RlTasks, RemoveOverlapDropsHeldOutQuestionsSeenInTraining) {
  const auto train = generate_problems("addition", 400, 1, {});
  auto held_out = generate_problems("addition", 400, 2, {});
  held_out.push_back(train[5]);
  const auto kept = remove_overlap(train, held_out);
  std::set<std::string> train_questions;
  for (const auto& p : train) train_questions.insert(p.question);
  size_t overlapping = 0;
  for (const auto& p : held_out) overlapping += train_questions.count(p.question);
  EXPECT_GE(overlapping, 1u);
  EXPECT_EQ(kept.size(), held_out.size() - overlapping);
  for (const auto& p : kept) EXPECT_EQ(train_questions.count(p.question), 0u) << p.question;
}

TEST(RlTasks, HeldOutSplitIsDisjointAndDeterministic) {
  std::vector<RlProblem> problems;
  for (int i = 0; i < 20; ++i) problems.push_back(qa(fmt::format("q{}", i % 15), "a"));  // five come twice
  const ProblemSplit s = held_out_split(problems, 5, 9);
  ASSERT_EQ(s.held_out.size(), 5u);
  std::set<std::string> held;
  for (const auto& p : s.held_out) held.insert(p.question);
  for (const auto& p : s.train) EXPECT_EQ(held.count(p.question), 0u) << p.question;
  // Every problem is on one side, unless it repeats a held-out question.
  size_t repeats = 0;
  for (const auto& p : problems) repeats += held.count(p.question);
  EXPECT_EQ(s.train.size() + repeats, problems.size());
  const ProblemSplit again = held_out_split(problems, 5, 9);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(again.held_out[i].question, s.held_out[i].question);
  EXPECT_THAT(error_of([&] { held_out_split(problems, 21, 0); }), HasSubstr("held-out"));
  EXPECT_THAT(error_of([&] { held_out_split(problems, -1, 0); }), HasSubstr("held-out"));
  EXPECT_EQ(held_out_split(problems, 0, 0).train.size(), 20u);
}

// ---- the user's problem file ----

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "whale_rl_tasks_test_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return path_ / name;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(RlTasks, LoadProblemFileReadsQuestionsAnswersAndVerifiers) {
  TempDir dir;
  const fs::path file = dir.write("tasks.jsonl",
                                  "{\"question\": \"Capital of France?\", \"answer\": \"Paris\", \"source\": \"x\"}\n"
                                  "\n   \t\r\n"
                                  "{\"question\": \"6*7?\", \"answer\": 42, \"verifier\": \"numeric\"}\r\n"
                                  "{\"question\": \"Half?\", \"answer\": 0.5, \"verifier\": \"exact\"}");
  const auto problems = load_problem_file(file);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].question, "Capital of France?");
  EXPECT_EQ(problems[0].answer, "Paris");
  EXPECT_EQ(problems[0].verifier, Verifier::Exact);
  EXPECT_EQ(problems[0].kind, Kind::Qa);
  EXPECT_EQ(problems[1].answer, "42");
  EXPECT_EQ(problems[1].verifier, Verifier::Numeric);
  EXPECT_TRUE(verify(problems[1], "42.0"));
  EXPECT_EQ(problems[2].answer, "0.5");
  EXPECT_EQ(problems[2].verifier, Verifier::Exact);
}

TEST(RlTasks, ProblemFileErrorsNameFileLineAndField) {
  struct Case {
    std::string text;
    int line;
    std::string field;  // "" where no field is at fault
    std::string why;
  };
  const std::string good = "{\"question\": \"q\", \"answer\": \"a\"}\n";
  const std::vector<Case> cases = {
      {good + "\n{\"question\": \"q\", \"answer\": \"a\"\n", 3, "", "not valid JSON"},
      {good + "[1, 2]\n", 2, "", "expected a JSON object"},
      {good + "\"text\"\n", 2, "", "expected a JSON object"},
      {good + good + "{\"answer\": \"a\"}\n", 3, "\"question\"", "is missing"},
      {"{\"question\": \"q\"}\n", 1, "\"answer\"", "is missing"},
      {"{\"question\": 5, \"answer\": \"a\"}\n", 1, "\"question\"", "must be a string, not number"},
      {"{\"question\": \"q\", \"answer\": true}\n", 1, "\"answer\"", "must be a string or a number, not boolean"},
      {"{\"question\": \"q\", \"answer\": null}\n", 1, "\"answer\"", "not null"},
      {"{\"question\": \"q\", \"answer\": [\"a\"]}\n", 1, "\"answer\"", "not array"},
      {"{\"question\": \"  \", \"answer\": \"a\"}\n", 1, "\"question\"", "is empty"},
      {"{\"question\": \"q\", \"answer\": \"\"}\n", 1, "\"answer\"", "is empty"},
      {"{\"question\": \"q\", \"answer\": \"a\", \"verifier\": \"fuzzy\\n\"}\n", 1, "\"verifier\"",
       "expected \"exact\" or \"numeric\""},
      {"{\"question\": \"q\", \"answer\": \"a\", \"verifier\": 1}\n", 1, "\"verifier\"", "must be a string"},
      {"{\"question\": \"q\", \"answer\": \"abc\", \"verifier\": \"numeric\"}\n", 1, "\"answer\"", "not a number"},
  };
  TempDir dir;
  for (const Case& c : cases) {
    const fs::path file = dir.write("tasks.jsonl", c.text);
    const std::string error = error_of([&] { load_problem_file(file); });
    const std::string where = file.string() + ":" + std::to_string(c.line) + ": ";
    EXPECT_THAT(error, AllOf(HasSubstr(where), HasSubstr(c.field), HasSubstr(c.why))) << c.text;
    EXPECT_THAT(error, Not(HasSubstr("\n"))) << c.text;
  }
}

TEST(RlTasks, ProblemFileWithoutProblemsOrMissingIsAnError) {
  TempDir dir;
  for (const std::string text : {"", "\n\n  \r\n"}) {
    const fs::path file = dir.write("empty.jsonl", text);
    EXPECT_THAT(error_of([&] { load_problem_file(file); }),
                AllOf(HasSubstr(file.string() + ": "), HasSubstr("no problems")));
  }
  EXPECT_THAT(error_of([&] { load_problem_file(dir.path() / "absent.jsonl"); }),
              AllOf(HasSubstr("absent.jsonl"), HasSubstr("cannot open")));
  EXPECT_THAT(error_of([&] { load_problem_file(dir.path()); }), HasSubstr("is a directory"));
  EXPECT_THAT(error_of([] { parse_problem_lines("{}", "inline"); }), HasSubstr("inline:1: field \"question\""));
}

// ---- the response format ----

TEST(Rewards, ParseResponseSplitsAtTheClosingThink) {
  ParsedResponse r = parse_response("<think>\n7*6 is 42\n</think>\n\n 42 \n");
  EXPECT_TRUE(r.well_formed);
  EXPECT_EQ(r.reasoning, "7*6 is 42");
  EXPECT_EQ(r.answer, "42");
  r = parse_response("7*6 is 42</think>42");  // the template opened <think>
  EXPECT_TRUE(r.well_formed);
  EXPECT_EQ(r.reasoning, "7*6 is 42");
  EXPECT_EQ(r.answer, "42");
}

TEST(Rewards, ParseResponseRejectsMalformedResponses) {
  for (const char* text : {"<think>42", "42", "", "<think>a</think>b</think>c", "<think>a</think>  \n\t",
                           "</think>", "<think><think>a</think>b", "<think>a</think>b<think>", "a</think><think>b",
                           "</think></think>42"}) {
    const ParsedResponse r = parse_response(text);
    EXPECT_FALSE(r.well_formed) << text;
    EXPECT_EQ(format_reward(r), 0.0) << text;
  }
  // Malformed, yet with one </think>: the fields are still there for logs.
  const ParsedResponse r = parse_response("a</think>b<think>");
  EXPECT_EQ(r.answer, "b<think>");
  EXPECT_TRUE(parse_response("</think>x").well_formed);  // empty reasoning is the model's business
}

TEST(Rewards, RewardsCombineAccuracyAndFormat) {
  RlProblem p;
  p.answer = "1786";
  p.verifier = Verifier::Numeric;
  const ParsedResponse right = parse_response("<think>47*38</think>1,786");
  const ParsedResponse wrong = parse_response("<think>47*38</think>1787");
  const ParsedResponse unformatted = parse_response("1786");
  EXPECT_EQ(accuracy_reward(p, right), 1.0);
  EXPECT_EQ(accuracy_reward(p, wrong), 0.0);
  EXPECT_EQ(accuracy_reward(p, unformatted), 0.0);
  EXPECT_DOUBLE_EQ(total_reward(p, right), 1.1);
  EXPECT_DOUBLE_EQ(total_reward(p, wrong), 0.1);
  EXPECT_DOUBLE_EQ(total_reward(p, unformatted), 0.0);
  EXPECT_DOUBLE_EQ(total_reward(p, right, {.accuracy = 2.0, .format = 0.5}), 2.5);
  // An answer after a second </think> is not graded.
  EXPECT_EQ(accuracy_reward(p, parse_response("<think>x</think>1786</think>1786")), 0.0);
}

// ---- verifiers ----

TEST(Rewards, ExactVerifierComparesTrimmedText) {
  RlProblem p;
  p.answer = " Paris\n";
  EXPECT_TRUE(verify(p, "Paris"));
  EXPECT_TRUE(verify(p, "\t Paris  "));
  EXPECT_FALSE(verify(p, "paris"));
  EXPECT_FALSE(verify(p, "Paris."));
  EXPECT_FALSE(verify(p, ""));
}

TEST(Rewards, NumericVerifierEdgeCases) {
  RlProblem p;
  p.answer = "1786";
  p.verifier = Verifier::Numeric;
  for (const char* yes : {"1786", "1,786", "1786.0", "1786.", "+1786", " 1786 ", "1786.0000000001", "1,786.00"})
    EXPECT_TRUE(verify(p, yes)) << yes;
  for (const char* no : {"1787", "abc", "", "-1786", "17,86", "1,7860", ",786", "1786a", "1786..", "1.786e3", "inf",
                         "nan", "0x6fa", "1 786", "1786.1", "--1786", ".", "+", "1,786,"})
    EXPECT_FALSE(verify(p, no)) << no;
  p.answer = "-5";
  EXPECT_TRUE(verify(p, "-5"));
  EXPECT_TRUE(verify(p, "-5.000"));
  EXPECT_FALSE(verify(p, "5"));
  p.answer = "0.5";
  EXPECT_TRUE(verify(p, ".5"));
  EXPECT_TRUE(verify(p, "0.50"));
  p.answer = "abc";  // an expected answer that is no number grades nothing right
  EXPECT_FALSE(verify(p, "abc"));
  EXPECT_EQ(parse_number("12,345,678.25"), 12345678.25);
  for (const char* bad : {"1234,567", ",786", "12,34", "1,2345", "1,,786", "1.2.3", "- 5", "1786 ."})
    EXPECT_EQ(parse_number(bad), std::nullopt) << bad;
  EXPECT_EQ(parse_number(" -0.25\n"), -0.25);
  EXPECT_EQ(parse_number("1" + std::string(400, '0')), std::nullopt);  // out of double's range
  p.answer = "1000000000000";  // relative tolerance: 1e-9 of 1e12 is 1000
  EXPECT_TRUE(verify(p, "1000000000900"));
  EXPECT_FALSE(verify(p, "1000000001100"));
  p.answer = "0";  // absolute tolerance near zero
  EXPECT_TRUE(verify(p, "0.0000000005"));
  EXPECT_FALSE(verify(p, "0.000000002"));
}

TEST(Rewards, CountdownAcceptsSolutionsInTheirUsualForms) {
  const RlProblem p = countdown({3, 7, 25, 50}, 178);  // (50 - 25) * 7 + 3
  for (const char* yes : {"(50 - 25) * 7 + 3", "(50-25)*7+3", "3 + 7 * (50 - 25)", "((50 - 25) * 7) + 3",
                          "(50 - 25) * 7 + 3 = 178", "  (50-25)*7+3=178 \n", "(50 - 25) \xC3\x97 7 + 3",
                          "(((3)) + (7 * (50 - 25)))", "7*(50-25)+3\t"})
    EXPECT_TRUE(verify(p, yes)) << yes;
  const RlProblem q = countdown({100, 4, 5, 5}, 10);
  EXPECT_TRUE(verify(q, "100 / 4 / 5 + 5"));    // left to right: (100 / 4) / 5 + 5
  EXPECT_FALSE(verify(q, "100 / 4 - 5 - 5 - 5 + 5 - 5"));  // makes 10 with 5 used four times
  EXPECT_TRUE(verify(q, "100 \xC3\xB7 4 \xC3\xB7 5 + 5"));
  EXPECT_FALSE(verify(q, "100 / (4 / 5) + 5"));  // 130
  EXPECT_FALSE(verify(q, "100 - 4 - 5 * 5"));    // 71: * binds tighter than -
  EXPECT_FALSE(verify(q, "100 / 4 - 5 - 5 * 2"));  // makes 10, but 2 is not one of the numbers
}

TEST(Rewards, CountdownRejectsWrongUsesOfTheNumbers) {
  const RlProblem p = countdown({3, 7, 25, 50}, 178);
  EXPECT_FALSE(verify(p, "(50 - 25) * 7 + 3 + 0"));  // an extra number
  EXPECT_FALSE(verify(p, "(50 - 25) * 7 + 3 * 1"));  // an extra number that changes nothing
  EXPECT_FALSE(verify(p, "(50 - 25) * 7 + 3 + 3 - 3"));  // reused
  EXPECT_FALSE(verify(p, "(50 - 25) * 7"));          // 3 missing (and 175)
  EXPECT_FALSE(verify(p, "(50 - 25) * 7 + 4"));      // 4 is not given
  EXPECT_FALSE(verify(p, "(50 + 25) * 7 + 3"));      // wrong value
  EXPECT_FALSE(verify(p, "(50 - 25) * 7 + 3 = 179"));  // states a wrong result
  EXPECT_FALSE(verify(p, "178"));
  const RlProblem twice = countdown({5, 5, 2}, 50);
  EXPECT_TRUE(verify(twice, "5 * 5 * 2"));  // a number given twice may be used twice
  EXPECT_FALSE(verify(twice, "5 * 2 * 5 * 1"));
  EXPECT_FALSE(verify(twice, "25 * 2"));
}

TEST(Rewards, CountdownArithmeticIsExact) {
  // Fractions in between are allowed when the result is whole: (7 / 2) * 2 is 7.
  EXPECT_TRUE(verify(countdown({7, 2, 2, 2}, 9), "(7 / 2) * 2 + 2"));
  EXPECT_TRUE(verify(countdown({7, 2, 2, 2}, 9), "7 / 2 * 2 + 2"));
  EXPECT_TRUE(verify(countdown({1, 3, 3}, 1), "1 / 3 * 3"));
  // A fractional result is never the target, however close in floating point.
  EXPECT_FALSE(verify(countdown({7, 2}, 3), "7 / 2"));
  EXPECT_FALSE(verify(countdown({7, 2}, 4), "7 / 2"));
  EXPECT_TRUE(verify(countdown({8, 3, 8, 3}, 24), "8 / (3 - 8 / 3)"));  // 8 / (1/3): doubles get 23.999...
  EXPECT_FALSE(verify(countdown({8, 3, 1, 3}, 24), "8 / (3 - 8 / 3)"));  // 8 used twice, 1 not at all
  EXPECT_TRUE(verify(countdown({1, 5, 5, 5}, 24), "5 * (5 - 1 / 5)"));
  // Division by zero, directly or through a zero subexpression.
  EXPECT_FALSE(verify(countdown({7, 0}, 0), "7 / 0"));
  EXPECT_TRUE(verify(countdown({7, 0}, 0), "0 / 7"));
  EXPECT_FALSE(verify(countdown({7, 5, 5, 3}, 0), "7 / (5 - 5) * 3"));
  // Negative intermediate values are fine; negative literals are not (no unary minus).
  EXPECT_TRUE(verify(countdown({3, 10, 4}, -28), "(3 - 10) * 4"));
  EXPECT_TRUE(verify(countdown({3, 10, 4}, -28), "(3 - 10) * 4 = -28"));
  EXPECT_FALSE(verify(countdown({3, 10, 4}, -28), "-(10 - 3) * 4"));
  EXPECT_FALSE(verify(countdown({3, 10}, -7), "-10 + 3"));
}

TEST(Rewards, CountdownOverflowIsFalseNotUndefined) {
  const int64_t big = 3037000500;  // big² > INT64_MAX
  const std::string b = std::to_string(big);
  // Mathematically big, but big * big does not fit on the way.
  EXPECT_FALSE(verify(countdown({big, big, big}, big), b + " * " + b + " / " + b));
  EXPECT_TRUE(verify(countdown({big, big, big}, big), b + " / " + b + " * " + b));
  EXPECT_FALSE(verify(countdown({INT64_MAX, 1}, 0), std::to_string(INT64_MAX) + " + 1"));
  EXPECT_TRUE(verify(countdown({INT64_MAX, 1}, INT64_MAX - 1), std::to_string(INT64_MAX) + " - 1"));
  EXPECT_FALSE(verify(countdown({1}, 1), "99999999999999999999999"));  // a literal beyond int64
  // Denominators overflow as well: 1 / big / big * big * big would be 1.
  EXPECT_FALSE(verify(countdown({1, big, big, big, big}, 1), "1 / " + b + " / " + b + " * " + b + " * " + b));
  // INT64_MIN is kept out, so that normalising a sign can never overflow.
  EXPECT_FALSE(verify(countdown({0, INT64_MAX, 1}, INT64_MIN), "0 - " + std::to_string(INT64_MAX) + " - 1"));
  EXPECT_TRUE(verify(countdown({0, INT64_MAX, 1}, INT64_MIN + 2), "0 - " + std::to_string(INT64_MAX) + " + 1"));
}

TEST(Rewards, CountdownRejectsDeepNestingAndGarbage) {
  const RlProblem p = countdown({1}, 1);
  EXPECT_TRUE(verify(p, std::string(64, '(') + "1" + std::string(64, ')')));
  EXPECT_FALSE(verify(p, std::string(65, '(') + "1" + std::string(65, ')')));
  EXPECT_FALSE(verify(p, std::string(1'000'000, '(')));
  EXPECT_FALSE(verify(p, std::string(1'000'000, ')')));
  std::string chain = "1";
  for (int i = 0; i < 200'000; ++i) chain += "+1-1";
  EXPECT_FALSE(verify(p, chain));
  EXPECT_FALSE(verify(p, std::string(1'000'000, ' ') + "x"));
  EXPECT_TRUE(verify(p, std::string(100'000, ' ') + "1" + std::string(100'000, ' ')));
  for (const char* garbage : {"", " ", "(", ")", "()", "(1", "1)", "1 +", "+ 1", "1 = ", "= 1", "1 == 1", "1 = 1 = 1",
                              "1 1", "1.0", "1,", "one", "1 ** 1", "\xC3", "\xC3\x97", "1\xC3", "1 \xC3\x97",
                              "1e0", "[1]", "{1}", "1 = 1.0", "1 = +1"})
    EXPECT_FALSE(verify(p, garbage)) << garbage;
  EXPECT_TRUE(verify(p, "1 = 1"));
  EXPECT_FALSE(verify(p, std::string("1\0", 2)));
}

TEST(Rewards, VerifiersNeverThrowOnRandomText) {
  const RlProblem cd = countdown({3, 7, 25, 50}, 178);
  RlProblem num;
  num.answer = "12";
  num.verifier = Verifier::Numeric;
  std::mt19937 rng(5);
  const std::string alphabet = "0123456789+-*/()= ,.<>/thinkx\xC3\x97\n";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 24, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    EXPECT_NO_THROW({
      verify(cd, s);
      verify(num, s);
      total_reward(cd, parse_response(s));
    }) << s;
  }
}

}  // namespace
}  // namespace whale::train
