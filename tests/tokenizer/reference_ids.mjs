#!/usr/bin/env node
// Encodes the tokenizer corpus (make_corpus.mjs) with two reference implementations of Hugging Face tokenizer.json:
// transformers.js (@lenml/tokenizers) and Hugging Face's own Rust tokenizers (the `tokenizers` node binding), and
// decodes seeded random id sequences with both. tokenizer_reference_test.cc compares whale against the result.
//
//   node tests/tokenizer/reference_ids.mjs --tokenizer DIR --corpus CORPUS.json --out EXPECTED.json
//        [--seed N] [--decode-cases N] [--examples N]
//
// DIR holds tokenizer.json and tokenizer_config.json. The output is
//   {meta: {...}, cases: [{category, text, ids, hf_ids, decoded}], decode_cases: [{ids, decoded, hf_decoded,
//    decoded_skip, hf_decoded_skip}]}
// where ids/decoded come from transformers.js and hf_* from the Rust library. Decoding never applies
// clean_up_tokenization_spaces (whale's decode is the tokenizer.json decoder alone); meta says what the config asks.
// The script prints how often the two references disagree, with examples.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { makeRng } from "./seeded_rng.mjs";

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------------------------
// Arguments

const opts = { tokenizer: null, corpus: null, out: null, seed: 1, decodeCases: 2000, examples: 8 };
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; ++i) {
    const next = () => {
      if (i + 1 >= a.length) usage(2);
      return a[++i];
    };
    switch (a[i]) {
      case "--tokenizer": opts.tokenizer = next(); break;
      case "--corpus": opts.corpus = next(); break;
      case "--out": opts.out = next(); break;
      case "--seed": opts.seed = Number(next()); break;
      case "--decode-cases": opts.decodeCases = Number(next()); break;
      case "--examples": opts.examples = Number(next()); break;
      case "-h": case "--help": usage(0); break;
      default: usage(2);
    }
  }
  if (!opts.tokenizer || !opts.corpus || !opts.out || !Number.isInteger(opts.seed)) usage(2);
}

function usage(code) {
  (code ? console.error : console.log)(
    "usage: node tests/tokenizer/reference_ids.mjs --tokenizer DIR --corpus CORPUS.json --out EXPECTED.json " +
      "[--seed N] [--decode-cases N] [--examples N]");
  process.exit(code);
}

// Resolve the reference libraries from the repository's node_modules even when run from elsewhere.
const { TokenizerLoader } = await import(require.resolve("@lenml/tokenizers"));
const hf = require("tokenizers");

// ---------------------------------------------------------------------------------------------------------------
// Seeded PRNG (the same sfc32/splitmix32 construction as make_corpus.mjs).


// ---------------------------------------------------------------------------------------------------------------
// Load

const dir = opts.tokenizer;
const jsonPath = path.join(dir, "tokenizer.json");
const configPath = path.join(dir, "tokenizer_config.json");
const tokenizerJSON = JSON.parse(fs.readFileSync(jsonPath, "utf8"));
const tokenizerConfig = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
const corpus = JSON.parse(fs.readFileSync(opts.corpus, "utf8"));

// The version in a package's package.json (found above its resolved entry point; "exports" hides the file).
function packageVersion(name) {
  for (let d = path.dirname(require.resolve(name)); d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, "package.json");
    if (fs.existsSync(p)) {
      const j = JSON.parse(fs.readFileSync(p, "utf8"));
      if (j.name === name) return j.version;
    }
  }
  return null;
}

const tjs = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const rust = hf.Tokenizer.fromFile(jsonPath);

const t0 = Date.now();
const escape = (s) => JSON.stringify(s);
const sameArray = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

// ---------------------------------------------------------------------------------------------------------------
// Encode the corpus with both.

const tjsIds = corpus.map(({ text }) => Array.from(tjs.encode(text, { add_special_tokens: false })));
const tTjs = Date.now();

const hfIds = [];
const BATCH = 512;
for (let i = 0; i < corpus.length; i += BATCH) {
  const encs = await rust.encodeBatch(corpus.slice(i, i + BATCH).map((c) => c.text), { addSpecialTokens: false });
  for (const e of encs) hfIds.push(Array.from(e.getIds()));
}
const tHf = Date.now();

const decodeTjs = (ids, skip) =>
  tjs.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });

