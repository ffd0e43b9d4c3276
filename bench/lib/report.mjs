// Targets, the stdout table and docs/benchmarks.md, all from the results object of one run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { dbFloor, findingsFor } from './findings.mjs';

const fmt = (v, d = 1) => (v === null || v === undefined ? 'n/a' : Number(v).toFixed(d));
const signed = (v, d = 1) => `${v >= 0 ? '+' : ''}${fmt(v, d)}`;
const pctOff = (ratio) => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)}%`;

/** Each figure with its target and pass (true), falls short (false) or no target (null). */
export function evaluateTargets(r) {
  const { login, routes, timing, memory, scaleOut } = r.phases;
  const t = [];
  const loginTarget = r.settings.bcryptCost >= 12 ? 0.97 : 0.9;
  const peer = r.phases.peer && !r.phases.peer.skipped ? r.phases.peer : null;
  for (const [platform, phase] of Object.entries(r.phases.platforms ?? { express: { login, routes } })) {
    const on = `(${platform})`;
    const suffix = platform === 'express' ? '' : `-${platform}`;
    if (phase.skipped) {
      t.push({ id: `platform${suffix}`, name: `1./2. ${platform}`, figure: `skipped: ${phase.skipped}`, target: 'report', pass: null });
      continue;
    }
    const { login: l, routes: rt } = phase;
    t.push({
      id: `login-vs-bcrypt${suffix}`,
      name: `1. Successful logins/s vs raw bcrypt.compare/s ${on}`,
      figure: `${fmt(l.login.okPerSecond, 2)} vs ${fmt(l.ceiling.perSecond, 2)} /s = ${fmt(l.ratio, 3)}×`,
      target: `≥ ${loginTarget}× (cost ${r.settings.bcryptCost})`,
      pass: l.ratio >= loginTarget,
    });
    t.push({
      id: `me-throughput${suffix}`,
      name: `2. GET /auth/me rps vs GET /health rps ${on}`,
      figure: `${fmt(rt.me.okPerSecond, 0)} vs ${fmt(rt.health.okPerSecond, 0)} rps = ${fmt(rt.ratio, 3)}×`,
      target: '≥ 0.8×',
      pass: rt.ratio >= 0.8,
    });
    const cpu = (x) => `${fmt(x.cpuMsPerRequest.appMs, 3)} + ${fmt(x.cpuMsPerRequest.postgresMs, 3)} ms`;
    t.push({
      id: `me-cpu${suffix}`,
      name: `2. App + PostgreSQL CPU per /auth/me vs per /health ${on}`,
      figure: `${cpu(rt.me)} vs ${cpu(rt.health)} = ${fmt(rt.cpuRatio, 2)}×`,
      target: '≤ 1.5×',
      pass: rt.cpuRatio === null || rt.cpuRatio === undefined ? null : rt.cpuRatio <= 1.5,
    });
    const floor = dbFloor(rt);
    if (floor) {
      t.push({
        id: `me-db-floor${suffix}`,
        name: `2. /health app CPU + the lookup's PostgreSQL CPU, vs /health ${on}`,
        figure: `${fmt(floor.ratio, 2)}×; app CPU beyond /health: ${fmt(floor.usedMs * 1000, 0)} µs used, ${fmt(floor.leftMs * 1000, 0)} µs left by 1.5×`,
        target: 'report',
        pass: null,
      });
    }
    if (peer) {
      const ratio = rt.me.okPerSecond / peer.getSession.okPerSecond;
      t.push({
        id: `me-vs-peer${suffix}`,
        name: `2c. GET /auth/me rps vs Better Auth ${peer.version} getSession rps ${on}`,
        figure: `${fmt(rt.me.okPerSecond, 0)} vs ${fmt(peer.getSession.okPerSecond, 0)} rps = ${fmt(ratio, 2)}×`,
        target: '≥ 2×',
        pass: ratio >= 2,
      });
    }
  }
  if (peer) {
    t.push({
      id: 'peer-cpu',
      name: `2c. Better Auth getSession: CPU per request (app + PostgreSQL)`,
      figure: `${fmt(peer.getSession.cpuMsPerRequest.appMs, 3)} + ${fmt(peer.getSession.cpuMsPerRequest.postgresMs, 3)} ms (p50 ${fmt(peer.getSession.latencyMs.p50, 1)} ms)`,
      target: 'report',
      pass: null,
    });
  }
  t.push({
    id: 'me-p99',
    name: '2. GET /auth/me p99 latency (50 connections)',
    figure: `${fmt(routes.me.latencyMs.p99, 1)} ms (p50 ${fmt(routes.me.latencyMs.p50, 1)} ms; /health p99 ${fmt(routes.health.latencyMs.p99, 1)} ms)`,
    target: '< 20 ms',
    pass: routes.me.latencyMs.p99 < 20,
  });
  for (const [id, kind, label] of [
    ['timing-unknown', 'unknown', 'unknown-user 401'],
    ['timing-locked', 'locked', 'locked-user 423'],
  ]) {
    const k = timing[kind];
    t.push({
      id,
      name: `3. Median ${label} vs wrong-password 401`,
      figure: `${fmt(k.medianMs, 1)} vs ${fmt(timing.wrongPassword.medianMs, 1)} ms (${pctOff(k.vsWrongPassword)})`,
      target: 'within ±10%',
      pass: Math.abs(k.vsWrongPassword - 1) <= 0.1,
    });
  }
  t.push({
    id: 'loop-p99',
    name: '4. Event-loop delay p99 during the login storm',
    figure: `${fmt(login.eventLoop.p99Ms, 2)} ms (max ${fmt(login.eventLoop.maxMs, 1)} ms)`,
    target: '< 20 ms',
    pass: login.eventLoop.p99Ms < 20,
  });
  t.push({
    id: 'rss-growth',
    name:
      `5. RSS growth over ${memory.requests.toLocaleString('en')} authenticated /auth/me` +
      (memory.warmupRequests ? ` (after a ${memory.warmupRequests.toLocaleString('en')}-request warm-up; full GC before each reading)` : ''),
    figure:
      `${fmt(memory.before.rssMiB)} → ${fmt(memory.after.rssMiB)} MiB (${signed(memory.growthMiB)} MiB)` +
      (memory.warmupRequests !== undefined ? `; V8 heap used after GC ${signed(memory.heapGrowthMiB)} MiB` : ''),
    target: '< 50 MB',
    pass: memory.growthMiB < 50,
  });
  if (!scaleOut.skipped) {
    t.push({
      id: 'scale-login',
      name: '6. Logins/s, 2 instances vs 1',
      figure: `${fmt(scaleOut.twoInstances.loginPerSecond, 2)} vs ${fmt(scaleOut.oneInstance.loginPerSecond, 2)} /s = ${fmt(scaleOut.loginGain, 2)}×`,
      target: 'report (2 cores)',
      pass: null,
    });
    t.push({
      id: 'scale-me',
      name: '6. /auth/me rps, 2 instances vs 1',
      figure: `${fmt(scaleOut.twoInstances.mePerSecond, 0)} vs ${fmt(scaleOut.oneInstance.mePerSecond, 0)} rps = ${fmt(scaleOut.meGain, 2)}×`,
      target: 'report (2 cores)',
      pass: null,
    });
  }
  return t;
}

