#!/usr/bin/env python3
"""Aggregate output tokens/s of whale serve and llama.cpp's llama-server at 1, 4 and 16 concurrent streams.

Each round starts one server, warms it up at every concurrency (C short requests at once, for each C: the first use
of 16 slots otherwise falls inside the first 16-stream measurement), then for every concurrency C sends C requests at once
(/v1/completions, greedy, distinct prompts of about 40 tokens, max_tokens --tokens, stream) and measures the wall time
from the first request sent to the last stream ended: aggregate tok/s = completion tokens of all C / that time. Then
it stops the server and starts the next engine, so that both see the same machine state; medians over --rounds.
With --pairs N, whale's pass is followed by N more pairs of a 1-stream and a 16-stream measurement back to back
(alternating which goes first); the median of those pairs' 16/1 ratios is whale's scaling with the host's drift
between measurements mostly taken out.

  /usr/bin/python3 bench/serve/compare_serve.py --whale build/release/whale --whale-model DIR \\
      --llama-server /work/peers/llama.cpp/build-noamx/bin/llama-server --gguf FILE.gguf --threads 2 --rounds 3
"""
import argparse
import json
import statistics
import subprocess
import threading
import time
import urllib.request

CONCURRENCY = [1, 4, 16]


def wait_ready(url, proc, timeout=600):
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f'server exited with {proc.returncode}')
        try:
            with urllib.request.urlopen(url + '/health', timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.5)
    raise RuntimeError('server did not become ready')


def stream_completion(url, model, prompt, max_tokens, out, i):
    body = {'model': model, 'prompt': prompt, 'max_tokens': max_tokens, 'temperature': 0, 'stream': True,
            'stream_options': {'include_usage': True}}
    req = urllib.request.Request(url + '/v1/completions', data=json.dumps(body).encode(),
                                 headers={'Content-Type': 'application/json'})
    tokens, pieces = None, 0
    with urllib.request.urlopen(req, timeout=1200) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith('data: ') or line == 'data: [DONE]':
                continue
            chunk = json.loads(line[6:])
            if chunk.get('usage'):
                tokens = chunk['usage']['completion_tokens']
            pieces += sum(1 for c in chunk.get('choices', []) if c.get('text'))
    # The usage chunk where the server sends one; else one streamed piece per token (llama-server's way).
    out[i] = tokens if tokens is not None else pieces


def measure(url, model, concurrency, max_tokens, tag):
    prompts = [f'Request {tag}-{i}: tell a long story about the sea, the ships, the sailors and the storms they met '
               f'on their way home.' for i in range(concurrency)]
    out = [0] * concurrency
    threads = [threading.Thread(target=stream_completion, args=(url, model, p, max_tokens, out, i))
               for i, p in enumerate(prompts)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - start
    return sum(out) / wall, sum(out)


def run_engine(name, cmd, url, model, args, rnd):
    """Tok/s per concurrency, and (--pairs) the 16-over-1 ratios of back-to-back pairs of measurements."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url, proc)
        # Every concurrency once before measuring: a fresh server's first use of 16 slots (cache pages, buffers,
        # threads) measured slow inside the first 16-stream pass (whale 2.61x where back-to-back pairs gave 4.5-6.6x).
        for c in CONCURRENCY:
            measure(url, model, c, 8, f'warm{rnd}c{c}')
        res = {}
        for c in CONCURRENCY:
            res[c] = measure(url, model, c, args.tokens, f'{name}{rnd}')
        # The host's speed drifts between the 1-stream and the 16-stream measurement of the pass above, and the two
        # are bound by different things (memory, arithmetic), so their ratio follows the drift. Pairs measured back
        # to back, alternating which goes first, see the same minute.
        ratios = []
        for p in range(args.pairs if name == 'whale' else 0):
            order = [1, 16] if p % 2 == 0 else [16, 1]
            tps = {c: measure(url, model, c, args.tokens, f'{name}{rnd}p{p}')[0] for c in order}
            ratios.append(tps[16] / tps[1])
        return res, ratios
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--whale', required=True)
    ap.add_argument('--whale-model', required=True)
    ap.add_argument('--llama-server')
    ap.add_argument('--gguf')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--tokens', type=int, default=64)
    ap.add_argument('--ctx', type=int, default=256, help='context per stream')
    ap.add_argument('--port', type=int, default=8791)
    ap.add_argument('--pairs', type=int, default=0,
                    help="after whale's pass, this many more back-to-back pairs of 1 and 16 streams, for its 16/1 ratio")
    ap.add_argument('--out')
    args = ap.parse_args()
    # Each engine on its own port: a port just closed by one server may not be free to bind for the next at once.
    url_of = {'whale': f'http://127.0.0.1:{args.port}', 'llama-server': f'http://127.0.0.1:{args.port + 1}'}
    slots = max(CONCURRENCY)
    engines = [('whale', [args.whale, 'serve', '--model', args.whale_model, '--name', 'm', '--port', str(args.port),
                          '--parallel', str(slots), '--ctx', str(args.ctx), '--threads', str(args.threads)])]
    if args.llama_server and args.gguf:
        engines.append(('llama-server', [args.llama_server, '-m', args.gguf, '--port', str(args.port + 1), '-t',
                                         str(args.threads), '-np', str(slots), '-c', str(slots * args.ctx),
                                         '--alias', 'm']))
    samples = {name: {c: [] for c in CONCURRENCY} for name, _ in engines}
    pair_ratios = {name: [] for name, _ in engines}
    for rnd in range(args.rounds):
        for name, cmd in engines:
            res, ratios = run_engine(name, cmd, url_of[name], 'm', args, rnd)
            for c, (tps, n) in res.items():
                samples[name][c].append(tps)
            pair_ratios[name] += ratios
            print(f'round {rnd + 1} {name}: ' + ', '.join(f'{c} streams {res[c][0]:.2f} tok/s ({res[c][1]} tokens)'
                                                          for c in CONCURRENCY)
                  + (f'; 16/1 of back-to-back pairs: ' + ', '.join(f'{r:.2f}' for r in ratios) if ratios else ''),
                  flush=True)
    summary = {name: {c: statistics.median(v) for c, v in per.items()} for name, per in samples.items()}
    for name, ratios in pair_ratios.items():
        if ratios:
            summary[name]['16/1 pairs median'] = statistics.median(ratios)
    print(json.dumps(summary, indent=2))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({'samples': samples, 'pair_ratios': pair_ratios, 'summary': summary, 'args': vars(args)}, f,
                      indent=2)


if __name__ == '__main__':
    main()
