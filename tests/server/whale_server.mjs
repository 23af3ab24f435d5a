// Shared by the server tests: their command-line options, starting `whale serve` and reading its /metrics.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';

// The value after `name` on the command line; throws if it is missing.
export function option(name) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(name);
  if (i < 0 || i + 1 >= argv.length) throw new Error(`missing ${name}`);
  return argv[i + 1];
}

// Starts `whale serve --model model --name name` on a free port with the given extra arguments, adding its process to
// `spawned` at once (so that the caller stops it even if it never comes up); resolves once it listens, with the
// process, its base URL and its stderr so far.
export function startServer(whale, model, name, extra = [], spawned = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(whale, ['serve', '--model', model, '--name', name, '--port', '0', '--threads', '2', ...extra],
                       { stdio: ['ignore', 'ignore', 'pipe'] });
    spawned.push(proc);
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 120000);
    proc.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, base: `http://127.0.0.1:${m[1]}`, stderr: () => err });
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

// The value of a metric without labels on /metrics.
export async function metric(base, name) {
  const text = await (await fetch(base + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  assert.ok(line, `metric ${name} missing`);
  return Number(line.split(' ')[1]);
}
