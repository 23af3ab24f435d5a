#!/usr/bin/env node
// Renders every chat template in tests/tokenizer/templates/ with @huggingface/jinja (the JavaScript Jinja that
// transformers.js uses) for a set of conversations, and writes the results as the reference that
// tests/tokenizer/jinja_template_test.cc compares whale's renderer with, byte for byte.
//
//   node tests/tokenizer/jinja_reference.mjs OUT.json
//   WHALE_JINJA_EXPECTED=OUT.json build/release/tests/whale_tests --gtest_filter='JinjaTemplate*'
//
// @huggingface/jinja is resolved from each directory in NODE_PATH, then from the repository root (node_modules/).
// The context is what transformers' apply_chat_template passes: messages, add_generation_prompt, bos_token,
// eos_token, tools = null, documents = null (whale::ChatTemplate::render_chat builds the same).
//
// Output: {"generator", "templates": {file: source}, "cases": [{template, conversation_name, conversation,
// add_generation_prompt, bos_token, eos_token, expected | error}]}; `error` means the reference refused to
// render (whale must then throw too).
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");

function loadJinja() {
  const require = createRequire(import.meta.url);
  const dirs = [...(process.env.NODE_PATH ?? "").split(path.delimiter).filter(Boolean), repoRoot];
  for (const dir of dirs) {
    try {
      const resolved = require.resolve("@huggingface/jinja", { paths: [dir] });
      const pkg = JSON.parse(readFileSync(path.join(resolved, "..", "..", "package.json"), "utf8"));
      return { jinja: require(resolved), version: pkg.version };
    } catch {
      // try the next directory
    }
  }
  throw new Error(
    `@huggingface/jinja not found (looked in NODE_PATH and ${repoRoot}/node_modules); ` +
      "install it with: npm install --no-save @huggingface/jinja",
  );
}

const BOS = "<｜begin▁of▁sentence｜>";
const EOS = "<｜end▁of▁sentence｜>";

const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const assistant = (content) => ({ role: "assistant", content });
const tool = (content) => ({ role: "tool", content });
const call = (name, args) => ({ type: "function", function: { name, arguments: JSON.stringify(args) } });
const calls = (content, ...toolCalls) => ({ role: "assistant", content, tool_calls: toolCalls });

const weather = call("get_weather", { location: "Hanoi", unit: "celsius" });
const time = call("get_time", { timezone: "Asia/Ho_Chi_Minh" });

