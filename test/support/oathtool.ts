import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const OATHTOOL = ['/usr/bin/oathtool', '/usr/local/bin/oathtool'].find((p) => existsSync(p));

/** A TOTP code from an independent implementation (Debian's oathtool), at the given clock's time. */
export function independentCode(secret: string, clock: { now(): Date }, stepOffset = 0): string {
  if (!OATHTOOL) throw new Error('oathtool is not installed (apt-get install oathtool); .ci/run installs it');
  const epoch = Math.floor(clock.now().getTime() / 1000) + stepOffset * 30;
  return execFileSync(OATHTOOL, ['--totp', '-b', secret, '-N', `@${epoch}`], { encoding: 'utf8' }).trim();
}
