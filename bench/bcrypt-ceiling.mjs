// The physical limit of any bcrypt login on this machine: raw `bcrypt.compare` per second at a given cost,
// run in its own process with the same UV_THREADPOOL_SIZE as the app (the benchmark passes the same env).
//
//   node bench/bcrypt-ceiling.mjs <cost> <concurrency> <durationMs>   -> one JSON line on stdout
//
// The input is 44 bytes, like the library's HMAC-SHA256/base64 pre-hash, so bcrypt does exactly the work of
// one login's hash check. `concurrency` loops each keep one compare in flight until the deadline; the rate is
// completed compares / (time of the last completion - start), so no in-flight work is cut off or lost.
import bcrypt from 'bcrypt';
import { randomBytes } from 'node:crypto';

const [cost, concurrency, durationMs] = process.argv.slice(2).map(Number);
if (!(cost >= 4 && cost <= 31) || !(concurrency >= 1) || !(durationMs > 0)) {
  process.stderr.write('usage: node bench/bcrypt-ceiling.mjs <cost> <concurrency> <durationMs>\n');
  process.exit(2);
}

const input = randomBytes(33).toString('base64'); // 44 characters
const hash = await bcrypt.hash(input, cost);
if (!(await bcrypt.compare(input, hash))) throw new Error('bcrypt self-check failed');

const start = performance.now();
const deadline = start + durationMs;
let completed = 0;
let last = start;
const latencies = [];
async function loop() {
  while (performance.now() < deadline) {
    const t0 = performance.now();
    if (!(await bcrypt.compare(input, hash))) throw new Error('bcrypt compare failed');
    last = performance.now();
    latencies.push(last - t0);
    completed++;
  }
}
await Promise.all(Array.from({ length: concurrency }, loop));
latencies.sort((a, b) => a - b);
const elapsedS = (last - start) / 1000;
process.stdout.write(
  JSON.stringify({
    cost,
    concurrency,
    threadpool: process.env.UV_THREADPOOL_SIZE ?? null,
    completed,
    elapsedS,
    perSecond: completed / elapsedS,
    p50Ms: latencies[Math.floor(latencies.length * 0.5)] ?? null,
  }) + '\n',
);
