// R1-style reasoning: a model that thinks writes its reasoning, then "</think>", then the answer. The chat template
// opens the reasoning (the generation prompt ends with "<think>\n"), so the stream starts inside it.
#pragma once

#include <string>
#include <string_view>

#include "whale/runtime/generator.h"

namespace whale {

// Splits streamed text into reasoning (before </think>) and answer, holding back a possible partial tag.
class ReasoningSplitter {
 public:
  explicit ReasoningSplitter(bool thinking) : thinking_(thinking) {}
  // Calls out(text, is_thinking) for the parts of `piece` that are complete.
  template <typename Out>
  void push(std::string_view piece, Out&& out) {
    pending_ += piece;
    for (;;) {
      if (!thinking_) {
        out(pending_, false);
        pending_.clear();
        return;
      }
      const size_t end = pending_.find(kClose);
      if (end == std::string::npos) {
        const size_t keep = partial_match_length(pending_, kClose);  // a tail that may start </think>
        out(pending_.substr(0, pending_.size() - keep), true);
        pending_.erase(0, pending_.size() - keep);
        return;
      }
      out(pending_.substr(0, end + kClose.size()), true);
      pending_.erase(0, end + kClose.size());
      thinking_ = false;
    }
  }
  bool thinking() const { return thinking_; }
  template <typename Out>
  void finish(Out&& out) {
    out(pending_, thinking_);
    pending_.clear();
  }

 private:
  static constexpr std::string_view kClose = "</think>";
  bool thinking_;
  std::string pending_;
};

}  // namespace whale
