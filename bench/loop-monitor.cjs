'use strict';
/*
 * Preloaded into the demo app by the benchmark (`node --require bench/loop-monitor.cjs dist/demo/main.js`),
 * so the app's event-loop health can be measured from outside without touching the library.
 *
 * It samples event-loop delay with `perf_hooks.monitorEventLoopDelay` and answers requests over the IPC
 * channel that the benchmark opens when it spawns the app:
 *
 *   -> { type: 'bench:stats', id, reset, gc }   reset: clear the histogram after the reply;
 *                                               gc: run a full garbage collection first
 *   <- { type: 'bench:stats', id, gc, loop: { resolutionMs, count, minMs, meanMs, p50Ms, p90Ms, p99Ms, maxMs },
 *        memory: process.memoryUsage() }
 *
 * Delays are reported as timer lateness *beyond* the sampling interval (the raw histogram values include it).
 * Without an IPC channel (app started by hand), it does nothing unless BENCH_LOOP_MONITOR_FILE is set: then
 * SIGUSR2 writes the same JSON (and resets) to that file.
 */
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { writeFileSync } = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');

// A full garbage collection on request (`gc: true`), so retained heap can be compared without --expose-gc.
let collectGarbage = null;
try {
  v8.setFlagsFromString('--expose_gc');
  collectGarbage = vm.runInNewContext('gc');
} catch {
  // not available: the reply says gc: false
}

const RESOLUTION_MS = Number(process.env.BENCH_LOOP_RESOLUTION_MS) > 0 ? Number(process.env.BENCH_LOOP_RESOLUTION_MS) : 1;
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
histogram.enable();

const ms = (ns) => Math.max(0, ns / 1e6 - RESOLUTION_MS);

function snapshot(reset) {
  const empty = histogram.count === 0;
  const loop = {
    resolutionMs: RESOLUTION_MS,
    count: histogram.count,
    minMs: empty ? 0 : ms(histogram.min),
    meanMs: empty ? 0 : ms(histogram.mean),
    p50Ms: empty ? 0 : ms(histogram.percentile(50)),
    p90Ms: empty ? 0 : ms(histogram.percentile(90)),
    p99Ms: empty ? 0 : ms(histogram.percentile(99)),
    maxMs: empty ? 0 : ms(histogram.max),
  };
  if (reset) histogram.reset();
  return { loop, memory: process.memoryUsage() };
}

if (typeof process.send === 'function') {
  process.on('message', (message) => {
    if (!message || message.type !== 'bench:stats') return;
    const gc = Boolean(message.gc && collectGarbage);
    if (gc) collectGarbage();
    process.send({ type: 'bench:stats', id: message.id, gc, ...snapshot(Boolean(message.reset)) });
  });
  // The channel must not keep the app alive on its own (the app exits on SIGTERM as usual).
  // (`process.on('message')` re-references the channel on the next tick, hence the setImmediate.)
  setImmediate(() => process.channel?.unref?.());
} else if (process.env.BENCH_LOOP_MONITOR_FILE) {
  process.on('SIGUSR2', () => {
    writeFileSync(process.env.BENCH_LOOP_MONITOR_FILE, JSON.stringify(snapshot(true)));
  });
}
