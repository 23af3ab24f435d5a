#include "whale/tokenizer/tokenizer_json.h"

#include <simdjson.h>

#include "whale/core/error.h"

namespace whale {
namespace {

namespace dom = simdjson::dom;

// A small sub-tree as nlohmann::json, for the configuration factories.
nlohmann::json to_nlohmann(dom::element e) { return nlohmann::json::parse(simdjson::minify(e)); }

void check(simdjson::error_code err, const std::string& what) {
  if (err) fail("{}: {}", what, simdjson::error_message(err));
}

void read_model(dom::object model, BpeModelData& out) {
  std::string_view type = "BPE";
  for (auto [key, value] : model) {
    if (key == "type") {
      check(value.get_string().get(type), "model.type");
    } else if (key == "vocab") {
      dom::object vocab;
      check(value.get_object().get(vocab), "model.vocab");
      out.vocab.reserve(vocab.size());
      for (auto [text, id] : vocab) {
        int64_t v;
        if (id.get_int64().get(v)) fail("model.vocab entry \"{}\" is not an integer id", text);
        out.vocab.emplace_back(text, v);
      }
    } else if (key == "merges") {
      dom::array merges;
      check(value.get_array().get(merges), "model.merges");
      out.merges.reserve(merges.size());
      size_t rank = 0;
      for (dom::element m : merges) {
        std::string_view s;
        dom::array pair;
        if (!m.get_string().get(s)) {
          const size_t space = s.find(' ');
          if (space == std::string_view::npos || s.find(' ', space + 1) != std::string_view::npos)
            fail("model.merges[{}] (\"{}\") is not two tokens separated by one space", rank, s);
          out.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
        } else if (!m.get_array().get(pair) && pair.size() == 2 && pair.at(0).is_string() && pair.at(1).is_string()) {
          out.merges.emplace_back(pair.at(0).get_string().value(), pair.at(1).get_string().value());
        } else {
          fail("model.merges[{}] is neither \"a b\" nor [\"a\", \"b\"]", rank);
        }
        ++rank;
      }
    } else if (key == "dropout") {
      double d = 0;
      if (!value.is_null() && (value.get_double().get(d) || d != 0.0)) fail("model.dropout is not supported");
    } else if (key == "continuing_subword_prefix" || key == "end_of_word_suffix") {
      std::string_view s;
      if (!value.is_null() && (value.get_string().get(s) || !s.empty()))
        fail("model.{} is not supported", key);
    } else if (key == "ignore_merges" || key == "byte_fallback") {
      bool b = false;
      if (!value.is_null()) check(value.get_bool().get(b), "model." + std::string(key));
      (key == "ignore_merges" ? out.ignore_merges : out.byte_fallback) = b;
    } else if (key == "unk_token") {
      std::string_view s;
      if (!value.is_null()) {
        check(value.get_string().get(s), "model.unk_token");
        out.unk_token = std::string(s);
      }
    }
  }
  if (type != "BPE") fail("model type \"{}\" is not supported (only BPE)", type);
}

}  // namespace

TokenizerJson parse_tokenizer_json(std::string_view text) {
  auto parser = std::make_shared<dom::parser>();
  TokenizerJson out;
  out.document = parser;
  dom::element root;
  if (const auto err = parser->parse(text.data(), text.size()).get(root)) fail("not valid JSON: {}", simdjson::error_message(err));
  dom::object obj;
  if (root.get_object().get(obj)) fail("not a JSON object");

  bool have_model = false;
  for (auto [key, value] : obj) {
    if (key == "model") {
      dom::object model;
      check(value.get_object().get(model), "model");
      read_model(model, out.model);
      have_model = true;
    } else if (key == "normalizer") {
      out.normalizer = to_nlohmann(value);
    } else if (key == "pre_tokenizer") {
      out.pre_tokenizer = to_nlohmann(value);
    } else if (key == "post_processor") {
      out.post_processor = to_nlohmann(value);
    } else if (key == "decoder") {
      out.decoder = to_nlohmann(value);
    } else if (key == "added_tokens") {
      out.added_tokens = to_nlohmann(value);
    }
  }
  if (!have_model) fail("missing \"model\"");
  return out;
}

}  // namespace whale
