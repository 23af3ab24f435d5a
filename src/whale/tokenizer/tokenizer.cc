#include "whale/tokenizer/tokenizer.h"


#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/io/text_file.h"
#include "whale/tokenizer/byte_level.h"
#include "whale/tokenizer/tokenizer_json.h"

namespace whale {
namespace {

nlohmann::json parse_json(std::string_view text, const std::string& file) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", file, e.what());
  }
}

// bos_token / eos_token in tokenizer_config.json: a string, or an AddedToken object with "content".
std::string token_text(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  fail("field \"{}\" is neither a string nor an object with \"content\"", key);
}

// The bytes a token string stands for under the ByteLevel decoder: every character mapped back to its byte, or,
// if any character is outside the byte alphabet, the string's own UTF-8 (tokenizers' ByteLevel::decode_chain).
std::string byte_level_decode(const std::string& token) {
  std::string bytes;
  bytes.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    const auto b = char_to_byte(utf8_next(token, i));
    if (!b) return token;
    bytes += static_cast<char>(*b);
  }
  return bytes;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) fail("{}: model directory not found", dir.string());
  const std::filesystem::path json_path = dir / "tokenizer.json";
  if (!std::filesystem::exists(json_path, ec)) fail("{}: not found (the tokenizer is missing)", json_path.string());
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  const std::string config = std::filesystem::exists(config_path, ec) ? read_text_file(config_path) : std::string();
  return from_json(read_text_file(json_path), config, dir.string());
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               const std::string& source) {
  const std::string json_file = source + "/tokenizer.json";
  const std::string config_file = source + "/tokenizer_config.json";
  Tokenizer t;
  try {
    with_context(json_file, [&] {
      const TokenizerJson j = parse_tokenizer_json(tokenizer_json);
      t.normalizer_ = make_normalizer(j.normalizer);
      t.pre_tokenizer_ = make_pre_tokenizer(j.pre_tokenizer);
      const bool byte_level = t.pre_tokenizer_ && t.pre_tokenizer_->byte_level();
      t.model_ = std::make_unique<BpeModel>(j.model, byte_level);
      t.vocab_size_ = t.model_->size();

      const nlohmann::json& decoder = j.decoder;
      if (!decoder.is_null()) {
        const std::string type = decoder.value("type", std::string());
        if (type != "ByteLevel") fail("decoder type \"{}\" is not supported (only ByteLevel)", type);
        t.byte_level_decoder_ = true;
      }

      if (!j.added_tokens.is_null()) {
        if (!j.added_tokens.is_array()) fail("\"added_tokens\" is not an array");
        for (const auto& a : j.added_tokens) {
          if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
              !a["content"].is_string())
            fail("added_tokens entry {} needs an integer \"id\" and a string \"content\"", a.dump());
          AddedToken tok;
          const int64_t id = a["id"].get<int64_t>();
          if (id < 0 || id >= (1 << 30)) fail("added token id {} is out of range", id);
          tok.id = static_cast<int32_t>(id);
          tok.content = a["content"].get<std::string>();
          tok.special = a.value("special", false);
          tok.lstrip = a.value("lstrip", false);
          tok.rstrip = a.value("rstrip", false);
          tok.single_word = a.value("single_word", false);
          tok.normalized = a.value("normalized", !tok.special);
          t.added_by_id_[tok.id] = t.added_.size();
          t.added_.push_back(std::move(tok));
          t.vocab_size_ = std::max(t.vocab_size_, static_cast<int32_t>(id) + 1);
        }
      }
      std::vector<const AddedToken*> raw, normalized;
      for (const AddedToken& a : t.added_) (a.normalized ? normalized : raw).push_back(&a);
      t.raw_matcher_ = std::make_unique<AddedTokenMatcher>(raw);
      t.normalized_matcher_ = std::make_unique<AddedTokenMatcher>(normalized);

      // A TemplateProcessing post-processor states the special tokens around a single sequence.
      const nlohmann::json& post = j.post_processor;
      if (post.is_object() && post.value("type", std::string()) == "TemplateProcessing" && post.contains("single")) {
        bool after_sequence = false;
        for (const auto& item : post["single"]) {
          if (item.contains("Sequence")) {
            after_sequence = true;
          } else if (item.contains("SpecialToken")) {
            const std::string name = item["SpecialToken"].value("id", std::string());
            const auto& specials = post.value("special_tokens", nlohmann::json::object());
            if (!specials.contains(name)) fail("post_processor names unknown special token \"{}\"", name);
            for (const auto& id : specials[name]["ids"]) (after_sequence ? t.suffix_ : t.prefix_).push_back(id.get<int32_t>());
          }
        }
      }
    });
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed: {}", json_file, e.what());
  }

  if (!config_json.empty()) {
    const nlohmann::json c = parse_json(config_json, config_file);
    try {
      with_context(config_file, [&] {
        if (!c.is_object()) fail("not a JSON object");
        t.bos_token_ = token_text(c, "bos_token");
        t.eos_token_ = token_text(c, "eos_token");
        t.bos_id_ = t.bos_token_.empty() ? std::nullopt : t.token_id(t.bos_token_);
        t.eos_id_ = t.eos_token_.empty() ? std::nullopt : t.token_id(t.eos_token_);
        if (!t.bos_token_.empty() && !t.bos_id_) fail("bos_token \"{}\" is not in the vocabulary", t.bos_token_);
        if (!t.eos_token_.empty() && !t.eos_id_) fail("eos_token \"{}\" is not in the vocabulary", t.eos_token_);
        // LlamaTokenizerFast semantics: add_bos_token / add_eos_token rebuild the special-token template.
        if (c.contains("add_bos_token") || c.contains("add_eos_token")) {
          t.prefix_.clear();
          t.suffix_.clear();
          if (c.value("add_bos_token", false) && t.bos_id_) t.prefix_.push_back(*t.bos_id_);
          if (c.value("add_eos_token", false) && t.eos_id_) t.suffix_.push_back(*t.eos_id_);
        }
        if (const auto clean = c.find("clean_up_tokenization_spaces"); clean != c.end() && clean->is_boolean())
          t.clean_up_tokenization_spaces_ = clean->get<bool>();
        if (const auto tpl = c.find("chat_template"); tpl != c.end() && !tpl->is_null()) {
          if (tpl->is_string()) {
            t.chat_template_ = tpl->get<std::string>();
          } else if (tpl->is_array()) {  // named templates: use "default"
            for (const auto& entry : *tpl)
              if (entry.value("name", std::string()) == "default") t.chat_template_ = entry.value("template", std::string());
          } else {
            fail("field \"chat_template\" is neither a string nor a list of named templates");
          }
        }
      });
    } catch (const nlohmann::json::exception& e) {
      fail("{}: malformed: {}", config_file, e.what());
    }
  }
  return t;
}

