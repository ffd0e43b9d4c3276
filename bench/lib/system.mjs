// Machine facts and per-process CPU / memory readings from /proc (Linux); elsewhere they degrade to null.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

const read = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

let cachedMachine;
export function machineInfo() {
  return (cachedMachine ??= readMachineInfo());
}

function readMachineInfo() {
  const cpuinfo = read('/proc/cpuinfo') ?? '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  let nproc = os.availableParallelism?.() ?? os.cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    // keep the os figure
  }
  return {
    nproc,
    cpuModel: model,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

/** VmRSS of a process in MiB, from /proc/<pid>/status. */
export function rssMiB(pid) {
  const status = read(`/proc/${pid}/status`);
  const kb = status && /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : null;
}

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // Linux default
}

/** utime + stime of a process, in seconds. */
function processCpuSeconds(pid) {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** CPU seconds of every process named `name` (e.g. the PostgreSQL server and its backends), by pid. */
function namedCpuSeconds(name) {
  const byPid = new Map();
  let dirs = [];
  try {
    dirs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of dirs) {
    const stat = read(`/proc/${pid}/stat`);
    if (!stat || stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== name) continue;
    byPid.set(pid, processCpuSeconds(pid) ?? 0);
  }
  return byPid;
}

/** CPU seconds used between two readings: processes that started count from zero, ones that ended are lost. */
function namedDelta(before, after) {
  if (!before || !after) return null;
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return Math.max(0, total);
}

/** CPU seconds of the whole machine, from /proc/stat: busy (without steal), interrupts, stolen by the hypervisor. */
function machineCpuSeconds() {
  const line = read('/proc/stat')?.split('\n')[0];
  if (!line) return null;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map((v) => Number(v) || 0);
  return {
    busy: (user + nice + system + irq + softirq) / clockTicks,
    interrupts: (irq + softirq) / clockTicks,
    steal: steal / clockTicks,
  };
}

/**
 * Starts a CPU reading: `stop()` returns the CPU used over the interval by the app processes, PostgreSQL,
 * this benchmark process (the load generator) and the whole machine, each in % of one core.
 */
export function startCpuReading(appPids, { postgres = true } = {}) {
  const t0 = performance.now();
  const apps0 = appPids.map(processCpuSeconds);
  const pg0 = postgres ? namedCpuSeconds('postgres') : null;
  const self0 = process.cpuUsage();
  const machine0 = machineCpuSeconds();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const pct = (seconds) => (seconds === null || Number.isNaN(seconds) ? null : Math.round((seconds / wall) * 1000) / 10);
    const apps = appPids.map((pid, i) => {
      const now = processCpuSeconds(pid);
      return now === null || apps0[i] === null ? null : pct(now - apps0[i]);
    });
    const pgSeconds = postgres ? namedDelta(pg0, namedCpuSeconds('postgres')) : null;
    const self = process.cpuUsage(self0);
    const machine1 = machineCpuSeconds();
    const machineBusy = machine0 && machine1 ? pct(machine1.busy - machine0.busy) : null;
    const interrupts = machine0 && machine1 ? pct(machine1.interrupts - machine0.interrupts) : null;
    const steal = machine0 && machine1 ? pct(machine1.steal - machine0.steal) : null;
    const ours = [...apps, postgres ? pct(pgSeconds) : 0, pct((self.user + self.system) / 1e6)];
    return {
      wallSeconds: Math.round(wall * 100) / 100,
      appsPct: apps,
      postgresPct: pgSeconds === null ? null : pct(pgSeconds),
      loadGeneratorPct: pct((self.user + self.system) / 1e6),
      machineBusyPct: machineBusy,
      /** Kernel interrupt work (irq + softirq, e.g. loopback networking), not charged to any process. */
      interruptsPct: interrupts,
      /** Everything else on the machine: other processes and kernel time not charged to a process. */
      otherPct:
        machineBusy === null || ours.includes(null) || interrupts === null
          ? null
          : Math.max(0, Math.round((machineBusy - interrupts - ours.reduce((a, b) => a + b, 0)) * 10) / 10),
      /** Time the hypervisor gave to other guests while this one wanted the CPU (not in machineBusyPct). */
      stealPct: steal,
      machineCapacityPct: machineInfo().nproc * 100,
    };
  };
}

/** How busy the machine is before the run: load averages and CPU busy % over `ms`. */
export async function machineLoad(ms) {
  const reading = startCpuReading([], { postgres: false });
  await new Promise((r) => setTimeout(r, ms));
  const cpu = reading();
  return { loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100), busyPct: cpu.machineBusyPct, capacityPct: cpu.machineCapacityPct };
}
