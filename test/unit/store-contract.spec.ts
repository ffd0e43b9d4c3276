import { InMemoryBackOfficeStores, runBackOfficeStoreContract } from '../../src/backoffice-identity/testing/index.js';

// The in-memory stores shipped for host apps' tests keep the same contract as the database.
runBackOfficeStoreContract('in-memory stores', async () => InMemoryBackOfficeStores.create(), { describe, it, expect });
