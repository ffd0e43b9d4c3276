import { runBackOfficeStoreContract } from '../../src/backoffice-identity/testing/index.js';
import type { BackOfficeStores } from '../../src/backoffice-identity/index.js';

/**
 * Runs the store contract's tests (those whose title matches `only`, or all) against the stores `make` hands back,
 * one after another; answers the titles of those that fail. For proving the contract catches a faulty store.
 */
export async function failingContractTests(make: () => BackOfficeStores | Promise<BackOfficeStores>, only?: RegExp): Promise<string[]> {
  const tests: Array<{ title: string; body: () => Promise<void> }> = [];
  runBackOfficeStoreContract('under test', async () => make(), {
    describe: (_name, body) => body(),
    it: (title, body) => void (only === undefined || only.test(title) ? tests.push({ title, body }) : undefined),
    expect,
  });
  const failing: string[] = [];
  for (const { title, body } of tests) {
    try {
      await body();
    } catch {
      failing.push(title);
    }
  }
  return failing;
}
