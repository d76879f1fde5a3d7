// Runs the format-3 hotspare (b9a1db4) over /tmp/rv5-up/src into /tmp/rv5-up/archive: passes at the clock times given.
import { SpoolSyncer } from '/tmp/rv5-old/dist/src/spool/spool-syncer.js';
import { LocalArchiveFiles } from '/tmp/rv5-old/dist/src/archive/archive-files.js';
import { spoolSourceSchema } from '/tmp/rv5-old/dist/src/config/schema.js';
import { silentLogger } from '/tmp/rv5-old/dist/src/platform/logger.js';
import { appendFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
const [src, archive, t0] = process.argv.slice(2);
let now = Number(t0);
const s = new SpoolSyncer({ source: spoolSourceSchema.parse({ name: 'feeds', path: src, retentionSeconds: 100000, blockBytes: 4096 }), files: new LocalArchiveFiles(archive), logger: silentLogger(), clock: { nowMs: () => now }, tuning: { watch: false, racyWindowMs: 0 } });
s.start();
await s.syncNow();
for (let k = 0; k < 3; k++) {
  now += 10000;
  await appendFile(`${src}/a.dat`, randomBytes(5));
  await s.syncNow();
}
await s.stop();
process.stdout.write(String(now));
