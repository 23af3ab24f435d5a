#include "whale/tokenizer/pre_tokenizer.h"

#include <functional>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/tokenizer/regex.h"

namespace whale {

const char kGpt2Pattern[] = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::vector<std::pair<size_t, size_t>> split_ranges(size_t text_size,
                                                    const std::vector<std::pair<size_t, size_t>>& matches,
                                                    SplitBehavior behavior, bool invert) {
  // Alternate gaps and matches over the whole text, then fold them by the behavior.
  struct Part {
    size_t b, e;
    bool match;
  };
  std::vector<Part> parts;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) parts.push_back({prev, b, invert});
    parts.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < text_size) parts.push_back({prev, text_size, invert});

  std::vector<std::pair<size_t, size_t>> out;
  switch (behavior) {
    case SplitBehavior::Removed:
      for (const Part& p : parts)
        if (!p.match) out.emplace_back(p.b, p.e);
      break;
    case SplitBehavior::Isolated:
      for (const Part& p : parts) out.emplace_back(p.b, p.e);
      break;
    case SplitBehavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.match && !previous_match && !out.empty()) out.back().second = p.e;
        else out.emplace_back(p.b, p.e);
        previous_match = p.match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool next_match = false;
      std::vector<std::pair<size_t, size_t>> reversed;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->match && !next_match && !reversed.empty()) reversed.back().first = it->b;
        else reversed.emplace_back(it->b, it->e);
        next_match = it->match;
      }
      out.assign(reversed.rbegin(), reversed.rend());
      break;
    }
    case SplitBehavior::Contiguous: {
      bool previous_match = false;
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i > 0 && parts[i].match == previous_match) out.back().second = parts[i].e;
        else out.emplace_back(parts[i].b, parts[i].e);
        previous_match = parts[i].match;
      }
      break;
    }
  }
  return out;
}

namespace {

void apply_split(std::vector<std::string>& pieces, SplitBehavior behavior, bool invert,
                 const std::function<std::vector<std::pair<size_t, size_t>>(std::string_view)>& find) {
  std::vector<std::string> out;
  out.reserve(pieces.size() * 2);
  for (const std::string& piece : pieces)
    for (const auto& [b, e] : split_ranges(piece.size(), find(piece), behavior, invert))
      if (e > b) out.emplace_back(piece, b, e - b);
  pieces.swap(out);
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void split(std::vector<std::string>& pieces) const override {
    for (const auto& p : parts_) p->split(pieces);
  }
  bool byte_level() const override {
    for (const auto& p : parts_)
      if (p->byte_level()) return true;
    return false;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> regex, std::string literal, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}
  void split(std::vector<std::string>& pieces) const override {
    apply_split(pieces, behavior_, invert_, [this](std::string_view text) {
      if (regex_) return regex_->find_all(text);
      std::vector<std::pair<size_t, size_t>> found;
      if (!literal_.empty())
        for (size_t pos = text.find(literal_); pos != std::string_view::npos; pos = text.find(literal_, pos + literal_.size()))
          found.emplace_back(pos, pos + literal_.size());
      return found;
    });
  }

 private:
  std::unique_ptr<Regex> regex_;
  std::string literal_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern) : nullptr) {}
  void split(std::vector<std::string>& pieces) const override {
    if (add_prefix_space_)
      for (std::string& p : pieces)
        if (p.empty() || p[0] != ' ') p.insert(p.begin(), ' ');
    if (regex_)
      apply_split(pieces, SplitBehavior::Isolated, false, [this](std::string_view t) { return regex_->find_all(t); });
  }
  bool byte_level() const override { return true; }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class DigitsPreTokenizer : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : regex_(individual ? "\\p{N}" : "\\p{N}+") {}
  void split(std::vector<std::string>& pieces) const override {
    apply_split(pieces, SplitBehavior::Isolated, false, [this](std::string_view t) { return regex_.find_all(t); });
  }

 private:
  Regex regex_;
};

SplitBehavior parse_behavior(const std::string& name) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  fail("Split behavior \"{}\" is not supported", name);
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    fail("pre_tokenizer needs a string \"type\"");
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    const auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) fail("pre_tokenizer Sequence needs an array \"pretokenizers\"");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& p : *it)
      if (auto t = make_pre_tokenizer(p)) parts.push_back(std::move(t));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") {
    const auto pattern = j.find("pattern");
    if (pattern == j.end() || !pattern->is_object()) fail("pre_tokenizer Split needs an object \"pattern\"");
    const SplitBehavior behavior = parse_behavior(j.value("behavior", std::string("Isolated")));
    const bool invert = j.value("invert", false);
    if (const auto r = pattern->find("Regex"); r != pattern->end() && r->is_string())
      return std::make_unique<SplitPreTokenizer>(std::make_unique<Regex>(r->get<std::string>()), "", behavior, invert);
    if (const auto s = pattern->find("String"); s != pattern->end() && s->is_string())
      return std::make_unique<SplitPreTokenizer>(nullptr, s->get<std::string>(), behavior, invert);
    fail("pre_tokenizer Split pattern needs \"Regex\" or \"String\"");
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelPreTokenizer>(j.value("add_prefix_space", false), j.value("use_regex", true));
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(j.value("individual_digits", false));
  fail("pre_tokenizer type \"{}\" is not supported", type);
}

}  // namespace whale
