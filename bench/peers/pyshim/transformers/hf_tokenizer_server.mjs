// Line-based JSON server around Hugging Face's Rust tokenizers (npm `tokenizers`, from the repo's node_modules),
// used by the pyshim `transformers` stand-in. argv[2]: tokenizer.json. Each stdin line is a request, answered by one
// stdout line, in order:
//   {"op":"encode","text":"...","add_special_tokens":false}  -> {"ids":[...]}
//   {"op":"decode","ids":[...],"skip_special_tokens":false}   -> {"text":"..."}
import { createRequire } from "node:module";
import readline from "node:readline";

const require = createRequire(import.meta.url);
const { Tokenizer } = require("tokenizers");

const tok = Tokenizer.fromFile(process.argv[2]);
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    const req = JSON.parse(line);
    if (req.op === "encode") {
      const enc = await tok.encode(req.text, null, { addSpecialTokens: !!req.add_special_tokens });
      reply = { ids: Array.from(enc.getIds()) };
    } else if (req.op === "decode") {
      reply = { text: await tok.decode(req.ids, !!req.skip_special_tokens) };
    } else {
      reply = { error: `unknown op ${req.op}` };
    }
  } catch (e) {
    reply = { error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
