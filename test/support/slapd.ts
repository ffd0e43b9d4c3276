import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';
import type { LdapPasswordCheckerOptions } from '../../src/backoffice-identity/index.js';

export const LDAP_SUFFIX = 'dc=example,dc=org';
export const LDAP_PEOPLE = `ou=people,${LDAP_SUFFIX}`;
export const LDAP_READER = { dn: `cn=reader,${LDAP_SUFFIX}`, password: 'reader secret 42' };
/** The directory's root DN, to change entries while the server runs (offboarding tests). */
export const LDAP_ADMIN = { dn: `cn=admin,${LDAP_SUFFIX}`, password: 'admin secret 42' };

/** A directory user of the seed LDIF. */
export interface SeedUser {
  uid: string;
  cn: string;
  mail?: string;
  password: string;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`slapd did not listen on ${port} within ${timeoutMs} ms`);
}

const dnValue = (value: string) => value.replace(/[",+;<>\\=]/g, (c) => `\\${c}`);

/**
 * A real OpenLDAP `slapd` (Debian package) for one test suite: a generated `slapd.conf` (mdb backend, the core,
 * cosine and inetorgperson schemas), a seed LDIF loaded with `slapadd`, a self-signed certificate for LDAPS and
 * StartTLS, listening on free loopback ports, all in a temporary folder removed by {@link stop}.
 */
export class TestSlapd {
  readonly dir = mkdtempSync(join(tmpdir(), 'bo-slapd-'));
  ldapPort = 0;
  ldapsPort = 0;
  private process?: ChildProcess;
  certificate = '';

  static available(): boolean {
    return ['/usr/sbin/slapd', '/usr/sbin/slapadd'].every((p) => existsSync(p)) && existsSync('/etc/ldap/schema/inetorgperson.schema');
  }

  get url(): string {
    return `ldap://127.0.0.1:${this.ldapPort}`;
  }
  get ldapsUrl(): string {
    return `ldaps://127.0.0.1:${this.ldapsPort}`;
  }

  /**
   * Options for an `LdapPasswordChecker` that searches this directory as the read-only account, over cleartext
   * loopback (its TLS ports are tested with their own options), with short timeouts; `extra` overrides any of them.
   */
  checkerOptions(extra: Partial<LdapPasswordCheckerOptions> = {}): LdapPasswordCheckerOptions {
    return {
      url: this.url,
      bindDn: LDAP_READER.dn,
      bindPassword: LDAP_READER.password,
      searchBase: LDAP_PEOPLE,
      allowInsecureConnection: true,
      connectTimeoutMs: 1000,
      timeoutMs: 2000,
      ...extra,
    };
  }

  async start(users: SeedUser[]): Promise<this> {
    if (!TestSlapd.available()) throw new Error('Debian slapd is not installed: apt-get install slapd ldap-utils (or SKIP_SLAPD_TESTS=1)');
    const data = join(this.dir, 'data');
    mkdirSync(data);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(this.dir, 'key.pem'), '-out', join(this.dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    this.certificate = readFileSync(join(this.dir, 'cert.pem'), 'utf8');
    writeFileSync(
      join(this.dir, 'slapd.conf'),
      [
        'include /etc/ldap/schema/core.schema',
        'include /etc/ldap/schema/cosine.schema',
        'include /etc/ldap/schema/inetorgperson.schema',
        `pidfile ${join(this.dir, 'slapd.pid')}`,
        `argsfile ${join(this.dir, 'slapd.args')}`,
        'modulepath /usr/lib/ldap',
        'moduleload back_mdb',
        `TLSCertificateFile ${join(this.dir, 'cert.pem')}`,
        `TLSCertificateKeyFile ${join(this.dir, 'key.pem')}`,
        'database mdb',
        'maxsize 10485760',
        `suffix "${LDAP_SUFFIX}"`,
        `rootdn "${LDAP_ADMIN.dn}"`,
        `rootpw "${LDAP_ADMIN.password}"`,
        `directory ${data}`,
        'access to attrs=userPassword by self write by anonymous auth by * none',
        'access to * by users read by * none',
        '',
      ].join('\n'),
    );
    const entries = [
      `dn: ${LDAP_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example`,
      `dn: ${LDAP_PEOPLE}\nobjectClass: organizationalUnit\nou: people`,
      `dn: ${LDAP_READER.dn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: ${LDAP_READER.password}`,
      ...users.map(
        (u) =>
          `dn: uid=${dnValue(u.uid)},${LDAP_PEOPLE}\nobjectClass: inetOrgPerson\nuid: ${u.uid}\ncn: ${u.cn}\nsn: ${u.cn.split(' ').pop()}\n` +
          `${u.mail ? `mail: ${u.mail}\n` : ''}userPassword: ${u.password}`,
      ),
    ];
    writeFileSync(join(this.dir, 'seed.ldif'), `${entries.join('\n\n')}\n`);
    execFileSync('/usr/sbin/slapadd', ['-f', join(this.dir, 'slapd.conf'), '-l', join(this.dir, 'seed.ldif')], { stdio: 'pipe' });
    this.ldapPort = await freePort();
    this.ldapsPort = await freePort();
    await this.resume();
    return this;
  }

  /** Deletes a seed user's entry from the running directory (as the root DN): the user is offboarded. */
  async deleteUser(uid: string): Promise<void> {
    const client = new Client({ url: this.url, timeout: 5000, connectTimeout: 5000 });
    try {
      await client.bind(LDAP_ADMIN.dn, LDAP_ADMIN.password);
      await client.del(`uid=${dnValue(uid)},${LDAP_PEOPLE}`);
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  /** Starts (again) the server on the same ports and data. */
  async resume(): Promise<void> {
    const urls = `ldap://127.0.0.1:${this.ldapPort}/ ldaps://127.0.0.1:${this.ldapsPort}/`;
    this.process = spawn('/usr/sbin/slapd', ['-f', join(this.dir, 'slapd.conf'), '-h', urls, '-d', '0'], { stdio: 'ignore' });
    await waitForPort(this.ldapPort, 10_000);
    await waitForPort(this.ldapsPort, 10_000);
  }

  /** Stops the server (the directory goes down), keeping its data for {@link resume}. */
  async pause(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.pause();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