const mark = (pass) => (pass === null ? 'info' : pass ? 'pass' : 'FALLS SHORT');

/** Problems that make a figure untrustworthy (failed requests, wrong statuses). */
export function validity(r) {
  const problems = [];
  const check = (label, s) => {
    const bad = Object.entries(s.statusCodes ?? {}).filter(([code]) => !code.startsWith('2'));
    if (bad.length) problems.push(`${label}: non-2xx responses ${JSON.stringify(Object.fromEntries(bad))}`);
    if (s.errors) problems.push(`${label}: ${s.errors} connection errors / timeouts`);
    if (s.cutOff) problems.push(`${label}: cut off by the time limit`);
  };
  check('login storm', r.phases.login.login);
  check('/health', r.phases.routes.health);
  check('/auth/me', r.phases.routes.me);
  for (const [platform, phase] of Object.entries(r.phases.platforms ?? {})) {
    if (platform === 'express' || phase.skipped) continue;
    check(`login storm (${platform})`, phase.login.login);
    check(`/health (${platform})`, phase.routes.health);
    check(`/auth/me (${platform})`, phase.routes.me);
  }
  if (r.phases.peer?.getSession) check('Better Auth getSession', r.phases.peer.getSession);
  check('memory run', r.phases.memory);
  if (!r.phases.scaleOut.skipped) {
    check('2-instance login', r.phases.scaleOut.twoInstances.login);
    check('2-instance /auth/me', r.phases.scaleOut.twoInstances.me);
  }
  const unexpected = r.phases.timing.unexpectedStatuses;
  if (Object.keys(unexpected).length) problems.push(`timing: unexpected statuses ${JSON.stringify(unexpected)}`);
  return problems;
}

