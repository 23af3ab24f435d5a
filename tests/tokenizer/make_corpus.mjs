#!/usr/bin/env node
// Builds the tokenizer reference corpus: a JSON array of {"category", "text"} cases (about 2 MB of UTF-8) that
// reference_ids.mjs encodes with transformers.js and Hugging Face tokenizers and tokenizer_reference_test.cc
// compares whale against.
//
//   node tests/tokenizer/make_corpus.mjs OUT.json [--seed N]
//
// Deterministic for a given seed, machine and Node version: a seeded PRNG (never Math.random), no network. The
// text comes from files every Debian system has (/usr/share/common-licenses, /usr/share/doc, the Python 3.11
// standard library), the repository's own sources, Node's ICU locale data (Intl) and generators for numbers,
// emoji, whitespace, combining marks and random strings. Every code point is assigned in Unicode 14.0 (the
// regex engines being compared follow different Unicode versions), and no case has a surrogate or noncharacter.

import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { makeRng } from "./seeded_rng.mjs";

// ---------------------------------------------------------------------------------------------------------------
// Arguments

const args = process.argv.slice(2);
let outPath = null;
let seed = 1;
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--seed") seed = Number(args[++i]);
  else if (args[i] === "--help" || args[i] === "-h") usage(0);
  else if (!outPath && !args[i].startsWith("--")) outPath = args[i];
  else usage(2);
}
if (!outPath || !Number.isInteger(seed)) usage(2);

function usage(code) {
  (code ? console.error : console.log)("usage: node tests/tokenizer/make_corpus.mjs OUT.json [--seed N]");
  process.exit(code);
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// ---------------------------------------------------------------------------------------------------------------
// Seeded PRNG: sfc32 seeded through splitmix32.


// Each generator gets its own stream so that adding cases to one category does not reshuffle the others.
const rngFor = (name) => {
  let h = seed >>> 0;
  for (const ch of name) h = Math.imul(h ^ ch.codePointAt(0), 16777619) >>> 0;
  return makeRng(h);
};

// ---------------------------------------------------------------------------------------------------------------
// Unicode 14.0 filter. Node's ICU (process.versions.unicode) is newer; these are the code points it reports as
// assigned that Unicode 14.0 does not have (Unicode 15.0 .. 17.0 additions; computed against Python 3.11's
// unicodedata 14.0.0 and ICU 78 / Unicode 17.0).

const POST_14_RANGES = [
  [0x88f, 0x88f], [0x897, 0x897], [0xc5c, 0xc5c], [0xcdc, 0xcdc], [0xcf3, 0xcf3], [0xece, 0xece],
  [0x1acf, 0x1add], [0x1ae0, 0x1aeb], [0x1b4e, 0x1b4f], [0x1b7f, 0x1b7f], [0x1c89, 0x1c8a], [0x20c1, 0x20c1],
  [0x2427, 0x2429], [0x2b96, 0x2b96], [0x2ffc, 0x2fff], [0x31e4, 0x31e5], [0x31ef, 0x31ef], [0xa7cb, 0xa7cf],
  [0xa7d2, 0xa7d2], [0xa7d4, 0xa7d4], [0xa7da, 0xa7dc], [0xa7f1, 0xa7f1], [0xfbc3, 0xfbd2], [0xfd90, 0xfd91],
  [0xfdc8, 0xfdce], [0x105c0, 0x105f3], [0x10940, 0x10959], [0x10d40, 0x10d65], [0x10d69, 0x10d85],
  [0x10d8e, 0x10d8f], [0x10ec2, 0x10ec7], [0x10ed0, 0x10ed8], [0x10efa, 0x10eff], [0x1123f, 0x11241],
  [0x11380, 0x11389], [0x1138b, 0x1138b], [0x1138e, 0x1138e], [0x11390, 0x113b5], [0x113b7, 0x113c0],
  [0x113c2, 0x113c2], [0x113c5, 0x113c5], [0x113c7, 0x113ca], [0x113cc, 0x113d5], [0x113d7, 0x113d8],
  [0x113e1, 0x113e2], [0x116d0, 0x116e3], [0x11b00, 0x11b09], [0x11b60, 0x11b67], [0x11bc0, 0x11be1],
  [0x11bf0, 0x11bf9], [0x11db0, 0x11ddb], [0x11de0, 0x11de9], [0x11f00, 0x11f10], [0x11f12, 0x11f3a],
  [0x11f3e, 0x11f5a], [0x1342f, 0x1342f], [0x13439, 0x13455], [0x13460, 0x143fa], [0x16100, 0x16139],
  [0x16d40, 0x16d79], [0x16ea0, 0x16eb8], [0x16ebb, 0x16ed3], [0x16ff2, 0x16ff6], [0x187f8, 0x187ff],
  [0x18cff, 0x18cff], [0x18d09, 0x18d1e], [0x18d80, 0x18df2], [0x1b132, 0x1b132], [0x1b155, 0x1b155],
  [0x1cc00, 0x1ccfc], [0x1cd00, 0x1ceb3], [0x1ceba, 0x1ced0], [0x1cee0, 0x1cef0], [0x1d2c0, 0x1d2d3],
  [0x1df25, 0x1df2a], [0x1e030, 0x1e06d], [0x1e08f, 0x1e08f], [0x1e4d0, 0x1e4f9], [0x1e5d0, 0x1e5fa],
  [0x1e5ff, 0x1e5ff], [0x1e6c0, 0x1e6de], [0x1e6e0, 0x1e6f5], [0x1e6fe, 0x1e6ff], [0x1f6d8, 0x1f6d8],
  [0x1f6dc, 0x1f6dc], [0x1f774, 0x1f77f], [0x1f7d9, 0x1f7d9], [0x1f8b2, 0x1f8bb], [0x1f8c0, 0x1f8c1],
  [0x1f8d0, 0x1f8d8], [0x1fa54, 0x1fa57], [0x1fa75, 0x1fa77], [0x1fa87, 0x1fa8a], [0x1fa8e, 0x1fa8f],
  [0x1faad, 0x1faaf], [0x1fabb, 0x1fabf], [0x1fac6, 0x1fac6], [0x1fac8, 0x1fac8], [0x1facd, 0x1facf],
  [0x1fada, 0x1fadc], [0x1fadf, 0x1fadf], [0x1fae8, 0x1faea], [0x1faef, 0x1faef], [0x1faf7, 0x1faf8],
  [0x1fbcb, 0x1fbef], [0x1fbfa, 0x1fbfa], [0x2b739, 0x2b73f], [0x2cea2, 0x2cead], [0x2ebf0, 0x2ee5d],
  [0x31350, 0x33479],
];

const assignedRe = /\p{Assigned}/u;
const allowedCache = new Map();
function allowed(cp) {
  let v = allowedCache.get(cp);
  if (v !== undefined) return v;
  v = true;
  if (cp >= 0xd800 && cp <= 0xdfff) v = false;                       // surrogates
  else if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) v = false;  // noncharacters
  else if (!assignedRe.test(String.fromCodePoint(cp))) v = false;
  else for (const [lo, hi] of POST_14_RANGES) if (cp >= lo && cp <= hi) { v = false; break; }
  allowedCache.set(cp, v);
  return v;
}
const allAllowed = (text) => {
  for (const ch of text) if (!allowed(ch.codePointAt(0))) return false;
  return true;
};

