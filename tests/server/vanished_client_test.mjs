// A streaming client that closes its connection while its long prompt is still being read is noticed before the first
// token (the handler looks at the socket every 100 ms, not only when it writes): its sequence is cancelled in the
// middle of the prompt, produces no completion tokens, and frees its slot. Needs a model whose prompt reading takes
// several seconds (the ~1 GB test checkpoint).
// Usage: node vanished_client_test.mjs --whale BIN --model DIR
import assert from 'node:assert/strict';
import net from 'node:net';
import { metric, option, startServer } from './whale_server.mjs';


async function metrics(base) {
  return { cancelled: await metric(base, 'whale_sequences_cancelled_total'),
           active: await metric(base, 'whale_active_sequences'),
           completion: await metric(base, 'whale_completion_tokens_total'),
           prompt: await metric(base, 'whale_prompt_tokens_total') };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const s = await startServer(option('--whale'), option('--model'), 'm',
                            ['--parallel', '1', '--ctx', '4096', '--prefill-chunk', '64']);
let code = 1;
try {
  // About 3000 tokens of prompt: several seconds of prompt reading at this model's speed.
  const prompt = Array.from({ length: 300 }, (_, i) => `word${i % 97} and more`).join(' ');
  // A raw connection, so that leaving is closing the socket.
  const body = JSON.stringify({ model: 'm', prompt, max_tokens: 50, temperature: 0, stream: true });
  const { port } = new URL(s.base);
  const t0 = Date.now();
  const sock = net.connect(Number(port), '127.0.0.1');
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  let head = '';
  sock.on('data', (d) => { head += d.toString(); });
  sock.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
             `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await sleep(500);
  sock.destroy();
  assert.ok(!head.includes('data: {'), `a token came before the client left: ${head}`);
  let m = await metrics(s.base);
  for (let i = 0; i < 300 && m.cancelled < 1; ++i) {
    await sleep(100);
    m = await metrics(s.base);
  }
  const noticed = (Date.now() - t0) / 1000;
  assert.equal(m.cancelled, 1, `the sequence was not cancelled within ${noticed} s`);
  for (let i = 0; i < 50 && m.active > 0; ++i) {
    await sleep(100);
    m = await metrics(s.base);
  }
  assert.equal(m.active, 0, 'its slot was not freed');
  assert.equal(m.completion, 0, `it produced ${m.completion} tokens before being noticed (noticed after ${noticed} s)`);
  console.log(`ok   noticed ${noticed.toFixed(1)} s after the request, in the middle of its ${m.prompt}-token prompt`);
  // The server still serves.
  const r = await fetch(s.base + '/v1/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt: 'hello', max_tokens: 3, temperature: 0 }),
  });
  assert.equal(r.status, 200);
  console.log('ok   the server still answers');

  // --timeout: a request still reading its prompt when the time is up ends there, answered (not dropped) with
  // finish_reason "length", as if cut off by max_tokens; streamed, the stream ends with it and [DONE].
  const t = await startServer(option('--whale'), option('--model'), 'm',
                              ['--parallel', '1', '--ctx', '4096', '--prefill-chunk', '64', '--timeout', '1']);
  try {
    const post = (extra) => fetch(t.base + '/v1/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt, max_tokens: 50, temperature: 0, ...extra }),
    });
    const t1 = Date.now();
    const plain = await post({});
    const took = (Date.now() - t1) / 1000;
    assert.equal(plain.status, 200);
    const pj = await plain.json();
    assert.equal(pj.choices[0].finish_reason, 'length', JSON.stringify(pj));
    assert.ok(pj.usage.completion_tokens < 50, `${pj.usage.completion_tokens} tokens: not cut off`);
    const streamed = await (await post({ stream: true })).text();
    const chunks = streamed.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)));
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length', streamed.slice(-300));
    assert.ok(streamed.trimEnd().endsWith('data: [DONE]'), streamed.slice(-200));
    assert.equal(await metric(t.base, 'whale_sequences_cancelled_total'), 2);
    console.log(`ok   --timeout 1 cut a ${m.prompt}-token prompt off after ${took.toFixed(1)} s with finish_reason length`);
  } finally {
    t.proc.kill('SIGTERM');
  }
  code = 0;
} catch (e) {
  console.log(`FAIL ${e.stack || e}`);
} finally {
  s.proc.kill('SIGTERM');
}
process.exit(code);
