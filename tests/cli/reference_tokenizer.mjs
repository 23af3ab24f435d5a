// Reference tokenizer for the generation tests (transformers.js, @lenml/tokenizers): reads JSON requests on stdin,
// one per line, and answers each with one JSON line.
//   {"encode": "text", "bos": true}            -> {"ids": [...]}
//   {"decode": [ids], "skip_special": true}    -> {"text": "..."}
// Usage: node tests/cli/reference_tokenizer.mjs DIR
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(path.join(root, "package.json"));
const { TokenizerLoader } = await import(require.resolve("@lenml/tokenizers"));

const dir = process.argv[2];
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
});

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  let out;
  if ("encode" in req) out = { ids: Array.from(tok.encode(req.encode, { add_special_tokens: !!req.bos })) };
  else out = { text: tok.decode(req.decode, { skip_special_tokens: !!req.skip_special, clean_up_tokenization_spaces: false }) };
  process.stdout.write(JSON.stringify(out) + "\n");
}
