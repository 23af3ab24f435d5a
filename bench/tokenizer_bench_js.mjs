// transformers.js (@lenml/tokenizers) on the same corpus as tokenizer_bench: load time and single-thread encode
// throughput, median of --repeat runs, one JSON line.
//   node bench/tokenizer_bench_js.mjs --tokenizer DIR --corpus corpus.json [--repeat 3]
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { TokenizerLoader } = await import(require.resolve("@lenml/tokenizers"));

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (i % 2 === 0 ? [...acc, [a.replace(/^--/, ""), all[i + 1]]] : acc), []));
const repeat = Number(args.repeat ?? 3);
const corpus = JSON.parse(fs.readFileSync(args.corpus, "utf8"));
const texts = corpus.map((c) => c.text);
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const loads = [], encodes = [];
let ids = 0;
for (let r = 0; r < repeat; r++) {
  let t0 = performance.now();
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(args.tokenizer, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(args.tokenizer, "tokenizer_config.json"), "utf8"));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  loads.push(performance.now() - t0);
  t0 = performance.now();
  ids = 0;
  for (const t of texts) ids += tok.encode(t, { add_special_tokens: false }).length;
  encodes.push((performance.now() - t0) / 1e3);
}
const s = median(encodes);
console.log(JSON.stringify({ engine: "transformers.js", cases: texts.length, bytes, ids, load_ms: +median(loads).toFixed(1),
  encode_s: +s.toFixed(3), encode_mb_s: +(bytes / 1e6 / s).toFixed(2) }));
