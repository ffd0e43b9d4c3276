import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import * as OTPAuth from 'otpauth';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's chromium (no browser download). Missing chromium fails loudly under CI=true; elsewhere the browser
 * suites are skipped with a warning.
 */
export function chromiumPath(): string | undefined {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (found && existsSync(found)) return found;
    } catch {
      // not installed under this name
    }
  }
  if (process.env.CI === 'true' || process.env.CI === '1') {
    throw new Error('chromium is not installed: the browser tests need Debian\'s chromium package (apt-get install -y chromium); .ci/run installs it');
  }
  console.warn('\n!! chromium is not installed: browser suites are skipped (CI=true makes this an error).\n');
  return undefined;
}

export async function launchBrowser(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, args: ['--no-sandbox'], headless: true });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A temp folder for the `.eml` pickup files. */
export async function mailFolder(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'bo-browser-mail-'));
  await mkdir(dir, { recursive: true });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The newest `.eml` to `to` in the pickup folder, as parsed by mailparser (waits up to 10 s for it). */
export async function latestMailTo(dir: string, to: string, after = 0): Promise<{ subject: string; text: string; link: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.eml'));
    const candidates: Array<{ mtime: number; file: string }> = [];
    for (const file of files) {
      const info = await stat(join(dir, file));
      if (info.mtimeMs >= after) candidates.push({ mtime: info.mtimeMs, file });
    }
    candidates.sort((a, b) => b.mtime - a.mtime);
    for (const { file } of candidates) {
      const mail = await simpleParser(await readFile(join(dir, file)));
      const recipients = [mail.to].flat().flatMap((a) => (a ? a.value.map((v) => v.address?.toLowerCase()) : []));
      if (recipients.includes(to.toLowerCase())) {
        const link = /(https?:\/\/\S+#userId=\S+)/.exec(mail.text ?? '')?.[1];
        if (!link) throw new Error(`no link in the mail to ${to}`);
        return { subject: mail.subject ?? '', text: mail.text ?? '', link };
      }
    }
    if (Date.now() > deadline) throw new Error(`no mail to ${to} in ${dir}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The TOTP code an authenticator app shows for `secret` at `time`. */
export function totpCode(secret: string, time: Date): string {
  return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate({ timestamp: time.getTime() });
}

const AXE_SOURCE = join(__dirname, '..', '..', '..', 'node_modules', 'axe-core', 'axe.min.js');

export interface AxeSummary {
  violations: Array<{ id: string; impact: string | null; nodes: number; help: string }>;
  passes: number;
}

/** Runs axe-core (WCAG 2.0/2.1/2.2 A and AA rules, among them 2.2's target-size) on the page; the context must have bypassCSP to inject it. */
export async function axeScan(page: Page): Promise<AxeSummary> {
  await page.addScriptTag({ path: AXE_SOURCE });
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<any> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } });
    return {
      violations: result.violations.map((v: any) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help })),
      passes: result.passes.length,
    };
  });
}

/** Bytes a page load moved over the network (headers + encoded bodies) for every request it made. */
export async function transferredBytes(context: BrowserContext, url: string): Promise<{ total: number; requests: Array<{ url: string; bytes: number }> }> {
  const page = await context.newPage();
  const requests: Array<{ url: string; bytes: number }> = [];
  const pending: Promise<void>[] = [];
  page.on('requestfinished', (request) => {
    pending.push(
      request.sizes().then((sizes) => {
        requests.push({ url: request.url(), bytes: sizes.responseBodySize + sizes.responseHeadersSize + sizes.requestHeadersSize + sizes.requestBodySize });
      }),
    );
  });
  await page.goto(url, { waitUntil: 'networkidle' });
  await Promise.all(pending);
  await page.close();
  return { total: requests.reduce((sum, r) => sum + r.bytes, 0), requests };
}
