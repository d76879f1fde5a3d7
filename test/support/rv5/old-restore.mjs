import { restoreSpool } from '/tmp/rv5-old/dist/src/standby/spool-restore.js';
import { verifySpoolArchive } from '/tmp/rv5-old/dist/src/standby/spool-verify.js';
import { silentLogger } from '/tmp/rv5-old/dist/src/platform/logger.js';
const [archive, root] = process.argv.slice(2);
const r = await restoreSpool({ archiveDir: archive, filesRoot: root, logger: silentLogger() });
const v = await verifySpoolArchive(archive, silentLogger());
process.stdout.write(JSON.stringify({ restore: r.map((x) => x.skipCode ?? 'ok'), verify: v.map((x) => x.problems) }));
