#include "whale/train/rl_sft.h"

#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/tokenizer/chat_template.h"

namespace whale::train {
namespace {

// Operands of "What is A+B?" / "What is A*B?" (the generators' question form).
std::pair<int64_t, int64_t> operands(const RlProblem& p, char op) {
  const std::string& q = p.question;
  const size_t at = q.find(op), start = q.rfind(' ', at);
  if (at == std::string::npos || start == std::string::npos || q.empty() || q.back() != '?')
    fail("no worked solution for question \"{}\": not of the form \"What is A{}B?\"", q, op);
  try {
    return {std::stoll(q.substr(start + 1, at - start - 1)), std::stoll(q.substr(at + 1, q.size() - at - 2))};
  } catch (const std::exception&) {
    fail("no worked solution for question \"{}\": its operands are not integers", q);
  }
}

std::string multiplication_steps(int64_t a, int64_t b) {
  std::string out = fmt::format("{}*{}", a, b);
  std::vector<int64_t> parts;
  int64_t place = 1;
  for (int64_t rest = b; rest > 0; rest /= 10, place *= 10) {
    const int64_t d = rest % 10;
    if (d == 0) continue;
    parts.push_back(a * d * place);
    out += fmt::format("\n{}*{}={}", a, d * place, parts.back());
  }
  int64_t sum = parts.empty() ? 0 : parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    out += fmt::format("\n{}+{}={}", sum, parts[i], sum + parts[i]);
    sum += parts[i];
  }
  return out;
}

std::string addition_steps(int64_t a, int64_t b) {
  std::string out = fmt::format("{}+{}", a, b);
  int64_t carry = 0;
  for (int64_t x = a, y = b; x > 0 || y > 0 || carry > 0; x /= 10, y /= 10) {
    if (x == 0 && y == 0) break;  // a final carry is the answer's first digit; no step needed
    const int64_t dx = x % 10, dy = y % 10, s = dx + dy + carry;
    out += carry ? fmt::format("\n{}+{}+{}={}", dx, dy, carry, s) : fmt::format("\n{}+{}={}", dx, dy, s);
    carry = s / 10;
  }
  return out;
}

}  // namespace

std::string worked_solution(const RlProblem& p) {
  switch (p.kind) {
    case RlProblem::Kind::Multiplication: {
      const auto [a, b] = operands(p, '*');
      return multiplication_steps(a, b);
    }
    case RlProblem::Kind::Addition: {
      const auto [a, b] = operands(p, '+');
      return addition_steps(a, b);
    }
    default:
      fail("no worked solutions for this task (only addition and multiplication have them)");
  }
}

std::string direct_completion(const RlProblem& p) { return "</think>\n\n" + p.answer; }

std::string worked_completion(const RlProblem& p) { return worked_solution(p) + "\n" + direct_completion(p); }

std::string chat_prompt_text(const Tokenizer& tokenizer, const std::string& question) {
  if (tokenizer.chat_template().empty()) fail("tokenizer_config.json: no \"chat_template\" (RL prompts need one)");
  const nlohmann::ordered_json messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", question}}});
  return ChatTemplate::parse(tokenizer.chat_template())
      .render_chat(messages, true, tokenizer.bos_token(), tokenizer.eos_token());
}

void write_sft_examples(const std::filesystem::path& file, const Tokenizer& tokenizer,
                        const std::vector<RlProblem>& problems, int64_t count, uint64_t seed,
                        double direct_fraction) {
  if (problems.empty()) fail("{}: no problems to write worked examples of", file.string());
  if (!(direct_fraction >= 0.0 && direct_fraction <= 1.0))
    fail("direct fraction {} of the examples for {} is not in [0, 1]", direct_fraction, file.string());
  std::ofstream out(file, std::ios::trunc);
  if (!out) fail("{}: cannot write", file.string());
  std::mt19937_64 rng(seed);
  const int64_t last = static_cast<int64_t>(problems.size()) - 1;
  for (int64_t i = 0; i < count; ++i) {
    const RlProblem& p = problems[static_cast<size_t>(uniform_int(rng, 0, last))];
    const bool direct = direct_fraction > 0.0 && std::generate_canonical<double, 53>(rng) < direct_fraction;
    const std::string completion = direct ? direct_completion(p) : worked_completion(p);
    out << nlohmann::json{{"text", chat_prompt_text(tokenizer, p.question) + completion}}.dump() << "\n";
  }
  if (!out.flush()) fail("{}: write failed", file.string());
}

}  // namespace whale::train