// ---------------------------------------------------------------------------------------------------------------
// Output

const cases = [];
const dropped = {};
function add(category, text) {
  if (typeof text !== "string" || text.length === 0) return;
  if (!allAllowed(text) || !text.isWellFormed()) {
    dropped[category] = (dropped[category] || 0) + 1;
    return;
  }
  cases.push({ category, text });
}
const utf8Len = (s) => Buffer.byteLength(s, "utf8");

// Reads a text file as strict UTF-8 (gzip is unpacked); null if missing or not UTF-8.
function readText(file) {
  try {
    let buf = fs.readFileSync(file);
    if (file.endsWith(".gz")) buf = zlib.gunzipSync(buf);
    return new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    return null;
  }
}

// Cuts `text` into chunks at line boundaries, each about rng.int(lo, hi) bytes.
function chunkLines(text, rng, lo, hi) {
  const lines = text.split(/(?<=\n)/);
  const out = [];
  let cur = "", target = rng.int(lo, hi);
  for (const line of lines) {
    cur += line;
    if (utf8Len(cur) >= target) {
      out.push(cur);
      cur = "";
      target = rng.int(lo, hi);
    }
  }
  if (cur) out.push(cur);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// English prose: Debian's license texts and package documentation.

function english() {
  const rng = rngFor("english");
  const sources = [];
  const licDir = "/usr/share/common-licenses";
  const seen = new Set();
  if (fs.existsSync(licDir)) {
    for (const name of fs.readdirSync(licDir).sort()) {
      const real = fs.realpathSync(path.join(licDir, name));
      if (seen.has(real)) continue;
      seen.add(real);
      const t = readText(real);
      if (t) sources.push(t);
    }
  }
  // Package documentation: READMEs and text files, sorted, at most 12 KB from each and 300 KB in all.
  const docDir = "/usr/share/doc";
  let docBytes = 0;
  if (fs.existsSync(docDir)) {
    for (const pkg of fs.readdirSync(docDir).sort()) {
      if (docBytes > 300_000) break;
      let entries;
      try { entries = fs.readdirSync(path.join(docDir, pkg)).sort(); } catch { continue; }
      for (const f of entries) {
        if (!/^(README|NEWS|AUTHORS|TODO|.*\.(txt|md|rst))/i.test(f) || /\.(html|pdf)/i.test(f)) continue;
        const full = path.join(docDir, pkg, f);
        try { if (!fs.statSync(full).isFile()) continue; } catch { continue; }
        let t = readText(full);
        if (!t) continue;
        if (utf8Len(t) > 12_000) t = t.slice(0, 12_000).replace(/\n[^\n]*$/, "\n");
        sources.push(t);
        docBytes += utf8Len(t);
        break;  // one file per package
      }
    }
  }
  if (sources.length === 0) throw new Error("no English text found under /usr/share/common-licenses or /usr/share/doc");
  const lines = [];
  for (const t of sources) {
    for (const chunk of chunkLines(t, rng, 200, 4000)) add("english", chunk);
    for (const line of t.split("\n")) if (line.trim().length > 0) lines.push(line);
  }
  // Many short ones: single lines and sentences, with and without their newline.
  for (let i = 0; i < 1500 && lines.length; ++i) {
    const line = rng.pick(lines);
    add("english", rng.chance(0.3) ? line + "\n" : rng.chance(0.5) ? line.trim() : line);
  }
  const words = lines.join(" ").split(/\s+/).filter(Boolean);
  for (let i = 0; i < 500 && words.length; ++i) {
    const n = rng.int(1, 6);
    let s = "";
    for (let k = 0; k < n; ++k) s += (k ? " " : "") + rng.pick(words);
    add("english", rng.chance(0.2) ? " " + s : s);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Code: the repository's C++ and the Python standard library.

function listFiles(dir, re) {
  const out = [];
  const walk = (d) => {
    let entries;
    try { entries = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && re.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function code() {
  const rng = rngFor("code");
  const files = listFiles(path.join(repoRoot, "src"), /\.(cc|h)$/);
  const py = fs.existsSync("/usr/lib/python3.11")
    ? fs.readdirSync("/usr/lib/python3.11").filter((f) => f.endsWith(".py")).sort().map((f) => path.join("/usr/lib/python3.11", f))
    : [];
  let budget = 220_000;
  for (const f of files) {
    const t = readText(f);
    if (!t) continue;
    for (const chunk of chunkLines(t, rng, 300, 3000)) {
      if (budget <= 0) break;
      add("code", chunk);
      budget -= utf8Len(chunk);
    }
  }
  // Python: a seeded choice of files, one random stretch of each.
  budget = 260_000;
  for (const f of rng.shuffle(py.slice())) {
    if (budget <= 0) break;
    const t = readText(f);
    if (!t) continue;
    const chunks = chunkLines(t, rng, 300, 3000);
    const start = rng.int(0, Math.max(0, chunks.length - 4));
    for (const chunk of chunks.slice(start, start + 4)) {
      add("code", chunk);
      budget -= utf8Len(chunk);
    }
  }
  // Short snippets.
  const snippets = [
    "x=1", "x = 1;", "if (a<b) { return a; }", "for i in range(10):\n\tprint(i)\n", "a->b", "a::b::c", "#include <vector>",
    "std::vector<int32_t> v{1,2,3};", "def f(x):\n    return x**2\n\n", "i++", "--i", "a != b && c >= d || !e",
    "/* comment */", "// TODO: fix\n", "\"string with \\\"escapes\\\"\\n\"", "'c'", "0x7fffffff", "1e-9f", "x<<=3",
    "lambda x: x['key']", "`backticks`", "$HOME/.config", "@decorator\ndef g(): pass", "{\"a\": [1, 2.5, null]}",
    "<div class=\"x\">&amp;</div>", "SELECT * FROM t WHERE id = 42;", "https://example.com/path?q=1&r=2#frag",
    "user@example.com", "C:\\Windows\\System32", "~/.bashrc", "#!/bin/sh\nset -eu\n", "\tindented\twith\ttabs",
  ];
  for (const s of snippets) add("code", s);
}

// ---------------------------------------------------------------------------------------------------------------
// Numbers: every length 1..40, separators, decimals, signs, mixed with words, other scripts' digits.

function numbers() {
  const rng = rngFor("numbers");
  const digits = (n, leadingZeroOk = false) => {
    let s = "";
    for (let i = 0; i < n; ++i) s += String(i === 0 && !leadingZeroOk ? rng.int(1, 9) : rng.int(0, 9));
    return s;
  };
  const group = (s, sep, size = 3) => {
    let out = "";
    for (let i = 0; i < s.length; ++i) {
      if (i > 0 && (s.length - i) % size === 0) out += sep;
      out += s[i];
    }
    return out;
  };
  const seps = [",", ".", " ", "'", "_", "\u00a0", "\u202f", "\u2009"];
  const words = ["item", "total", "x", "abc", "v", "ID", "page", "rev", "No.", "km", "kg", "USD", "€", "$", "#"];
  const scriptDigits = [0x660, 0x6f0, 0x966, 0x9e6, 0xe50, 0xff10, 0x1040, 0xbe6, 0x1d7ce];
  const inScript = (s, base) => [...s].map((c) => (c >= "0" && c <= "9" ? String.fromCodePoint(base + Number(c)) : c)).join("");
  const line = [];
  for (let n = 1; n <= 40; ++n) {
    for (let rep = 0; rep < 6; ++rep) {
      const d = digits(n, rep === 5);
      const variants = [
        d,
        " " + d,
        group(d, rng.pick(seps)),
        group(d, ",", rng.pick([3, 4, 2])),
        "-" + d,
        "\u2212" + d,
        d + "." + digits(rng.int(1, 12), true),
        "-" + group(d, ",") + "." + digits(rng.int(1, 6), true),
        rng.pick(words) + d,
        d + rng.pick(words),
        rng.pick(words) + " " + d + " " + rng.pick(words),
        "(" + d + ")",
        d + "%",
        "$" + group(d, ","),
        d + "e" + rng.pick(["", "-", "+"]) + rng.int(0, 308),
        "0x" + d,
        inScript(d, rng.pick(scriptDigits)),
        inScript(group(d, ","), rng.pick(scriptDigits)),
      ];
      for (const v of variants) line.push(v);
      add("numbers", rng.pick(variants));
    }
  }
  // Paragraphs of numbers: lists, tables, dates, versions, IPs, phone numbers.
  for (let i = 0; i < 400; ++i) {
    const parts = [];
    const k = rng.int(3, 40);
    for (let j = 0; j < k; ++j) {
      switch (rng.int(0, 11)) {
        case 0: parts.push(rng.pick(line)); break;
        case 1: parts.push(`${rng.int(1900, 2100)}-${String(rng.int(1, 12)).padStart(2, "0")}-${String(rng.int(1, 28)).padStart(2, "0")}`); break;
        case 2: parts.push(`${rng.int(0, 23)}:${String(rng.int(0, 59)).padStart(2, "0")}:${String(rng.int(0, 59)).padStart(2, "0")}`); break;
        case 3: parts.push(`v${rng.int(0, 20)}.${rng.int(0, 99)}.${rng.int(0, 999)}`); break;
        case 4: parts.push(`${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}`); break;
        case 5: parts.push(`+${rng.int(1, 99)} ${digits(3)} ${digits(3, true)} ${digits(4, true)}`); break;
        case 6: parts.push(`${rng.int(1, 31)}${rng.pick(["st", "nd", "rd", "th"])}`); break;
        case 7: parts.push(`${digits(rng.int(1, 4))}x${digits(rng.int(1, 4))}`); break;
        case 8: parts.push(`${rng.pick(["½", "¼", "¾", "²", "³", "¹", "⅓", "Ⅻ", "Ⅳ", "①", "⑳", "⁴", "₂"])}${digits(rng.int(0, 3))}`); break;
        case 9: parts.push(digits(rng.int(41, 200), true)); break;
        case 10: parts.push(`${digits(rng.int(1, 6))}.${digits(rng.int(1, 6), true)}`); break;
        default: parts.push(`${rng.pick(words)}${rng.int(0, 1e6)}${rng.pick(words)}`); break;
      }
    }
    const sep = rng.pick([" ", ", ", "\n", "\t", " | ", ";", ""]);
    add("numbers", parts.join(sep));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Chinese, Japanese, Korean, Arabic, Hindi, Russian and Ukrainian text from ICU's locale data.

const LANGUAGE_CODES = [];
for (let a = 97; a <= 122; ++a) for (let b = 97; b <= 122; ++b) LANGUAGE_CODES.push(String.fromCharCode(a, b));
const REGION_CODES = [];
for (let a = 65; a <= 90; ++a) for (let b = 65; b <= 90; ++b) REGION_CODES.push(String.fromCharCode(a, b));
const SCRIPT_CODES = ["Arab", "Armn", "Beng", "Cyrl", "Deva", "Ethi", "Geor", "Grek", "Gujr", "Guru", "Hang", "Hani",
  "Hans", "Hant", "Hebr", "Hira", "Jpan", "Kana", "Khmr", "Knda", "Kore", "Laoo", "Latn", "Mlym", "Mong", "Mymr",
  "Orya", "Sinh", "Taml", "Telu", "Thaa", "Thai", "Tibt", "Zsym", "Zmth", "Brai", "Copt", "Goth", "Runr", "Syrc"];
const UNITS = ["year", "quarter", "month", "week", "day", "hour", "minute", "second"];
const MEASURES = ["kilometer", "kilogram", "liter", "celsius", "kilometer-per-hour", "megabyte", "percent", "hour",
  "meter", "gigabyte", "mile", "degree"];

const LOCALES = {
  chinese: [{ tag: "zh", num: "hanidec", stop: "。", comma: "，" }, { tag: "zh-Hant", num: "hanidec", stop: "。", comma: "，" }],
  japanese: [{ tag: "ja", num: "fullwide", stop: "。", comma: "、" }],
  korean: [{ tag: "ko", num: "latn", stop: ". ", comma: ", " }],
  arabic: [{ tag: "ar", num: "arab", stop: ". ", comma: "، " }, { tag: "ar-EG", num: "arab", stop: ". ", comma: "، " }],
  hindi: [{ tag: "hi", num: "deva", stop: "। ", comma: ", " }],
  cyrillic: [{ tag: "ru", num: "latn", stop: ". ", comma: ", " }, { tag: "uk", num: "latn", stop: ". ", comma: ", " }],
};

function localeText(category, loc, rng) {
  const { tag, num, stop, comma } = loc;
  const names = (type, codes) => {
    const dn = new Intl.DisplayNames(tag, { type, fallback: "none" });
    const out = [];
    for (const c of codes) {
      let v;
      try { v = dn.of(c); } catch { continue; }
      if (v && v !== c) out.push(v);
    }
    return out;
  };
  const languages = names("language", LANGUAGE_CODES);
  const regions = names("region", REGION_CODES);
  const scripts = names("script", SCRIPT_CODES);
  const currencies = names("currency", Intl.supportedValuesOf("currency"));
  const months = [], weekdays = [];
  for (let m = 0; m < 12; ++m) {
    months.push(new Intl.DateTimeFormat(tag, { month: "long", timeZone: "UTC" }).format(Date.UTC(2001, m, 15)));
    months.push(new Intl.DateTimeFormat(tag, { month: "short", timeZone: "UTC" }).format(Date.UTC(2001, m, 15)));
  }
  for (let d = 0; d < 7; ++d) weekdays.push(new Intl.DateTimeFormat(tag, { weekday: "long", timeZone: "UTC" }).format(Date.UTC(2001, 0, 7 + d)));
  const timeZones = Intl.supportedValuesOf("timeZone");
  const numberingSystems = [num, "latn"];

  const date = () => {
    const ms = Date.UTC(rng.int(1950, 2050), rng.int(0, 11), rng.int(1, 28), rng.int(0, 23), rng.int(0, 59), rng.int(0, 59));
    const opts = rng.pick([
      { dateStyle: "full" }, { dateStyle: "long", timeStyle: "short" }, { dateStyle: "medium" },
      { dateStyle: "full", timeStyle: "long" }, { weekday: "long", month: "long", day: "numeric" },
      { year: "numeric", month: "long" }, { hour: "numeric", minute: "2-digit", dayPeriod: "long" },
    ]);
    return new Intl.DateTimeFormat(tag, { ...opts, timeZone: rng.pick(timeZones), numberingSystem: rng.pick(numberingSystems) }).format(ms);
  };
  const number = () => {
    const x = rng.chance(0.5) ? rng.int(0, 1e9) : rng.float() * 10 ** rng.int(-3, 12) * (rng.chance(0.2) ? -1 : 1);
    const style = rng.pick([
      {}, { style: "percent" }, { notation: "compact", compactDisplay: "long" }, { notation: "scientific" },
      { style: "currency", currency: rng.pick(["USD", "EUR", "CNY", "JPY", "KRW", "INR", "RUB", "UAH", "SAR", "EGP"]), currencyDisplay: rng.pick(["symbol", "name", "code"]) },
      { style: "unit", unit: rng.pick(MEASURES), unitDisplay: rng.pick(["long", "short", "narrow"]) },
      { maximumFractionDigits: 4 },
    ]);
    return new Intl.NumberFormat(tag, { ...style, numberingSystem: rng.pick(numberingSystems) }).format(x);
  };
  const relative = () => new Intl.RelativeTimeFormat(tag, { numeric: rng.pick(["always", "auto"]), style: rng.pick(["long", "short"]) })
    .format(rng.int(-30, 30), rng.pick(UNITS));
  const list = (pool) => {
    const items = [];
    for (let i = rng.int(2, 5); i > 0; --i) items.push(rng.pick(pool));
    return new Intl.ListFormat(tag, { type: rng.pick(["conjunction", "disjunction", "unit"]), style: rng.pick(["long", "short", "narrow"]) }).format(items);
  };
  const pools = [languages, regions, scripts, currencies, months, weekdays];
  const sentence = () => {
    const parts = [];
    for (let i = rng.int(2, 5); i > 0; --i) {
      switch (rng.int(0, 5)) {
        case 0: parts.push(list(rng.pick(pools))); break;
        case 1: parts.push(date()); break;
        case 2: parts.push(number()); break;
        case 3: parts.push(relative()); break;
        default: parts.push(rng.pick(rng.pick(pools))); break;
      }
    }
    return parts.join(comma) + stop;
  };
  // Paragraphs of a few hundred bytes to a few KB.
  let bytes = 0;
  while (bytes < 70_000) {
    let p = "";
    const target = rng.int(150, 2500);
    while (utf8Len(p) < target) p += sentence() + (rng.chance(0.1) ? "\n" : "");
    add(category, p);
    bytes += utf8Len(p);
  }
  // Short ones: single names and phrases.
  for (let i = 0; i < 300; ++i) {
    const pool = rng.pick(pools);
    if (pool.length === 0) continue;
    const r = rng.int(0, 5);
    add(category, r === 0 ? date() : r === 1 ? number() : r === 2 ? relative() : rng.pick(pool));
  }
  // Every name once, as lists (the whole vocabulary of the locale data).
  for (const pool of pools) {
    for (let i = 0; i < pool.length; i += 40) add(category, pool.slice(i, i + 40).join(rng.pick([comma, " ", "\n", stop])));
  }
}

function locales() {
  for (const [category, locs] of Object.entries(LOCALES)) {
    const rng = rngFor(category);
    for (const loc of locs) localeText(category, loc, rng);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Emoji: ZWJ sequences, skin tones, flags, keycaps, VS15/VS16, tag sequences.

function emoji() {
  const rng = rngFor("emoji");
  const cp = String.fromCodePoint;
  const ranges = [[0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1f680, 0x1f6ff], [0x1f900, 0x1f9ff], [0x1fa70, 0x1faff]];
  const basics = [];
  for (const [lo, hi] of ranges) for (let c = lo; c <= hi; ++c) if (allowed(c)) basics.push(cp(c));
  const hands = [0x1f44d, 0x1f44e, 0x1f44b, 0x1f44f, 0x1f64f, 0x1f4aa, 0x270c, 0x261d, 0x1f918, 0x1f919, 0x1f91e, 0x1f590, 0x1f596, 0x1f9d1, 0x1f468, 0x1f469, 0x1f476, 0x1f474, 0x1f3c3, 0x1f6b4];
  const tones = [0x1f3fb, 0x1f3fc, 0x1f3fd, 0x1f3fe, 0x1f3ff];
  const zwj = [
    "👨‍👩‍👧‍👦", "👩‍💻", "🧑‍🚀", "👨‍🍳", "🏳️‍🌈", "🏳️‍⚧️", "🏴‍☠️", "❤️‍🔥", "❤️‍🩹", "👁️‍🗨️", "🐕‍🦺", "🐈‍⬛", "🐻‍❄️",
    "🧑🏽‍🚀", "👩🏿‍🔬", "👨🏻‍🤝‍👨🏾", "🧑‍🤝‍🧑", "👩‍❤️‍💋‍👨", "👨‍👨‍👦", "🤷🏼‍♀️", "🏃🏾‍♂️", "🧔‍♂️", "😶‍🌫️", "😮‍💨", "😵‍💫",
  ];
  const vs16 = ["☺️", "❤️", "✈️", "☀️", "✔️", "⚠️", "♻️", "©️", "®️", "™️", "↩️", "▶️", "⏏️", "☎️", "✉️", "✏️"];
  const vs15 = ["☺︎", "❤︎", "✈︎", "☀︎", "↩︎", "▶︎"];
  const keycaps = [..."0123456789#*"].map((c) => c + "\ufe0f\u20e3").concat(["1\u20e3", "#\u20e3"]);
  const flags = [];
  for (let a = 0; a < 26; ++a) for (let b = 0; b < 26; ++b) {
    const code = String.fromCharCode(65 + a, 65 + b);
    if (REGION_VALID.has(code)) flags.push(cp(0x1f1e6 + a) + cp(0x1f1e6 + b));
  }
  const tagFlags = ["🏴󠁧󠁢󠁥󠁮󠁧󠁿", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏴󠁧󠁢󠁷󠁬󠁳󠁿"];
  const oddities = [cp(0x1f1e6), cp(0x1f1fa) + cp(0x1f1f8) + cp(0x1f1e6), cp(0x200d), "\u200d👍", "👍\u200d", cp(0x1f3fb),
    "a" + cp(0x1f3fd), "\ufe0f", "x\ufe0f", cp(0xe0067) + cp(0xe007f)];
  const one = () => {
    switch (rng.int(0, 9)) {
      case 0: return cp(rng.pick(hands)) + cp(rng.pick(tones));
      case 1: return rng.pick(zwj);
      case 2: return rng.pick(vs16);
      case 3: return rng.pick(vs15);
      case 4: return rng.pick(keycaps);
      case 5: return rng.pick(flags);
      case 6: return rng.pick(tagFlags);
      case 7: return rng.pick(oddities);
      default: return rng.pick(basics);
    }
  };
  const words = ["I", "love", "pizza", "ok", "done", "great job", "see you", "LOL", "好的", "ありがとう", "спасибо", "شكرا", "धन्यवाद", "1", "42"];
  for (let i = 0; i < 2500; ++i) {
    let s = "";
    const n = rng.int(1, 25);
    for (let k = 0; k < n; ++k) {
      const r = rng.float();
      if (r < 0.55) s += one();
      else if (r < 0.75) s += " ";
      else if (r < 0.9) s += rng.pick(words);
      else s += rng.pick([".", "!", "?", "\n", ",", "!!", "..."]);
    }
    add("emoji", s);
  }
  // All flags and all basic emoji once, in long lines.
  for (let i = 0; i < flags.length; i += 30) add("emoji", flags.slice(i, i + 30).join(rng.pick(["", " "])));
  for (let i = 0; i < basics.length; i += 60) add("emoji", basics.slice(i, i + 60).join(rng.pick(["", " ", "\n"])));
}

const REGION_VALID = new Set(REGION_CODES.filter((c) => {
  const v = new Intl.DisplayNames("en", { type: "region", fallback: "none" }).of(c);
  return v && v !== c;
}));

// ---------------------------------------------------------------------------------------------------------------
// Whitespace: runs, tabs, CR, CRLF, mixed line endings, leading/trailing spaces, exotic spaces.

function whitespace() {
  const rng = rngFor("whitespace");
  const spaces = [" ", "  ", "   ", "\t", "\t\t", "\n", "\r", "\r\n", "\n\n", "\r\n\r\n", "\r\r\n", "\n\r", "\v", "\f",
    "\u00a0", "\u3000", "\u2000", "\u2002", "\u2003", "\u2009", "\u200a", "\u202f", "\u205f", "\u1680", "\u2028",
    "\u2029", "\u0085", "\ufeff", "\u180e", "\u200b", "\u200c", "\u200d", "\u2060", " \u00a0 ", "\t \t", " \n ", "\u3000\u3000"];
  const words = ["word", "Hello", "x", "foo()", "a.b", "12", "123456", "中文", "テスト", "한국어", "слово", "كلمة", "शब्द", "é", "!", "?!", "--", "👍", "'s", "'LL", "don't"];
  for (let i = 0; i < 2500; ++i) {
    let s = "";
    const n = rng.int(1, 20);
    for (let k = 0; k < n; ++k) {
      const r = rng.float();
      if (r < 0.5) {
        let run = rng.pick(spaces);
        if (rng.chance(0.2)) run = run.repeat(rng.int(2, 30));
        s += run;
      } else s += rng.pick(words);
    }
    add("whitespace", s);
  }
  // Pure runs, lines with leading/trailing blanks, whole documents with mixed endings.
  for (const sp of spaces) for (const n of [1, 2, 3, 4, 7, 16, 64]) add("whitespace", sp.repeat(n));
  for (let i = 0; i < 200; ++i) {
    const eol = () => rng.pick(["\n", "\r\n", "\r", "\n\n", " \n", "\t\r\n"]);
    let s = "";
    for (let k = rng.int(2, 30); k > 0; --k) {
      s += " ".repeat(rng.int(0, 8)) + "\t".repeat(rng.int(0, 2)) + rng.pick(words) + " " + rng.pick(words) + " ".repeat(rng.int(0, 4)) + eol();
    }
    add("whitespace", s);
  }
  add("whitespace", " ".repeat(3000));
  add("whitespace", "\n".repeat(1000));
  add("whitespace", "\r\n".repeat(500));
  add("whitespace", "\t".repeat(700) + "x");
}

// ---------------------------------------------------------------------------------------------------------------
// Combining marks: Latin stacks, Devanagari, Thai, Arabic, Hebrew; decomposed forms (NFC matters for Qwen3).

function combining() {
  const rng = rngFor("combining");
  const cp = String.fromCodePoint;
  const mark = () => cp(rng.int(0x300, 0x36f));
  const latin = "aeiouAEIOUcnszyCNSZgqx";
  for (let i = 0; i < 2000; ++i) {
    let s = "";
    const n = rng.int(1, 12);
    for (let k = 0; k < n; ++k) {
      const r = rng.float();
      if (r < 0.45) {
        s += latin[rng.int(0, latin.length - 1)];
        for (let m = rng.int(1, rng.chance(0.1) ? 12 : 3); m > 0; --m) s += mark();
      } else if (r < 0.55) s += " " + (rng.chance(0.5) ? mark() : "");
      else if (r < 0.62) s += rng.pick(["1", "9", ".", "-", "\n", "中", "🙂", "'"]) + mark();
      else if (r < 0.7) s += rng.pick(["नमस्ते", "क़", "क्ष", "हिन्दी", "स्त्री", "ड़", "कि", "कु", "ॐ"]) + (rng.chance(0.3) ? cp(rng.pick([0x93c, 0x94d, 0x901, 0x902, 0x903, 0x93f, 0x941])) : "");
      else if (r < 0.78) s += rng.pick(["ภาษาไทย", "กิ่", "น้ำ", "ที่", "เป็น", "สวัสดี"]) + (rng.chance(0.3) ? cp(rng.int(0xe47, 0xe4e)) : "");
      else if (r < 0.86) s += rng.pick(["كتب", "العربية", "مرحبا", "بِسْمِ", "ٱللَّهِ"]) + (rng.chance(0.5) ? cp(rng.int(0x64b, 0x652)) : "");
      else if (r < 0.9) s += rng.pick(["שָׁלוֹם", "בְּרֵאשִׁית", "עִבְרִית"]);
      else s += rng.pick(["e\u0301", "é", "A\u030a", "\u212b", "\u2126", "\u1100\u1161\u11a8", "각", "q\u0323\u0307", "q\u0307\u0323",
        "\u1e0b\u0323", "d\u0307\u0323", "\u0344", "\u0958", "\u2000", "\ufb2c", "\u0f73", "ﬁ", "\u00c5\u0301", "o\u0308\u0304", "\u01d5"]);
    }
    add("combining", s);
  }
  // Marks after every kind of base, and marks alone.
  const bases = ["", " ", "\t", "\n", "a", "1", ".", "中", "あ", "한", "я", "ب", "क", "ก", "🙂", "\u00a0", "_", "'"];
  for (let m = 0x300; m <= 0x36f; ++m) for (const b of bases) if (rng.chance(0.4)) add("combining", b + cp(m) + (rng.chance(0.5) ? cp(rng.int(0x300, 0x36f)) : ""));
}

// ---------------------------------------------------------------------------------------------------------------
// Added-token strings of the DeepSeek, Llama 3 and Qwen 3 tokenizers in running text, and near misses.

function specialTokens() {
  const rng = rngFor("special");
  const tokens = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<｜User｜>", "<｜Assistant｜>", "<|EOT|>",
    "<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>", "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>",
    "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>", "<｜tool▁outputs▁begin｜>", "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>",
    "<｜tool▁outputs▁end｜>", "<｜place▁holder▁no▁0｜>", "<｜place▁holder▁no▁17｜>", "<｜place▁holder▁no▁799｜>",
    "<think>", "</think>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_0|>", "<|reserved_special_token_250|>", "<|python_tag|>", "<|im_start|>", "<|im_end|>",
    "<|endoftext|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|vision_start|>", "<|image_pad|>", "<tool_response>"];
  const nearMisses = ["<｜User|>", "<|User｜>", "<｜begin▁of▁sentence｜", "｜begin▁of▁sentence｜>", "<｜begin of sentence｜>",
    "<|im_start>", "<im_start|>", "<|im_start|", "< think>", "<think >", "<THINK>", "<|eot_id|", "<<|eot_id|>>",
    "<｜place▁holder▁no▁800｜>", "<｜place▁holder▁no▁-1｜>", "<|reserved_special_token_256|>", "<｜▁pad▁｜｜>"];
  const text = ["You are a helpful assistant.", "What is 2+2?", "\n\n", "2+2 = 4.", " ", "Hello", "你好", "\n", "def f():", "👍"];
  for (let i = 0; i < 1500; ++i) {
    let s = "";
    for (let k = rng.int(1, 12); k > 0; --k) {
      const r = rng.float();
      s += r < 0.4 ? rng.pick(tokens) : r < 0.55 ? rng.pick(nearMisses) : rng.pick(text);
      if (rng.chance(0.15)) s += " ";
    }
    add("special_tokens", s);
  }
  for (const t of tokens.concat(nearMisses)) {
    add("special_tokens", t);
    add("special_tokens", " " + t + " ");
    add("special_tokens", t + t);
    add("special_tokens", "x" + t + "y");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Random strings from mixed Unicode blocks.

const FUZZ_BLOCKS = [
  // [name, weight, ranges]
  ["basic_latin_printable", 8, [[0x20, 0x7e]]],
  ["basic_latin_controls", 1, [[0x00, 0x1f], [0x7f, 0x7f]]],
  ["latin1", 3, [[0x80, 0xff]]],
  ["latin_extended", 3, [[0x100, 0x24f], [0x1e00, 0x1eff], [0x2c60, 0x2c7f], [0xa720, 0xa7ff]]],
  ["ipa_modifiers", 1, [[0x250, 0x2ff]]],
  ["combining", 3, [[0x300, 0x36f], [0x1ab0, 0x1aff], [0x1dc0, 0x1dff], [0x20d0, 0x20ff], [0xfe20, 0xfe2f]]],
  ["greek", 2, [[0x370, 0x3ff], [0x1f00, 0x1fff]]],
  ["cyrillic", 3, [[0x400, 0x52f]]],
  ["armenian_georgian", 1, [[0x530, 0x58f], [0x10a0, 0x10ff]]],
  ["hebrew", 2, [[0x590, 0x5ff]]],
  ["arabic", 3, [[0x600, 0x6ff], [0x750, 0x77f], [0xfb50, 0xfdff], [0xfe70, 0xfeff]]],
  ["devanagari", 3, [[0x900, 0x97f], [0x980, 0x9ff]]],
  ["indic_other", 1, [[0xb80, 0xbff], [0xc00, 0xc7f], [0xd00, 0xd7f]]],
  ["thai_lao", 2, [[0xe00, 0xe7f], [0xe80, 0xeff]]],
  ["hangul", 3, [[0xac00, 0xd7a3], [0x1100, 0x11ff], [0x3130, 0x318f]]],
  ["kana", 3, [[0x3040, 0x309f], [0x30a0, 0x30ff], [0xff65, 0xff9f], [0x31f0, 0x31ff]]],
  ["cjk", 4, [[0x4e00, 0x9fff], [0x3400, 0x4dbf], [0xf900, 0xfaff], [0x20000, 0x2a6df], [0x3000, 0x303f], [0x9f90, 0x9fff]]],
  ["general_punctuation", 3, [[0x2000, 0x206f], [0x2e00, 0x2e7f]]],
  ["symbols", 3, [[0x20a0, 0x20cf], [0x2100, 0x214f], [0x2150, 0x218f], [0x2190, 0x21ff], [0x2200, 0x22ff], [0x2300, 0x23ff],
    [0x2500, 0x257f], [0x25a0, 0x25ff], [0x2600, 0x26ff], [0x2700, 0x27bf], [0xff00, 0xffef], [0xfff9, 0xfffd], [0x1d400, 0x1d7ff]]],
  ["emoji", 3, [[0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1f680, 0x1f6ff], [0x1f900, 0x1f9ff], [0x1fa70, 0x1faff],
    [0x1f1e6, 0x1f1ff], [0x1f3fb, 0x1f3ff], [0x200d, 0x200d], [0xfe00, 0xfe0f], [0x20e3, 0x20e3], [0xe0020, 0xe007f]]],
  ["spaces", 3, [[0x09, 0x0d], [0x20, 0x20], [0x85, 0x85], [0xa0, 0xa0], [0x1680, 0x1680], [0x180e, 0x180e], [0x2000, 0x200b],
    [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x2060], [0x3000, 0x3000], [0xfeff, 0xfeff]]],
  ["digits", 3, [[0x30, 0x39], [0x660, 0x669], [0x6f0, 0x6f9], [0x966, 0x96f], [0x9e6, 0x9ef], [0xe50, 0xe59], [0xff10, 0xff19],
    [0x1040, 0x1049], [0x1d7ce, 0x1d7ff], [0xb2, 0xb3], [0xb9, 0xb9], [0xbc, 0xbe], [0x2070, 0x2089], [0x2150, 0x2188], [0x2460, 0x249b]]],
  ["other_scripts", 1, [[0x1200, 0x137f], [0x13a0, 0x13ff], [0x1780, 0x17ff], [0x0f00, 0x0fff], [0x1000, 0x109f], [0x10400, 0x1044f]]],
];

function fuzz() {
  const rng = rngFor("fuzz");
  // Code point lists per block (allowed ones only), so that every draw succeeds.
  const blocks = FUZZ_BLOCKS.map(([name, weight, ranges]) => {
    const cps = [];
    for (const [lo, hi] of ranges) for (let c = lo; c <= hi; ++c) if (allowed(c)) cps.push(c);
    return { name, weight, cps };
  });
  const totalWeight = blocks.reduce((s, b) => s + b.weight, 0);
  const pickBlock = () => {
    let r = rng.float() * totalWeight;
    for (const b of blocks) if ((r -= b.weight) < 0) return b;
    return blocks[blocks.length - 1];
  };
  for (let i = 0; i < 12000; ++i) {
    const len = rng.int(1, 40);
    const palette = [];
    const mixed = rng.chance(0.15);  // every code point from any block
    for (let k = rng.int(1, 4); k > 0; --k) palette.push(pickBlock());
    let s = "";
    for (let k = 0; k < len; ++k) {
      const b = mixed ? pickBlock() : rng.pick(palette);
      s += String.fromCodePoint(rng.pick(b.cps));
    }
    add("fuzz", s);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Long: single pre-tokenizer pieces of tens of KB (BPE on long words, regex backtracking on long runs).

function long() {
  const rng = rngFor("long");
  const rep = (s, bytes) => s.repeat(Math.ceil(bytes / utf8Len(s)));
  for (const unit of [" ", "a", "1", "\n", "\r\n", "\t", " \t", "中", "あ", "!", "é", "a\u0301", "😀", "\u00a0", "ab", "-=", "한"])
    add("long", rep(unit, rng.int(8_000, 40_000)));
  // A long word of random letters, and a long number with separators.
  let w = "";
  while (utf8Len(w) < 30_000) w += String.fromCharCode(97 + rng.int(0, 25));
  add("long", w);
  let num = "";
  while (utf8Len(num) < 20_000) num += String(rng.int(0, 999)).padStart(3, "0") + (rng.chance(0.1) ? "," : "");
  add("long", num);
}

// ---------------------------------------------------------------------------------------------------------------
// Mixed: pieces of the other categories glued together.

function mixed() {
  const rng = rngFor("mixed");
  const pool = cases.filter((c) => c.category !== "fuzz" && c.category !== "long" && utf8Len(c.text) < 400);
  for (let i = 0; i < 800; ++i) {
    let s = "";
    for (let k = rng.int(2, 5); k > 0; --k) {
      const t = rng.pick(pool).text;
      const cps = [...t];
      const a = rng.int(0, cps.length - 1), b = rng.int(a + 1, cps.length);
      s += cps.slice(a, b).join("");
    }
    add("mixed", s);
  }
}

// ---------------------------------------------------------------------------------------------------------------

english();
code();
numbers();
locales();
emoji();
whitespace();
combining();
specialTokens();
fuzz();
long();
mixed();

const required = ["english", "code", "numbers", "chinese", "japanese", "korean", "arabic", "hindi", "cyrillic", "emoji",
  "whitespace", "combining", "special_tokens", "fuzz", "long", "mixed"];
const stats = {};
let total = 0;
for (const c of cases) {
  const s = (stats[c.category] ||= { cases: 0, bytes: 0 });
  s.cases += 1;
  s.bytes += utf8Len(c.text);
  total += utf8Len(c.text);
}
for (const r of required) if (!stats[r]) throw new Error(`category ${r} is empty`);
if (stats.fuzz.cases < 10000) throw new Error("fewer than 10,000 fuzz cases");

fs.mkdirSync(path.dirname(path.resolve(outPath)), { recursive: true });
fs.writeFileSync(outPath, "[\n" + cases.map((c) => JSON.stringify(c)).join(",\n") + "\n]\n");

console.log(`${outPath}: ${cases.length} cases, ${total} bytes of UTF-8 text (seed ${seed}, Node ${process.version}, ICU Unicode ${process.versions.unicode})`);
for (const [k, v] of Object.entries(stats)) console.log(`  ${k.padEnd(15)} ${String(v.cases).padStart(6)} cases ${String(v.bytes).padStart(9)} bytes`);
const drops = Object.entries(dropped);
if (drops.length) console.log(`  dropped (code points outside Unicode 14.0 / not well-formed): ${drops.map(([k, v]) => `${k} ${v}`).join(", ")}`);
if (total < 1.2e6) throw new Error(`corpus is only ${total} bytes (want at least 1.2 MB)`);
