// Worked examples: every step line is true arithmetic, the steps follow the documented method, and the completion
// ends with the answer after </think>.
#include "whale/train/rl_sft.h"

#include <gtest/gtest.h>

#include <sstream>

#include "whale/core/error.h"
#include "whale/train/rewards.h"

namespace whale::train {
namespace {

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// "x op y [op z]=r" evaluated left to right, checked against r.
bool step_is_true(const std::string& line) {
  const size_t eq = line.find('=');
  if (eq == std::string::npos) return false;
  std::istringstream in(line.substr(0, eq));
  long long v = 0, x = 0;
  char op = '+';
  in >> v;
  while (in >> op >> x) v = op == '*' ? v * x : v + x;
  return v == std::stoll(line.substr(eq + 1));
}

RlProblem multiplication(const std::string& question, const std::string& answer) {
  RlProblem p;
  p.kind = RlProblem::Kind::Multiplication;
  p.question = question;
  p.answer = answer;
  return p;
}

TEST(RlSft, MultiplicationStepsFollowThePlaceValues) {
  RlProblem p = multiplication("What is 47*38?", "1786");
  EXPECT_EQ(worked_solution(p), "47*38\n47*8=376\n47*30=1410\n376+1410=1786");
  p.question = "What is 12*40?";
  p.answer = "480";
  EXPECT_EQ(worked_solution(p), "12*40\n12*40=480") << "zero digits are skipped; one part needs no sum";
}

TEST(RlSft, AdditionStepsCarryColumnByColumn) {
  RlProblem p;
  p.kind = RlProblem::Kind::Addition;
  p.question = "What is 478+356?";
  p.answer = "834";
  EXPECT_EQ(worked_solution(p), "478+356\n8+6=14\n7+5+1=13\n4+3+1=8");
  p.question = "What is 95+5?";
  EXPECT_EQ(worked_solution(p), "95+5\n5+5=10\n9+0+1=10");
}

TEST(RlSft, EveryGeneratedExampleIsTrueAndEndsWithTheAnswer) {
  for (const char* task : {"addition", "multiplication"}) {
    TaskOptions o;
    o.min_digits = 1;
    o.max_digits = 4;
    for (const RlProblem& p : generate_problems(task, 300, 11, o)) {
      const std::vector<std::string> steps = lines(worked_solution(p));
      ASSERT_GE(steps.size(), 2u) << p.question;
      for (size_t i = 1; i < steps.size(); ++i) EXPECT_TRUE(step_is_true(steps[i])) << p.question << ": " << steps[i];
      if (p.kind == RlProblem::Kind::Multiplication) {
        EXPECT_EQ(steps.back().substr(steps.back().find('=') + 1), p.answer) << p.question;
      }
      const ParsedResponse r = parse_response(worked_completion(p));
      EXPECT_TRUE(r.well_formed) << p.question;
      EXPECT_TRUE(verify(p, r.answer)) << p.question;
    }
  }
}

TEST(RlSft, DirectCompletionIsAnEmptyThinkAndTheAnswer) {
  const RlProblem p = multiplication("What is 47*38?", "1786");
  EXPECT_EQ(direct_completion(p), "</think>\n\n1786");
  const ParsedResponse r = parse_response(direct_completion(p));
  EXPECT_TRUE(r.well_formed);
  EXPECT_TRUE(verify(p, r.answer));
}

TEST(RlSft, OtherTasksHaveNoWorkedSolutions) {
  RlProblem p;
  p.kind = RlProblem::Kind::Qa;
  p.question = "Capital of France?";
  EXPECT_THROW(worked_solution(p), Error);
  p.kind = RlProblem::Kind::Multiplication;
  p.question = "What is x*y?";
  EXPECT_THROW(worked_solution(p), Error);
}

}  // namespace
}  // namespace whale::train