// Each conversation is rendered with add_generation_prompt true and false.
const CONVERSATIONS = {
  single_user: [user("Hello!")],
  system_and_user: [sys("You are a helpful assistant."), user("What is 2+2?")],
  spec_example: [
    sys("You are a helpful assistant."),
    user("What is 2+2?"),
    assistant("<think>\nSimple arithmetic.\n</think>\n\n2+2 = 4."),
    user("And 3+3?"),
  ],
  two_system_messages: [sys("Rule one."), sys("Rule two."), user("Go.")],
  system_in_the_middle: [user("Hi"), assistant("Hello."), sys("Be brief."), user("Why is the sky blue?")],
  three_rounds: [
    user("Round 1"),
    assistant("Answer 1"),
    user("Round 2"),
    assistant("Answer 2"),
    user("Round 3"),
    assistant("Answer 3"),
  ],
  multi_turn_open: [user("a"), assistant("b"), user("c")],
  think_history: [
    user("Solve x+1=3."),
    assistant("<think>\nSubtract 1 from both sides.\n</think>\n\nx = 2."),
    user("Now x+2=5."),
  ],
  think_twice: [user("q"), assistant("<think>a</think>b<think>c</think>\n\nfinal answer")],
  think_unclosed: [user("q"), assistant("<think>\nstill thinking without a close tag")],
  think_empty: [user("q"), assistant("<think>\n\n</think>\n\nDirect answer.")],
  empty_user: [user("")],
  empty_assistant: [user("Say nothing."), assistant(""), user("Thanks.")],
  empty_system: [sys(""), user("Hi")],
  unicode: [
    sys("你是一个有用的助手。"),
    user("日本語のテキスト、한국어, العربية, emoji 😀👍🏽, combining é (e\u0301), ZWJ 👩‍💻"),
    assistant("Ответ: ça va — «très bien» ✓"),
    user("ß ΣΊΣΥΦΟΣ \u2028 line separator"),
  ],
  template_syntax_in_content: [user("{{ messages }} {% if true %}x{% endif %} {# not a comment #}"), assistant("{%- raw -%}")],
  whitespace_content: [sys("  padded system  \n"), user("\n\n  leading and trailing  \n\t"), assistant(" \n ")],
  quotes_and_backslashes: [user("It's \"quoted\" and back\\slashed \\n not a newline"), assistant("'single' \"double\"")],
  special_tokens_in_content: [user(`literal ${BOS} and <｜User｜> and <｜Assistant｜> markers`)],
  long_content: [user("word ".repeat(500).trim()), assistant("ok ".repeat(300).trim()), user("more")],
  tool_call_round: [
    sys("You can call tools."),
    user("What's the weather in Hanoi?"),
    calls(null, weather),
    tool('{"temperature": 31, "condition": "sunny"}'),
    assistant("It is 31°C and sunny in Hanoi."),
  ],
  tool_call_pending: [user("Weather and time in Hanoi?"), calls(null, weather, time)],
  two_tool_results: [
    user("Weather and time in Hanoi?"),
    calls(null, weather, time),
    tool('{"temperature": 31}'),
    tool('{"time": "14:05"}'),
  ],
  two_tool_results_answered: [
    user("Weather and time in Hanoi?"),
    calls(null, weather, time),
    tool('{"temperature": 31}'),
    tool('{"time": "14:05"}'),
    assistant("31°C, 14:05."),
    user("Thanks!"),
  ],
  tool_call_with_content: [
    user("Weather?"),
    calls("Let me check.", weather),
    tool("sunny"),
    assistant("Sunny."),
  ],
  tool_call_empty_content: [user("Weather?"), calls("", weather), tool("rain")],
  two_tool_rounds: [
    user("Weather?"),
    calls(null, weather),
    tool("sunny"),
    assistant("Sunny."),
    user("And the time?"),
    calls(null, time),
    tool("14:05"),
  ],
  empty_tool_calls_list: [user("Hi"), { role: "assistant", content: "Hello.", tool_calls: [] }, user("Bye")],
  ends_with_assistant: [sys("Continue the text."), user("Write a haiku."), assistant("Old pond")],
  system_only: [sys("Only a system prompt.")],
  no_messages: [],
  extra_message_keys: [
    { role: "user", content: "Hi", name: "alice", id: 7 },
    { role: "assistant", content: "Hello", reasoning_content: "greet back", refusal: null },
  ],
  unknown_role: [{ role: "developer", content: "ignored by most templates" }, user("Hi")],
  missing_content: [{ role: "user" }],
  null_user_content: [user(null)],
};

function main() {
  const outPath = process.argv[2];
  if (!outPath) {
    console.error("usage: node tests/tokenizer/jinja_reference.mjs OUT.json");
    process.exit(2);
  }
  const { jinja, version } = loadJinja();
  const templateDir = path.join(here, "templates");
  const templates = {};
  for (const file of readdirSync(templateDir).filter((f) => f.endsWith(".jinja")).sort()) {
    templates[file] = readFileSync(path.join(templateDir, file), "utf8");
  }
  const cases = [];
  let errors = 0;
  for (const [file, source] of Object.entries(templates)) {
    const compiled = new jinja.Template(source);
    for (const [name, conversation] of Object.entries(CONVERSATIONS)) {
      for (const addGenerationPrompt of [true, false]) {
        const entry = {
          template: file,
          conversation_name: name,
          conversation,
          add_generation_prompt: addGenerationPrompt,
          bos_token: BOS,
          eos_token: EOS,
        };
        try {
          entry.expected = compiled.render({
            messages: structuredClone(conversation),
            add_generation_prompt: addGenerationPrompt,
            bos_token: BOS,
            eos_token: EOS,
            tools: null,
            documents: null,
          });
        } catch (e) {
          entry.error = String(e.message ?? e);
          ++errors;
        }
        cases.push(entry);
      }
    }
  }
  const generator = `@huggingface/jinja ${version}`;
  mkdirSync(path.dirname(path.resolve(outPath)), { recursive: true });
  writeFileSync(outPath, JSON.stringify({ generator, templates, cases }, null, 1) + "\n");
  console.log(`${generator}: ${Object.keys(templates).length} templates, ${cases.length} cases ` +
              `(${errors} refused by the reference) -> ${outPath}`);
}

main();
