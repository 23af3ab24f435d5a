// Worked examples for the supervised start of the RL pipeline (docs/rl.md): each training problem with a step-by-step
// solution inside <think>, then the answer, in the model's chat format, so that a small model learns the format and
// part of the skill before GRPO.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "whale/tokenizer/tokenizer.h"
#include "whale/train/rl_tasks.h"

namespace whale::train {

// The reasoning for a problem, one step per line. Multiplication: a times each nonzero digit of b at its place
// value, then the running sum ("47*38", "47*8=376", "47*30=1410", "376+1410=1786"). Addition: column by column from
// the units, with the carry ("478+356", "8+6=14", "7+5+1=13", "4+3+1=8"). Throws Error for other kinds.
std::string worked_solution(const RlProblem& problem);

// The completion the model should write after the chat template's generation prompt (which opens <think>):
// reasoning, "\n</think>\n\n", answer.
std::string worked_completion(const RlProblem& problem);

// The completion of a model that answers without working: an empty reasoning block ("</think>\n\n", answer).
std::string direct_completion(const RlProblem& problem);

// The chat-templated prompt text of one user turn with the generation prompt (BOS included, as the template writes it).
std::string chat_prompt_text(const Tokenizer& tokenizer, const std::string& question);

// Writes `count` examples drawn (with replacement, from `seed`) from `problems` as .jsonl lines
// {"text": prompt + completion}, the format `whale train --data` reads (it appends EOS after each). Each is a direct
// completion with probability `direct_fraction`, else a worked one; at 0 no extra draw is made, so the file is the
// one of earlier versions. Throws Error naming the file if it cannot be written.
void write_sft_examples(const std::filesystem::path& file, const Tokenizer& tokenizer,
                        const std::vector<RlProblem>& problems, int64_t count, uint64_t seed,
                        double direct_fraction = 0.0);

}  // namespace whale::train
