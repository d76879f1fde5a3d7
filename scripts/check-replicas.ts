import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseReplicaDefinition, readStructuredFile } from '../src/config/load.js';

/**
 * Validates replica definition files against the agent's own schema; CI-friendly exit code (0
 * all valid, 2 otherwise). Arguments: files, or folders whose *.json, *.yaml and *.yml are
 * checked; none: the repository's own replicas/. `npm run` starts scripts in the package's
 * folder, so a relative path is taken from where npm was run (INIT_CWD), as the operator typed it.
 */
const repo = new URL('../..', import.meta.url).pathname;
const args = process.argv.slice(2);
const from = process.env['INIT_CWD'] ?? process.cwd();
const given = args.length > 0 ? args.map((a) => ({ label: a, path: isAbsolute(a) ? a : resolve(from, a) })) : [{ label: 'replicas', path: join(repo, 'replicas') }];

let failures = 0;
const fail = (message: string): void => {
  failures += 1;
  process.stdout.write(`FAIL ${message}\n`);
};

for (const { label, path } of given) {
  let files: Array<{ label: string; path: string }>;
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((n) => /\.(json|ya?ml)$/.test(n))
          .sort()
          .map((n) => ({ label: join(label, n), path: join(path, n) }))
      : [{ label, path }];
  } catch (err) {
    fail(`${label}: ${err instanceof Error ? err.message : String(err)}`);
    continue;
  }
  // A folder without definitions is most likely the wrong folder: "all valid" would hide that.
  if (files.length === 0) fail(`${label}: no replica definition files (*.json, *.yaml, *.yml) in this folder`);
  for (const file of files) {
    try {
      const data = readStructuredFile(file.path);
      // An agent config given by mistake: its missing `type` said nothing of that.
      if (typeof data === 'object' && data !== null && ('primary' in data || 'replicas' in data)) {
        fail(`${file.label}: an agent config, not a replica definition (hotspare agent --config checks those)`);
        continue;
      }
      // The fields after the file's name, not joined to it: "bad.json: thresholds.maxLagSeconds: ...".
      parseReplicaDefinition(data, '');
      process.stdout.write(`ok   ${file.label}\n`);
    } catch (err) {
      const lines = (err instanceof Error ? err.message : String(err)).split('\n');
      for (const line of lines) fail(`${file.label}: ${line.replace(/^\(top level\): /, '')}`);
    }
  }
}
process.exit(failures === 0 ? 0 : 2);
