// Load generation with autocannon, over loopback only.
import autocannon from 'autocannon';

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export function median(values) {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/**
 * One autocannon run against one app. Either `durationS` or `amount` (exact number of requests).
 * `rotate(headers, body)` may change each request (e.g. another user's credentials or session cookie).
 * Throughput is counted by us, from the time the connections open to the last response, so autocannon's
 * 1-second reporting tick never pads a short run.
 * Returns a raw record; combine runs with {@link summarize}.
 */
export function runLoad({ url, path, method = 'GET', connections, durationS, amount, headers = {}, body, rotate, onResponse, hardStopS }) {
  if (!url.startsWith('http://127.0.0.1:')) throw new Error(`load only goes to 127.0.0.1, not ${url}`);
  const latencies = [];
  const statusCodes = {};
  let okCount = 0;
  let lastResponse = 0;
  const request = { method, path, headers, ...(body === undefined ? {} : { body }) };
  if (rotate) request.setupRequest = (req) => (rotate(req) ?? req);
  if (onResponse) request.onResponse = (status, resBody, _context, resHeaders) => onResponse(status, resBody, resHeaders);

  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let hardStop;
    const instance = autocannon(
      {
        url,
        connections,
        ...(amount ? { amount } : { duration: durationS }),
        requests: [request],
        timeout: 30,
        excludeErrorStats: false,
      },
      (error, result) => {
        clearTimeout(hardStop);
        if (error) return reject(error);
        const seconds = ((lastResponse || performance.now()) - t0) / 1000;
        resolve({ seconds, okCount, latencies, statusCodes, errors: result.errors, timeouts: result.timeouts, cut: Boolean(hardStop?.fired) });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      lastResponse = performance.now();
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
      if (statusCode >= 200 && statusCode < 300) okCount++;
      latencies.push(responseTime);
    });
    // Bounded: a run with `amount` that is far slower than expected is cut off.
    const limitS = hardStopS ?? (durationS ? durationS + 30 : 300);
    hardStop = setTimeout(() => {
      hardStop.fired = true;
      instance.stop();
    }, limitS * 1000);
  });
}

/** Throughput and latency of one run, or of runs made side by side against several apps. */
export function summarize(runs) {
  runs = [runs].flat();
  const seconds = Math.max(...runs.map((r) => r.seconds));
  const latencies = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const statusCodes = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.statusCodes)) statusCodes[k] = (statusCodes[k] ?? 0) + v;
  const ok = runs.reduce((a, r) => a + r.okCount, 0);
  const round = (v, d = 2) => (v === null ? null : Math.round(v * 10 ** d) / 10 ** d);
  return {
    requests: latencies.length,
    ok,
    seconds: round(seconds),
    okPerSecond: round(ok / seconds, 1),
    statusCodes,
    errors: runs.reduce((a, r) => a + r.errors, 0),
    timeouts: runs.reduce((a, r) => a + r.timeouts, 0),
    cutOff: runs.some((r) => r.cut),
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p90: round(percentile(latencies, 90)),
      p99: round(percentile(latencies, 99)),
      max: round(latencies.at(-1) ?? null),
    },
  };
}
