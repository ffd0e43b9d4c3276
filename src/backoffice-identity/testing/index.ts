/**
 * `backoffice-identity/testing`: what host apps' own tests use. Imports no test runner: pass yours.
 */
export {
  runBackOfficeStoreContract,
  type BackOfficeStoreFactory,
  type StoreContractExpectation,
  type StoreContractTestApi,
} from './store-contract.js';
export { InMemoryBackOfficeStores, type InMemoryBackOfficeStoreSet } from '../persistence/in-memory/in-memory-backoffice-stores.js';
