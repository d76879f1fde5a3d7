import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseReplicaDefinition, readStructuredFile } from '../src/config/load.js';

/** Validates every replicas/*.json against the agent's own schema; CI-friendly exit code. */
const dir = new URL('../../replicas', import.meta.url).pathname;
let failures = 0;
for (const name of readdirSync(dir).filter((n) => /\.(json|ya?ml)$/.test(n))) {
  try {
    parseReplicaDefinition(readStructuredFile(join(dir, name)), `replicas/${name}`);
    process.stdout.write(`ok   replicas/${name}\n`);
  } catch (err) {
    failures += 1;
    process.stdout.write(`FAIL ${err instanceof Error ? err.message : String(err)}\n`);
  }
}
process.exit(failures === 0 ? 0 : 2);