const cases = corpus.map((c, i) => ({
  category: c.category,
  text: c.text,
  ids: tjsIds[i],
  hf_ids: hfIds[i],
  decoded: decodeTjs(tjsIds[i], false),
}));

// ---------------------------------------------------------------------------------------------------------------
// Random id sequences to decode: the whole vocabulary, added and special tokens, and single-byte tokens (which make
// partial and invalid UTF-8).

const vocab = tokenizerJSON.model.vocab;  // token -> id
const vocabIds = Object.values(vocab);
const added = tokenizerJSON.added_tokens ?? [];
const addedIds = added.map((a) => a.id);
const decoderType = tokenizerJSON.decoder?.type ?? null;

// GPT-2 byte alphabet: byte -> character.
const byteChars = [];
{
  const bs = [];
  for (let b = 0x21; b <= 0x7e; ++b) bs.push(b);
  for (let b = 0xa1; b <= 0xac; ++b) bs.push(b);
  for (let b = 0xae; b <= 0xff; ++b) bs.push(b);
  let n = 0;
  for (let b = 0; b < 256; ++b) byteChars[b] = bs.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + n++);
}
const byteIds = byteChars.map((c) => vocab[c]).filter((id) => id !== undefined);
const highByteIds = byteChars.slice(0x80).map((c) => vocab[c]).filter((id) => id !== undefined);
// Vocabulary entries whose bytes are not valid UTF-8 on their own (fragments of multi-byte characters).
const charToByte = new Map(byteChars.map((c, b) => [c, b]));
const fragmentIds = [];
if (decoderType === "ByteLevel") {
  const strict = new TextDecoder("utf-8", { fatal: true });
  for (const [tok, id] of Object.entries(vocab)) {
    const bytes = [];
    let ok = true;
    for (const ch of tok) {
      const b = charToByte.get(ch);
      if (b === undefined) { ok = false; break; }
      bytes.push(b);
    }
    if (!ok) continue;
    try { strict.decode(new Uint8Array(bytes)); } catch { fragmentIds.push(id); }
  }
}

const rng = makeRng(opts.seed);
const sequences = [];
for (let i = 0; i < opts.decodeCases; ++i) {
  const len = rng.int(1, 30);
  const ids = [];
  const style = rng.float();
  for (let k = 0; k < len; ++k) {
    const r = rng.float();
    if (style < 0.2) ids.push(rng.pick(highByteIds.length ? highByteIds : vocabIds));  // mostly broken UTF-8
    else if (r < 0.25 && byteIds.length) ids.push(rng.pick(r < 0.15 && highByteIds.length ? highByteIds : byteIds));
    else if (r < 0.4 && fragmentIds.length) ids.push(rng.pick(fragmentIds));
    else if (r < 0.5 && addedIds.length) ids.push(rng.pick(addedIds));
    else ids.push(rng.pick(vocabIds));
  }
  sequences.push(ids);
}
// Valid characters cut into bytes, whole and truncated, with neighbours.
for (const ch of ["é", "中", "😀", "👨‍👩‍👧", "\u{10348}", "ह्", "€"]) {
  const bytes = [...Buffer.from(ch, "utf8")].map((b) => vocab[byteChars[b]]);
  if (bytes.some((id) => id === undefined)) continue;
  sequences.push(bytes);
  for (let cut = 1; cut < bytes.length; ++cut) {
    sequences.push(bytes.slice(0, cut));
    sequences.push(bytes.slice(cut));
    if (addedIds.length) sequences.push([...bytes.slice(0, cut), addedIds[0], ...bytes.slice(cut)]);
    if (byteIds.length) sequences.push([...bytes.slice(0, cut), vocab["a"] ?? byteIds[0], ...bytes.slice(cut)]);
  }
}

const decodeCases = [];
for (const ids of sequences) {
  decodeCases.push({
    ids,
    decoded: decodeTjs(ids, false),
    hf_decoded: await rust.decode(ids, false),
    decoded_skip: decodeTjs(ids, true),
    hf_decoded_skip: await rust.decode(ids, true),
  });
}
const tDec = Date.now();

// ---------------------------------------------------------------------------------------------------------------
// Compare the references and report.

