// whale serve end to end: the official `openai` npm client and curl against a running server.
// Usage: node serve_test.mjs --whale BIN --model DIR
import { execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { metric, option, startServer } from './whale_server.mjs';

const execFileP = promisify(execFile);
const WHALE = option('--whale');
const MODEL = option('--model');
const NAME = 'test-model';

const servers = [];
// Starts whale serve on a free port (stopped at the end); resolves once it listens.
const start = (extra = [], model = MODEL) => startServer(WHALE, model, NAME, extra, servers);

async function post(base, path, body, headers = {}) {
  const res = await fetch(base + path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

function assertError(r, status, what) {
  assert.equal(r.status, status, `${what}: status ${r.status}, body ${r.text}`);
  assert.ok(r.json && r.json.error && typeof r.json.error.message === 'string', `${what}: not an error object: ${r.text}`);
}

const greedy = { temperature: 0, max_tokens: 12 };
let failures = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

async function collectChatStream(client, body) {
  const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta && c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish, usage };
}

const main = async () => {
  const s = await start(['--parallel', '16', '--ctx', '256', '--max-body', '65536']);
  const client = new OpenAI({ baseURL: s.base + '/v1', apiKey: 'unused', maxRetries: 0 });
  const chat = (content, extra = {}) => ({ model: NAME, messages: [{ role: 'user', content }], ...greedy, ...extra });

  await check('models and health', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [NAME]);
    const health = await (await fetch(s.base + '/health')).json();
    assert.equal(health.status, 'ok');
  });

  await check('chat: non-streaming and streaming agree', async () => {
    const r = await client.chat.completions.create(chat('Tell me a story.'));
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 1);
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    const st = await collectChatStream(client, chat('Tell me a story.'));
    assert.equal(st.text, r.choices[0].message.content);
    assert.equal(st.finish, r.choices[0].finish_reason);
    assert.equal(st.usage.completion_tokens, r.usage.completion_tokens);
  });

  await check('completions: non-streaming and streaming agree; n; logprobs', async () => {
    const r = await client.completions.create({ model: NAME, prompt: 'Once upon a time', ...greedy });
    assert.equal(r.object, 'text_completion');
    let text = '';
    const stream = await client.completions.create({ model: NAME, prompt: 'Once upon a time', ...greedy, stream: true });
    for await (const chunk of stream) for (const c of chunk.choices) text += c.text;
    assert.equal(text, r.choices[0].text);
    const n = await client.completions.create({ model: NAME, prompt: 'Once', max_tokens: 5, temperature: 1, seed: 7, n: 3, logprobs: 2 });
    assert.equal(n.choices.length, 3);
    for (const c of n.choices) {
      assert.ok(c.logprobs.tokens.length > 0);
      assert.equal(c.logprobs.tokens.length, c.logprobs.token_logprobs.length);
      assert.ok(c.logprobs.token_logprobs.every((x) => x <= 0));
    }
    const lp = await client.chat.completions.create(chat('hi', { logprobs: true, top_logprobs: 3, max_tokens: 4 }));
    const content = lp.choices[0].logprobs.content;
    assert.ok(content.length > 0 && content.every((t) => t.top_logprobs.length === 3));
  });

  await check('stop strings and max_tokens', async () => {
    const full = await client.completions.create({ model: NAME, prompt: 'abc', ...greedy, max_tokens: 20 });
    const text = full.choices[0].text;
    if (text.length >= 4) {
      const stop = text.slice(2, 4);
      const r = await client.completions.create({ model: NAME, prompt: 'abc', ...greedy, max_tokens: 20, stop: [stop] });
      assert.equal(r.choices[0].text, text.slice(0, text.indexOf(stop)));
      assert.equal(r.choices[0].finish_reason, 'stop');
    }
    const one = await client.completions.create({ model: NAME, prompt: 'abc', temperature: 0, max_tokens: 1 });
    assert.ok(one.usage.completion_tokens <= 1);
  });

  await check('16 concurrent streams equal the same requests run alone', async () => {
    const prompts = Array.from({ length: 16 }, (_, i) => `Request number ${i}: write something.`);
    const alone = [];
    for (const p of prompts) alone.push((await client.chat.completions.create(chat(p))).choices[0].message.content);
    const together = await Promise.all(prompts.map((p) => collectChatStream(client, chat(p))));
    together.forEach((t, i) => assert.equal(t.text, alone[i], `stream ${i}`));
  });

  await check('a repeated system prompt hits the prefix cache (usage and /metrics)', async () => {
    const system = 'You are a helpful assistant. '.repeat(4);
    const ask = (q) => client.chat.completions.create({
      model: NAME, messages: [{ role: 'system', content: system }, { role: 'user', content: q }], ...greedy, max_tokens: 3 });
    const before = await metric(s.base, 'whale_prefix_cache_hit_tokens_total');
    await ask('first question');
    const second = await ask('second question');
    assert.ok(second.usage.prompt_tokens_details.cached_tokens > 20,
              `cached_tokens ${second.usage.prompt_tokens_details.cached_tokens}`);
    const after = await metric(s.base, 'whale_prefix_cache_hit_tokens_total');
    assert.ok(after - before >= second.usage.prompt_tokens_details.cached_tokens);
  });

  await check('requests in other slots reuse the pages of a system prompt computed once', async () => {
    const system = 'You are a careful assistant who answers in one short sentence. '.repeat(2);  // > 64 tokens
    const ask = (q) => client.chat.completions.create({
      model: NAME, messages: [{ role: 'system', content: system }, { role: 'user', content: q }], ...greedy, max_tokens: 2 });
    const first = await ask('question zero');
    assert.ok(first.usage.prompt_tokens > 64, `prompt_tokens ${first.usage.prompt_tokens}`);
    assert.ok(await metric(s.base, 'whale_prefix_cache_tokens') >= 64);
    // Together: at most one of them can run in the slot that computed the system prompt.
    const rest = await Promise.all([1, 2, 3, 4].map((i) => ask(`question ${i}`)));
    for (const r of rest)
      assert.ok(r.usage.prompt_tokens_details.cached_tokens >= 64, `cached_tokens ${r.usage.prompt_tokens_details.cached_tokens}`);
  });

  await check('bad requests get OpenAI error objects', async () => {
    assertError(await post(s.base, '/v1/chat/completions', '{"model": '), 400, 'malformed JSON');
    assertError(await post(s.base, '/v1/chat/completions', '[1, 2]'), 400, 'not an object');
    assertError(await post(s.base, '/v1/completions', `{"model": "${NAME}", "prompt": "x", "max_tokens": 6e999}`), 400,
                'a number beyond double');
    assertError(await post(s.base, '/v1/chat/completions', { ...chat('x'), temperature: 'hot' }), 400, 'wrong type');
    assertError(await post(s.base, '/v1/chat/completions', { ...chat('x'), messages: 'hello' }), 400, 'messages type');
    assertError(await post(s.base, '/v1/chat/completions', { ...chat('x'), max_tokens: 1.5 }), 400, 'fractional');
    assertError(await post(s.base, '/v1/chat/completions', { ...chat('x'), tools: [] }), 400, 'unknown field');
    assertError(await post(s.base, '/v1/chat/completions', { ...chat('x'), temperature: 7 }), 422, 'out of range');
    assertError(await post(s.base, '/v1/chat/completions', { ...chat('x'), n: 0 }), 422, 'n = 0');
    assertError(await post(s.base, '/v1/chat/completions', { ...chat('x'), model: 'other' }), 404, 'unknown model');
    assertError(await post(s.base, '/v1/nothing', {}), 404, 'unknown path');
    const long = await post(s.base, '/v1/completions', { model: NAME, prompt: 'word '.repeat(2000) });
    assertError(long, 400, 'over-long prompt');
    assert.equal(long.json.error.code, 'context_length_exceeded');
    assertError(await post(s.base, '/v1/completions', { model: NAME, prompt: 'x'.repeat(70000) }), 413, 'body too large');
  });

  await check('a client that disconnects mid-stream frees its slot', async () => {
    const ac = new AbortController();
    const res = await fetch(s.base + '/v1/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: ac.signal,
      body: JSON.stringify({ model: NAME, prompt: 'Go on', max_tokens: 200, temperature: 1, seed: 3, stream: true }),
    });
    const reader = res.body.getReader();
    await reader.read();
    ac.abort();
    let active = -1;
    for (let i = 0; i < 100; i++) {
      active = (await (await fetch(s.base + '/health')).json()).active;
      if (active === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(active, 0, 'the slot was not freed');
    const r = await client.completions.create({ model: NAME, prompt: 'still there?', ...greedy });
    assert.ok(r.choices.length === 1);
  });

  await check('curl: chat completion and stream', async () => {
    const body = JSON.stringify(chat('curl says hi'));
    const { stdout } = await execFileP('curl', ['-sS', '-H', 'Content-Type: application/json', '-d', body,
                                                s.base + '/v1/chat/completions']);
    assert.equal(JSON.parse(stdout).object, 'chat.completion');
    const streamed = await execFileP('curl', ['-sSN', '-H', 'Content-Type: application/json', '-d',
                                              JSON.stringify({ ...chat('curl says hi'), stream: true }),
                                              s.base + '/v1/chat/completions']);
    assert.ok(streamed.stdout.trimEnd().endsWith('data: [DONE]'), streamed.stdout.slice(-200));
    const metrics = await execFileP('curl', ['-sS', s.base + '/metrics']);
    assert.match(metrics.stdout, /^whale_completion_tokens_total \d+/m);
  });

  await check('the server still answers after all of that', async () => {
    const r = await client.chat.completions.create(chat('last one'));
    assert.equal(r.choices.length, 1);
  });

  // The same weights under DeepSeek-R1's chat template, whose generation prompt opens `<think>`: what the model writes
  // until `</think>` is reasoning. A random model never closes it, so all of its output is reasoning_content.
  const r1dir = fs.mkdtempSync(path.join(os.tmpdir(), 'whale_serve_r1_'));
  for (const f of fs.readdirSync(MODEL)) fs.symlinkSync(path.resolve(MODEL, f), path.join(r1dir, f));
  fs.rmSync(path.join(r1dir, 'tokenizer_config.json'));
  const tokCfg = JSON.parse(fs.readFileSync(path.join(MODEL, 'tokenizer_config.json'), 'utf8'));
  tokCfg.chat_template = fs.readFileSync(new URL('../tokenizer/templates/deepseek_r1.jinja', import.meta.url), 'utf8');
  fs.writeFileSync(path.join(r1dir, 'tokenizer_config.json'), JSON.stringify(tokCfg));
  const r1 = await start(['--parallel', '2', '--ctx', '256'], r1dir);
  await check('R1 template: the output is reasoning_content, streamed as delta.reasoning_content', async () => {
    const c = new OpenAI({ baseURL: r1.base + '/v1', apiKey: 'unused', maxRetries: 0 });
    const body = { model: NAME, messages: [{ role: 'user', content: 'What is 2+2?' }], temperature: 0, max_tokens: 10 };
    const r = await c.chat.completions.create(body);
    const m = r.choices[0].message;
    assert.equal(typeof m.reasoning_content, 'string');
    assert.ok(m.reasoning_content.length > 0 && r.usage.completion_tokens > 0, 'nothing generated');
    assert.ok(!m.reasoning_content.includes('</think>'));
    assert.ok(!m.content, `content ${JSON.stringify(m.content)} before any </think>`);
    assert.equal(r.usage.completion_tokens_details.reasoning_tokens, r.usage.completion_tokens);
    // The raw completion of the template's rendering is the same text: the split only moves it.
    const raw = await c.completions.create({ model: NAME, prompt: '<｜User｜>What is 2+2?<｜Assistant｜><think>\n',
                                             temperature: 0, max_tokens: 10 });
    assert.equal(m.reasoning_content, raw.choices[0].text);
    const stream = await c.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let reasoning = '', content = '', usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) {
        if (ch.delta.reasoning_content) reasoning += ch.delta.reasoning_content;
        if (ch.delta.content) content += ch.delta.content;
      }
    }
    assert.equal(reasoning, m.reasoning_content);
    assert.equal(content, '');
    assert.equal(usage.completion_tokens_details.reasoning_tokens, usage.completion_tokens);
  });
  fs.rmSync(r1dir, { recursive: true, force: true });

  const k = await start(['--api-key', 'secret-key', '--parallel', '2', '--ctx', '128']);
  await check('API key: missing or wrong gets 401, right one works', async () => {
    assertError(await post(k.base, '/v1/completions', { model: NAME, prompt: 'x' }), 401, 'no key');
    assertError(await post(k.base, '/v1/completions', { model: NAME, prompt: 'x' }, { Authorization: 'Bearer nope' }),
                401, 'wrong key');
    const good = new OpenAI({ baseURL: k.base + '/v1', apiKey: 'secret-key', maxRetries: 0 });
    const r = await good.completions.create({ model: NAME, prompt: 'x', ...greedy });
    assert.equal(r.choices.length, 1);
    assert.equal((await fetch(k.base + '/health')).status, 200);
  });

  // No room to wait (--max-queue 0): every request is turned away with 429, as a full queue would turn it away, and
  // counted; the official client reports it as a rate limit.
  const q = await start(['--max-queue', '0', '--parallel', '1', '--ctx', '128']);
  await check('a full queue answers 429 (queue_full), counted in /metrics', async () => {
    const r = await post(q.base, '/v1/completions', { model: NAME, prompt: 'x', ...greedy });
    assertError(r, 429, 'queue full');
    assert.equal(r.json.error.code, 'queue_full');
    const c = new OpenAI({ baseURL: q.base + '/v1', apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(c.chat.completions.create(chat('x')), (e) => e.status === 429);
    assert.equal(await metric(q.base, 'whale_rejected_queue_full_total'), 2);
    assert.equal((await fetch(q.base + '/health')).status, 200);
  });
};

main()
  .catch((e) => { failures++; console.log(`FAIL setup: ${e.stack || e}`); })
  .finally(() => {
    for (const p of servers) p.kill('SIGTERM');
    console.log(failures ? `${failures} failed` : 'all passed');
    process.exit(failures ? 1 : 0);
  });
