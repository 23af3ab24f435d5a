// Renders every chat template fixture for every conversation in the reference file written by
// tests/tokenizer/jinja_reference.mjs (@huggingface/jinja) and requires byte-identical output, or an Error where the
// reference refused to render. The file's path comes from WHALE_JINJA_EXPECTED; without it the test is skipped.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include <gtest/gtest.h>

#include "whale/core/error.h"
#include "whale/tokenizer/chat_template.h"

namespace whale {
namespace {

// Escapes control characters so that a failure message shows exactly where two renderings part.
std::string visible(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  const size_t from = i < 40 ? 0 : i - 40;
  return "first difference at byte " + std::to_string(i) + "\n  expected: ..." + visible(want.substr(from, 120)) +
         "\n  got:      ..." + visible(got.substr(from, 120));
}

TEST(JinjaTemplate, MatchesHuggingFaceJinja) {
  const char* path = std::getenv("WHALE_JINJA_EXPECTED");
  if (!path || !*path) {
    GTEST_SKIP() << "set WHALE_JINJA_EXPECTED to the output of `node tests/tokenizer/jinja_reference.mjs OUT.json` "
                    "to compare with @huggingface/jinja";
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path << ": cannot open";
  const nlohmann::json reference = nlohmann::json::parse(in);
  const nlohmann::json& templates = reference.at("templates");
  size_t total = 0, matched = 0;
  for (const nlohmann::json& c : reference.at("cases")) {
    ++total;
    const std::string& name = c.at("template").get_ref<const std::string&>();
    const std::string label = name + " / " + c.at("conversation_name").get<std::string>() +
                              (c.at("add_generation_prompt").get<bool>() ? " / with generation prompt" : "");
    std::string got, error;
    try {
      got = render_chat_template(templates.at(name).get<std::string>(), c.at("conversation"),
                                 c.at("add_generation_prompt").get<bool>(), c.at("bos_token").get<std::string>(),
                                 c.at("eos_token").get<std::string>());
    } catch (const Error& e) {
      error = e.what();
    }
    if (c.contains("error")) {
      EXPECT_FALSE(error.empty()) << label << ": the reference refused (" << c.at("error").get<std::string>()
                                  << ") but whale rendered \"" << visible(got) << "\"";
      matched += !error.empty();
      continue;
    }
    const std::string& want = c.at("expected").get_ref<const std::string&>();
    if (!error.empty()) {
      ADD_FAILURE() << label << ": whale threw " << error;
    } else if (got != want) {
      ADD_FAILURE() << label << ": " << first_difference(want, got);
    } else {
      ++matched;
    }
  }
  std::cout << "[ reference ] " << path << " (" << reference.value("generator", "?") << "): " << matched << " of "
            << total << " template/conversation cases match\n";
  EXPECT_GT(total, 0u);
}

}  // namespace
}  // namespace whale