const normalizer = tokenizerJSON.normalizer;
const normalizes = !(normalizer == null || (normalizer.type === "Sequence" && (normalizer.normalizers ?? []).length === 0));
const meta = {
  tokenizer_dir: path.resolve(dir),
  corpus: path.resolve(opts.corpus),
  seed: opts.seed,
  node: process.version,
  unicode: process.versions.unicode,
  transformers_js: packageVersion("@lenml/tokenizers"),
  hf_tokenizers: packageVersion("tokenizers"),
  normalizer: normalizer?.type ?? null,
  // With a normalizer (NFC for Qwen3) decode(encode(x)) is the normalized text, not x.
  roundtrip_exact: !normalizes,
  add_bos_token: tokenizerConfig.add_bos_token ?? null,
  add_eos_token: tokenizerConfig.add_eos_token ?? null,
  bos_id: tjs.bos_token_id ?? null,
  eos_id: tjs.eos_token_id ?? null,
  clean_up_tokenization_spaces: tokenizerConfig.clean_up_tokenization_spaces ?? null,
};

const byCat = {};
const encodeDiff = [];
let roundtripTjs = 0, roundtripHf = 0;
for (let i = 0; i < cases.length; ++i) {
  const c = cases[i];
  const s = (byCat[c.category] ||= { cases: 0, differ: 0 });
  s.cases += 1;
  if (!sameArray(c.ids, c.hf_ids)) {
    s.differ += 1;
    encodeDiff.push(i);
  }
  if (c.decoded !== c.text) roundtripTjs += 1;
}
// Rust round trip, for information.
for (let i = 0; i < cases.length; i += BATCH) {
  const decs = await rust.decodeBatch(cases.slice(i, i + BATCH).map((c) => c.hf_ids), false);
  decs.forEach((d, k) => { if (d !== cases[i + k].text) roundtripHf += 1; });
}
let decodeDiff = 0, decodeSkipDiff = 0;
const decodeExamples = [];
for (const d of decodeCases) {
  if (d.decoded !== d.hf_decoded) {
    decodeDiff += 1;
    if (decodeExamples.length < opts.examples) decodeExamples.push(d);
  }
  if (d.decoded_skip !== d.hf_decoded_skip) decodeSkipDiff += 1;
}

const out = { meta, cases, decode_cases: decodeCases };
fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
fs.writeFileSync(opts.out, JSON.stringify(out));

const bytes = corpus.reduce((s, c) => s + Buffer.byteLength(c.text, "utf8"), 0);
console.log(`${opts.out}: ${cases.length} cases (${bytes} bytes), ${decodeCases.length} decode cases; ` +
  `transformers.js ${meta.transformers_js} ${(tTjs - t0) / 1000}s, tokenizers ${meta.hf_tokenizers} ${(tHf - tTjs) / 1000}s, ` +
  `decodes ${(tDec - tHf) / 1000}s`);
console.log(`meta: ${JSON.stringify({ ...meta, tokenizer_dir: undefined, corpus: undefined })}`);
console.log(`encode: transformers.js and tokenizers disagree on ${encodeDiff.length} of ${cases.length} cases`);
for (const [k, v] of Object.entries(byCat)) if (v.differ) console.log(`  ${k.padEnd(15)} ${v.differ} of ${v.cases}`);
for (const i of encodeDiff.slice(0, opts.examples)) {
  const c = cases[i];
  let first = 0;
  while (first < c.ids.length && c.ids[first] === c.hf_ids[first]) ++first;
  const lo = Math.max(0, first - 3);
  const pieces = (ids) => ids.slice(lo, first + 4).map((id) => `${id}:${escape(rust.idToToken(id))}`).join(" ");
  console.log(`  [${c.category}] ${escape(c.text.length > 160 ? c.text.slice(0, 160) + "…" : c.text)}`);
  console.log(`    first difference at id ${first}`);
  console.log(`    transformers.js: ${pieces(c.ids)}`);
  console.log(`    tokenizers:      ${pieces(c.hf_ids)}`);
}
console.log(`round trip decode(encode(x)) != x: transformers.js ${roundtripTjs}, tokenizers ${roundtripHf} (of ${cases.length})`);
console.log(`decode: disagree on ${decodeDiff} of ${decodeCases.length} sequences (skip_special_tokens: ${decodeSkipDiff})`);
for (const d of decodeExamples) {
  console.log(`  ids ${JSON.stringify(d.ids)}`);
  console.log(`    transformers.js: ${escape(d.decoded)}`);
  console.log(`    tokenizers:      ${escape(d.hf_decoded)}`);
}