std::optional<int32_t> Tokenizer::token_id(const std::string& token) const {
  for (const AddedToken& a : added_)
    if (a.content == token) return a.id;
  const int32_t id = model_->id_of(token);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  const auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && added_[it->second].special;
}

void Tokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string> pieces{std::string(text)};
  if (pre_tokenizer_) pre_tokenizer_->split(pieces);
  for (const std::string& piece : pieces) model_->encode(piece, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (const size_t bad = utf8_invalid_offset(text); bad != std::string_view::npos)
    fail("input is not valid UTF-8 at byte {}", bad);
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = prefix_;
  for (const TextSegment& seg : raw_matcher_->split(text)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    const std::string normalized = normalizer_ ? normalizer_->normalize(seg.text) : std::string(seg.text);
    for (const TextSegment& inner : normalized_matcher_->split(normalized)) {
      if (inner.id >= 0) ids.push_back(inner.id);
      else encode_text(inner.text, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  return ids;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (const auto it = added_by_id_.find(id); it != added_by_id_.end()) {
    const std::string& content = added_[it->second].content;
    return byte_level_decoder_ ? byte_level_decode(content) : content;
  }
  if (id < 0 || id >= model_->size() || (model_->token(id).empty() && model_->id_of("") != id))
    fail("token id {} is not in the vocabulary (size {})", id, vocab_size_);
  return byte_level_decoder_ ? byte_level_decode(model_->token(id)) : model_->token(id);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens,
                              std::optional<bool> clean_up_tokenization_spaces) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    bytes += token_bytes(id);
  }
  std::string text = utf8_lossy(bytes);
  if (!clean_up_tokenization_spaces.value_or(clean_up_tokenization_spaces_)) return text;
  // transformers PreTrainedTokenizerBase.clean_up_tokenization, in its order.
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    std::string out;
    size_t prev = 0;
    for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, prev)) {
      out.append(text, prev, pos - prev);
      out += to;
      prev = pos + from.size();
    }
    out.append(text, prev);
    text = std::move(out);
  }
  return text;
}

std::string StreamingDecoder::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return "";
  return utf8_.push(tokenizer_.token_bytes(id));
}

}  // namespace whale