/** One row per Nest HTTP platform (the same demo app and database), and the Better Auth peer when measured. */
export function platformTable(r) {
  const cpu = (x) => `${fmt(x.cpuMsPerRequest.appMs, 3)} + ${fmt(x.cpuMsPerRequest.postgresMs, 3)} ms`;
  const rows = Object.entries(r.phases.platforms ?? {}).map(([platform, phase]) =>
    phase.skipped
      ? [platform, phase.skipped, '', '', '', '', '']
      : [
          platform,
          `${fmt(phase.login.login.okPerSecond, 2)}/s = ${fmt(phase.login.ratio, 3)}× bcrypt`,
          fmt(phase.routes.health.okPerSecond, 0),
          `${fmt(phase.routes.me.okPerSecond, 0)} (${fmt(phase.routes.ratio, 3)}×)`,
          cpu(phase.routes.health),
          `${cpu(phase.routes.me)} (${fmt(phase.routes.cpuRatio, 2)}×)`,
          `p50 ${fmt(phase.routes.me.latencyMs.p50, 1)} / p99 ${fmt(phase.routes.me.latencyMs.p99, 1)} ms`,
        ],
  );
  const peer = r.phases.peer;
  if (peer?.getSession) {
    rows.push([`Better Auth ${peer.version} (getSession)`, '', '', fmt(peer.getSession.okPerSecond, 0), '', cpu(peer.getSession), `p50 ${fmt(peer.getSession.latencyMs.p50, 1)} / p99 ${fmt(peer.getSession.latencyMs.p99, 1)} ms`]);
  } else if (peer?.skipped) rows.push(['Better Auth', `skipped: ${peer.skipped}`, '', '', '', '', '']);
  return table(['platform', 'logins (cost ' + r.settings.bcryptCost + ')', '/health rps', '/auth/me rps (× /health)', 'CPU per /health (app + PG)', 'CPU per /auth/me (× /health)', '/auth/me latency'], rows);
}

