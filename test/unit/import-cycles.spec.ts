import { join } from 'node:path';
import madge from 'madge';

/** `npx madge --circular --extensions ts src/backoffice-identity` as a test (also `npm run check:cycles`). */
describe('module graph', () => {
  it('has no import cycle (options, managers, hasher, email sender, ... and everything else)', async () => {
    const graph = await madge(join(__dirname, '../../src/backoffice-identity'), { fileExtensions: ['ts'] });
    expect(Object.keys(graph.obj()).length).toBeGreaterThan(100);
    expect(graph.circular()).toEqual([]);
  }, 60_000);

  it('keeps the port interfaces in leaf files that import no implementation', async () => {
    const graph = await madge(join(__dirname, '../../src/backoffice-identity'), { fileExtensions: ['ts'] });
    const deps = graph.obj();
    for (const leaf of ['users/passwords/password-hasher.interface.ts', 'users/passwords/password-checker.interface.ts', 'email/email-sender.interface.ts', 'common/ip-resolver.interface.ts']) {
      expect(deps[leaf], leaf).toBeDefined();
      // only other interfaces, plain types and the notification/http type files
      expect(deps[leaf].filter((d: string) => /\.(service|module|controller)\.ts$|manager\.ts$/.test(d)), leaf).toEqual([]);
    }
    // the plain options import no swap (manager, store, hasher, sender): those types sit beside the module
    const options = deps['options/backoffice-identity-options.interface.ts'];
    expect(options.filter((d: string) => /manager|password-hasher|email-sender|ip-resolver/.test(d))).toEqual([]);
  }, 60_000);
});
