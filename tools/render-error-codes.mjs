// Rewrites the README's error-code table from the registry (src/backoffice-identity/http/error-codes.ts).
// Run after `npm run build`: node tools/render-error-codes.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { renderBackOfficeErrorCodeTable } = require('../dist/backoffice-identity/http/error-codes.js');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const next = readme.replace(/<!-- error-codes:start -->[\s\S]*?<!-- error-codes:end -->/, `<!-- error-codes:start -->\n${renderBackOfficeErrorCodeTable()}\n<!-- error-codes:end -->`);
writeFileSync(new URL('../README.md', import.meta.url), next);
console.log(next === readme ? 'README error-code table up to date' : 'README error-code table rewritten');