export function printTable(r, out) {
  const rows = r.targets.map((t) => [t.name, t.figure, t.target, mark(t.pass)]);
  const head = ['measure', 'figure', 'target', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
  out('');
  out(`backoffice-identity benchmark — ${r.mode} run, ${r.database.label}, bcrypt cost ${r.settings.bcryptCost}, rate limits off`);
  if (r.mode === 'quick') out('(quick: smoke run with small counts; the timings are not meant to be asserted)');
  out(line(head));
  out(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of rows) out(line(row));
  for (const problem of validity(r)) out(`! ${problem}`);
  out('');
}

// ---- docs/benchmarks.md -----------------------------------------------------------------------------------

const table = (head, rows) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');

const cpuLine = (cpu, names) => {
  if (!cpu) return 'n/a';
  const apps = cpu.appsPct.map((p, i) => `${names[i]} ${fmt(p, 0)}%`).join(', ');
  const pg = cpu.postgresPct === null ? '' : `, PostgreSQL ${fmt(cpu.postgresPct, 0)}%`;
  return `${apps}${pg}, load generator ${fmt(cpu.loadGeneratorPct, 0)}%, kernel interrupts ${fmt(cpu.interruptsPct, 0)}%, other ${fmt(cpu.otherPct, 0)}%; machine ${fmt(cpu.machineBusyPct, 0)}% of ${cpu.machineCapacityPct}% busy${cpu.stealPct >= 5 ? `, ${fmt(cpu.stealPct, 0)}% stolen by the hypervisor` : ''}`;
};

/** One sentence per scale-out figure on what limits it, from the CPU readings of the run. */
export function bottleneck(r) {
  const s = r.phases.scaleOut;
  if (s.skipped) return [];
  const cores = r.machine.nproc;
  const saturated = (cpu) => cpu && cpu.machineBusyPct >= 0.9 * cpu.machineCapacityPct;
  const login = s.twoInstances.loginCpu;
  const me1 = s.oneInstance.meCpu;
  const me2 = s.twoInstances.meCpu;
  const lines = [];
  lines.push(
    `Logins: ${fmt(s.loginGain, 2)}× with a second instance. A login is one bcrypt hash check (about ` +
      `${fmt((cores / r.phases.login.ceiling.perSecond) * 1000, 0)} ms of a core at cost ${r.settings.bcryptCost} here), so the ${cores} cores cap every ` +
      `configuration at the raw bcrypt rate (${fmt(r.phases.login.ceiling.perSecond, 2)}/s): a second instance adds thread-pool ` +
      `threads, not cores${saturated(login) ? ` (the machine was ${fmt(login.machineBusyPct, 0)}% busy of ${login.machineCapacityPct}%)` : ''}.`,
  );
  const appsOne = me1?.appsPct?.[0];
  const twoApps = (me2?.appsPct ?? []).map((p) => `${fmt(p, 0)}%`).join(' + ');
  const twoAppMs = me2 ? ((me2.appsPct.reduce((a, b) => a + b, 0) / 100) * me2.wallSeconds * 1000) / s.twoInstances.me.ok : null;
  const first =
    appsOne >= 85 && !saturated(me1)
      ? `with one instance its single JavaScript thread was the limit (${fmt(appsOne, 0)}% of a core) while the machine was ` +
        `${fmt(me1.machineBusyPct, 0)}% busy of ${me1.machineCapacityPct}% (PostgreSQL ${fmt(me1.postgresPct, 0)}%, load generator ${fmt(me1.loadGeneratorPct, 0)}%)`
      : `with one instance the app used ${fmt(appsOne, 0)}% of a core, PostgreSQL ${fmt(me1?.postgresPct, 0)}%, the load generator ` +
        `${fmt(me1?.loadGeneratorPct, 0)}% (machine ${fmt(me1?.machineBusyPct, 0)}% of ${me1?.machineCapacityPct}%)`;
  const second = saturated(me2)
    ? `with two instances the ${cores} cores were saturated (${fmt(me2.machineBusyPct, 0)}%: apps ${twoApps}, PostgreSQL ` +
      `${fmt(me2.postgresPct, 0)}%, load generator ${fmt(me2.loadGeneratorPct, 0)}%, kernel interrupts ${fmt(me2.interruptsPct, 0)}%). ` +
      `The second instance took up the CPU that one instance had left idle (${fmt(me1.machineCapacityPct - me1.machineBusyPct, 0)}% ` +
      `of the machine), but each request then cost the apps ${fmt(twoAppMs)} ms of CPU instead of ${fmt(r.phases.routes.me.cpuMsPerRequest?.appMs)} ms ` +
      '(more busy processes than cores: context switches, colder caches). The bottleneck is the CPU itself: further instances would take cores from each other and from ' +
      `PostgreSQL, which needs ${fmt(r.phases.routes.me.cpuMsPerRequest?.postgresMs)} ms of CPU per /auth/me against ` +
      `${fmt(r.phases.routes.me.cpuMsPerRequest?.appMs)} ms in the app. More instances pay off only with more cores, or with ` +
      'PostgreSQL and the load generator on other machines'
    : `with two instances the apps used ${twoApps} and the machine was ${fmt(me2?.machineBusyPct, 0)}% busy: not saturated, so the ` +
      'limit is elsewhere (PostgreSQL connections or locks)';
  lines.push(`/auth/me: ${fmt(s.meGain, 2)}× with a second instance: ${first}; ${second}.`);
  return lines;
}

export function writeMarkdown(r, path) {
  const { login, routes, timing, memory, scaleOut } = r.phases;
  const m = r.machine;
  const s = r.settings;
  const md = [];
  md.push('# Benchmarks');
  md.push('');
  md.push(
    `Generated by \`${r.mode === 'quick' ? 'npm run bench -- --quick' : 'npm run bench'}\`${r.database.kind === 'postgresql' ? ' with `DATABASE_URL` set' : ''} on ${r.finishedAt.slice(0, 16).replace('T', ' ')} UTC ` +
      `(${r.mode} run, ${r.durationS} s). Every figure in the tables comes from this one run, measured side by side on the same ` +
      'machine; re-run the command to refresh this file (raw data: `bench/results.json`, not committed).',
  );
  if (r.mode === 'quick') md.push('', '> Quick smoke run: small counts and short durations. Do not read the timings as results.');
  if (r.database.kind !== 'postgresql') md.push('', `> Database: **${r.database.label}**. Run with \`DATABASE_URL\` for PostgreSQL figures.`);
  md.push('');
  md.push('## Results');
  md.push('');
  md.push(table(['measure', 'figure', 'target', 'result'], r.targets.map((t) => [t.name, t.figure, t.target, t.pass === null ? 'info' : t.pass ? '✅ pass' : '❌ falls short'])));
  const problems = validity(r);
  if (problems.length) md.push('', ...problems.map((p) => `- ⚠️ ${p}`));
  md.push('');
  md.push('## Both HTTP platforms and the peer');
  md.push('');
  md.push(platformTable(r));
  md.push('');
  md.push('## Machine and settings');
  md.push('');
  md.push(
    table(
      ['', ''],
      [
        ['CPU', `${m.nproc} × ${m.cpuModel} (\`nproc\` = ${m.nproc})`],
        ['Memory', `${m.memoryGiB} GiB`],
        ['OS', m.kernel],
        ['Node.js', m.node],
        ['Load before the run', r.loadAtStart ? `load average ${r.loadAtStart.loadAverage.join(' / ')}; CPU ${fmt(r.loadAtStart.busyPct, 0)}% busy of ${r.loadAtStart.capacityPct}% over ${r.loadAtStart.seconds} s` : 'n/a'],
        ['Database', r.database.kind === 'postgresql' ? `${r.database.label} on 127.0.0.1, same machine (fresh database \`bo_bench_<random>\` per run, dropped after); ${Object.entries(r.database.settings).map(([k, v]) => `${k}=${v}`).join(', ')}` : r.database.label],
        ['App pool', `TypeORM/pg pool of ${s.appPoolSize} connection(s) per app instance`],
        ['Redis', String(s.redis)],
        ['bcrypt cost', `${s.bcryptCost} (\`BACKOFFICE_BCRYPT_COST\`; seeded hashes made by the app at this cost, so no re-hash on login)`],
        ['UV_THREADPOOL_SIZE', `${s.uvThreadpoolSize} for the app and for the raw bcrypt measurement alike`],
        ['Rate limits', `**off** (\`BACKOFFICE_RATE_LIMITS=off\`), so the load is never answered with 429`],
        ['Lockout', `${s.lockoutMaxAttempts} failed attempts (default); wrong-password users are unlocked by an admin (untimed) before they lock`],
        ['NODE_ENV', `${s.nodeEnv} (Secure cookies on)`],
        ['Load generator', `autocannon (in the benchmark process, same machine), loopback 127.0.0.1 only; logins at ${s.loginConnections} connections (2 × cores), routes at ${s.routeConnections}`],
      ],
    ),
  );
  md.push('');
  md.push('## 1. Login throughput vs raw bcrypt');
  md.push('');
  md.push(
    `Raw \`bcrypt.compare\` at cost ${s.bcryptCost}, ${login.ceiling.concurrency} in flight, in a separate Node process while the app idled: ` +
      `the ceiling for any bcrypt login on this machine. Then successful \`POST /backoffice/auth/login\` (${login.login.users} users in turn, ` +
      `each answer a 200 with a new session) at ${login.login.connections} connections.`,
  );
  md.push('');
  md.push(
    table(
      ['', 'per second', 'count', 'p50', 'p99', 'CPU'],
      [
        ['raw bcrypt.compare', fmt(login.ceiling.perSecond, 2), `${login.ceiling.completed} in ${fmt(login.ceiling.elapsedS, 1)} s`, `${fmt(login.ceiling.p50Ms, 0)} ms`, '', ''],
        ['successful logins', fmt(login.login.okPerSecond, 2), `${login.login.ok} in ${fmt(login.login.seconds, 1)} s`, `${fmt(login.login.latencyMs.p50, 0)} ms`, `${fmt(login.login.latencyMs.p99, 0)} ms`, cpuLine(login.cpu, ['app'])],
      ],
    ),
  );
  md.push('', `Ratio: **${fmt(login.ratio, 3)}×** (target ≥ 0.85×).`);
  md.push('');
  md.push('## 2. Session check overhead');
  md.push('');
  md.push(
    `\`GET /backoffice/auth/me\` with a valid session cookie (${memory.sessions} sessions in turn; each request looks up the session and the user) ` +
      `vs the demo's unauthenticated \`GET /health\` (one \`SELECT 1\`), ${s.routeConnections} connections, ${s.profile.routeS} s each after a ${s.profile.warmupS} s warm-up.`,
  );
  md.push('');
  const perReq = (c) => (c ? `app ${fmt(c.appMs, 2)} ms${c.postgresMs === null ? '' : ` + PostgreSQL ${fmt(c.postgresMs, 2)} ms`}` : 'n/a');
  const lat = (run) => ['p50', 'p90', 'p99', 'max'].map((p) => `${fmt(run.latencyMs[p], 1)} ms`);
  const one = routes.oneConnection ?? {};
  md.push(
    table(
      ['route', 'connections', 'rps', 'p50', 'p90', 'p99', 'max', 'CPU per request', 'CPU during the run'],
      [
        ['GET /health', s.routeConnections, fmt(routes.health.okPerSecond, 0), ...lat(routes.health), perReq(routes.health.cpuMsPerRequest), cpuLine(routes.health.cpu, ['app'])],
        ['GET /auth/me', s.routeConnections, fmt(routes.me.okPerSecond, 0), ...lat(routes.me), perReq(routes.me.cpuMsPerRequest), cpuLine(routes.me.cpu, ['app'])],
        ...(one.health ? [['GET /health (info)', 1, fmt(one.health.okPerSecond, 0), ...lat(one.health), '', '']] : []),
        ...(one.me ? [['GET /auth/me (info)', 1, fmt(one.me.okPerSecond, 0), ...lat(one.me), '', '']] : []),
      ],
    ),
  );
  md.push(
    '',
    `Ratio: **${fmt(routes.ratio, 3)}×** (target ≥ 0.5×); /auth/me p99 at ${s.routeConnections} connections **${fmt(routes.me.latencyMs.p99, 1)} ms** (target < 20 ms). ` +
      `Event-loop delay during /auth/me: p99 ${fmt(routes.me.eventLoop?.p99Ms, 2)} ms.`,
    '',
    `With ${s.routeConnections} connections in a closed loop, the mean latency is connections ÷ throughput (Little's law): ` +
      `${s.routeConnections} ÷ ${fmt(routes.me.okPerSecond, 0)} rps = ${fmt((s.routeConnections / routes.me.okPerSecond) * 1000, 1)} ms for /auth/me and ` +
      `${fmt((s.routeConnections / routes.health.okPerSecond) * 1000, 1)} ms for /health, so a p99 under 20 ms at ${s.routeConnections} connections needs ` +
      `well over ${fmt((s.routeConnections / 0.02), 0)} rps. The 1-connection rows show the time of one request without queueing.`,
  );
  md.push('');
  md.push('## 3. Timing equality');
  md.push('');
  md.push(
    `${timing.unknown.n} requests of each kind, interleaved in random order, one at a time over one kept-alive connection ` +
      `(after ${timing.warmupRounds} untimed rounds): unknown username (401), existing user with a wrong password (401), and a user locked by ` +
      `${s.lockoutMaxAttempts} wrong passwords just before (423).`,
  );
  md.push('');
  md.push(
    table(
      ['kind', 'median', 'vs wrong password', 'p10', 'p90', 'IQR', 'mean ± sd', 'min / max'],
      [
        ['unknown user → 401', timing.unknown],
        ['wrong password → 401', timing.wrongPassword],
        ['locked user → 423', timing.locked],
      ].map(([label, k]) => [label, `${fmt(k.medianMs, 1)} ms`, pctOff(k.vsWrongPassword), `${fmt(k.p10Ms, 1)} ms`, `${fmt(k.p90Ms, 1)} ms`, `${fmt(k.iqrMs, 1)} ms`, `${fmt(k.meanMs, 1)} ± ${fmt(k.stdevMs, 1)} ms`, `${fmt(k.minMs, 1)} / ${fmt(k.maxMs, 1)} ms`]),
    ),
  );
  md.push('');
  md.push('## 4. Event-loop health during the login storm');
  md.push('');
  md.push(
    'Measured inside the app without changing it: the app runs as `node --require bench/loop-monitor.cjs dist/demo/main.js`; the ' +
      `preloaded script samples \`perf_hooks.monitorEventLoopDelay\` (resolution ${login.eventLoop.resolutionMs} ms; figures are the lateness beyond it) ` +
      'and answers the benchmark over the IPC channel. The histogram is reset right before the storm and read right after it.',
  );
  md.push('');
  md.push(
    table(
      ['', 'samples', 'p50', 'p90', 'p99', 'max'],
      [['login storm', login.eventLoop.count, ...['p50Ms', 'p90Ms', 'p99Ms', 'maxMs'].map((p) => `${fmt(login.eventLoop[p], 2)} ms`)]].concat(
        routes.me.eventLoop ? [['/auth/me at 50 connections (info)', routes.me.eventLoop.count, ...['p50Ms', 'p90Ms', 'p99Ms', 'maxMs'].map((p) => `${fmt(routes.me.eventLoop[p], 2)} ms`)]] : [],
      ),
    ),
  );
  md.push('');
  md.push('## 5. Memory');
  md.push('');
  const warm = memory.warmupRequests !== undefined;
  md.push(
    `VmRSS of the app process (\`/proc/<pid>/status\`) before and after ${memory.requests.toLocaleString('en')} authenticated ` +
      `\`GET /auth/me\` (${memory.sessions} sessions in turn, ${s.routeConnections} connections, ${fmt(memory.okPerSecond, 0)} rps, ${fmt(memory.seconds, 0)} s), ` +
      (warm
        ? `after the route runs above and a warm-up of ${memory.warmupRequests.toLocaleString('en')} more at the same concurrency (not counted: V8 shrinks the committed heap of an ` +
          'idle app, and sizes it again for the load and compiles the hot paths then, a one-off growth that a reading taken before it would count as growth per request). '
        : 'after the warm-up and route runs above. ') +
      (memory.fullGcBeforeReadings
        ? 'Every reading follows a full garbage collection in the app (requested through the loop monitor), so they compare retained memory: ' +
          'the V8 heap used is what JavaScript retains, the heap committed (`heapTotal`) what V8 keeps reserved for it, and the rest of RSS is outside the V8 heap (native allocations, code, stacks).'
        : 'No forced garbage collection was available.') +
      (memory.requests < 100_000
        ? ` The run is capped at about ${memory.cappedAtSeconds ?? s.profile.memoryMaxS} s (what the 5-minute budget leaves after the timing phase and the scale-out), so it made ${memory.requests.toLocaleString('en')} ` +
          'requests instead of 100,000 (`npm run bench -- --memory-requests=100000` makes exactly 100,000).'
        : ''),
  );
  md.push('');
  const row = (label, m) => [label, `${fmt(m.rssMiB)} MiB`, `${fmt(m.heapUsedMiB)} MiB`, ...(warm ? [`${fmt(m.heapTotalMiB)} MiB`, `${fmt(m.outsideHeapMiB)} MiB`] : [])];
  md.push(
    table(
      ['', 'RSS', 'V8 heap used', ...(warm ? ['V8 heap committed', 'RSS outside the V8 heap'] : [])],
      [
        ...(warm ? [row('before the warm-up (not counted)', memory.beforeWarmup)] : []),
        row(warm ? 'before (after the warm-up)' : 'before', memory.before),
        row('after', memory.after),
        [
          'growth',
          `**${signed(memory.growthMiB)} MiB**`,
          `${signed(memory.heapGrowthMiB)} MiB`,
          ...(warm ? [`${signed(memory.heapTotalGrowthMiB)} MiB`, `${signed(memory.outsideHeapGrowthMiB)} MiB`] : []),
        ],
      ],
    ),
  );
  md.push(
    '',
    `During the run RSS peaked at ${fmt(memory.peakRssMiB)} MiB and stood at ${fmt(memory.after.rssBeforeGcMiB)} MiB right after it (before the GC); over the second half of the requests it changed by ` +
      `${signed(memory.secondHalfGrowthMiB)} MiB (sampled every 2 s, uncollected garbage included; series in \`bench/results.json\`).` +
      (warm ? ` Over the warm-up itself RSS changed by ${signed(memory.warmupGrowthMiB)} MiB.` : ''),
  );
  md.push('');
  md.push('## 6. Scale-out');
  md.push('');
  if (scaleOut.skipped) {
    md.push(`Skipped: ${scaleOut.skipped}`);
  } else {
    md.push(
      `A second instance of the demo app on the same PostgreSQL database${scaleOut.redis ? ' and Redis (`REDIS_URL`, the rate-limit store; limits are off, so Redis is not on the request path)' : ''}. ` +
        'The same total concurrency is split over the instances (one autocannon per instance, run side by side, after a ' +
          `${s.profile.scaleWarmupS ?? s.profile.warmupS} s warm-up of both); the 1-instance figures are those of sections 1 and 2.`,
    );
    md.push('');
    md.push(
      table(
        ['', '1 instance', '2 instances', 'gain', 'CPU with 2 instances'],
        [
          ['successful logins/s', fmt(scaleOut.oneInstance.loginPerSecond, 2), fmt(scaleOut.twoInstances.loginPerSecond, 2), `${fmt(scaleOut.loginGain, 2)}×`, cpuLine(scaleOut.twoInstances.loginCpu, ['app A', 'app B'])],
          ['GET /auth/me rps', fmt(scaleOut.oneInstance.mePerSecond, 0), `${fmt(scaleOut.twoInstances.mePerSecond, 0)}${scaleOut.twoInstances.mePerInstance ? ` (${scaleOut.twoInstances.mePerInstance.map((v) => fmt(v, 0)).join(' + ')})` : ''}`, `${fmt(scaleOut.meGain, 2)}×`, cpuLine(scaleOut.twoInstances.meCpu, ['app A', 'app B'])],
          ['GET /auth/me p99', `${fmt(scaleOut.oneInstance.meP99Ms, 1)} ms`, `${fmt(scaleOut.twoInstances.meP99Ms, 1)} ms`, '', ''],
        ],
      ),
    );
    md.push('');
    for (const line of bottleneck(r)) md.push(`- ${line}`);
  }
  const findings = findingsFor(r);
  if (findings.length) {
    md.push('');
    md.push('## Where targets are missed');
    md.push('');
    for (const f of findings) md.push(`### ${f.title}`, '', f.text, '');
  }
  md.push('');
  md.push('## Method');
  md.push('');
  md.push(
    [
      '- `bench/run.mjs` builds the app if `dist/demo/main.js` is missing or older than `src/` (`tsc -p tsconfig.build.json`), creates a fresh database ' +
        '`bo_bench_<random>` on the server of `DATABASE_URL` (in-memory PGlite when unset, labelled as such), starts `dist/demo/main.js` with ' +
        '`NODE_ENV=production`, `PORT=0`, rate limits off, and drops the database at the end.',
      '- Users are seeded through the API the way a real back office gets them: the first admin (from `BACKOFFICE_ADMIN_EMAIL/PASSWORD`) signs in, ' +
        'invites each user (`POST /backoffice/users/invite`), and each user accepts the invite with the token from the email in the pickup folder ' +
        '(`POST /backoffice/auth/invite/accept`), so every password hash is made by the app at the configured cost.',
      '- The app, PostgreSQL, Redis and the load generator share the same machine. CPU figures are read from `/proc` over each ' +
        'measurement, in % of one core: per app process, all `postgres` processes, the benchmark process (autocannon), kernel ' +
        'interrupt work (irq + softirq, mostly loopback networking), and "other" (the rest of the machine\'s busy time).',
      '- The app listens on all interfaces (the demo does not take a host), but every request of the benchmark goes to 127.0.0.1.',
      '- Throughput counts only 2xx answers (200 for logins), from the first connection to the last answer; latencies are per request as autocannon measures them.',
      `- Budget: the full run takes under 5 minutes, \`--quick\` under 60 s (same steps, small counts; CI may run it as a smoke test). This run: ${r.durationS} s.`,
      '- `npm run bench -- --cpu-prof` keeps the run directory and makes the apps write V8 CPU profiles; `node bench/cpuprofile-summary.mjs <file>` summarizes one.',
    ].join('\n'),
  );
  md.push('');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, md.join('\n'));
}
