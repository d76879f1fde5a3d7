import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SyncAgent } from '../agent/sync-agent.js';
import type { AgentConfig } from '../config/load.js';
import { agentConfigSchema } from '../config/schema.js';
import { createDemoSchema, demoTick } from '../demo/demo-workload.js';
import { systemClock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { compareArchiveWithPrimary, primaryBinlogFiles } from '../sandbox/binlog-compare.js';
import { MariadbServer } from '../sandbox/mariadb-server.js';

/** How long the demo's write workload runs by default. */
const DEFAULT_DEMO_SECONDS = 8;
const DEMO_TICK_MS = 20;
const CATCH_UP_TIMEOUT_MS = 60_000;

/**
 * `hotspare demo`: the whole product on one machine, in a temporary folder. A throwaway
 * primary, the agent streaming to an archive, a write workload with live progress, and at the
 * end the archive compared with the primary's binlog byte for byte. Human output on stdout.
 */
export async function demoCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { seconds: { type: 'string' }, keep: { type: 'boolean' } }, strict: true });
  const seconds = values.seconds === undefined ? DEFAULT_DEMO_SECONDS : Number(values.seconds);
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'hotspare-demo-'));
  out(`hotspare demo in ${dir}`);
  const primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
  out(`primary: MariaDB on 127.0.0.1:${primary.port} (binlog ROW, CRC32)`);
  let agent: SyncAgent | undefined;
  try {
    const archive = join(dir, 'archive');
    const config = demoConfig(primary, dir, archive);
    const identity = await SyncAgent.preflight(config);
    agent = new SyncAgent(config, identity, { logger: logger.child({ component: 'demo-agent' }), clock: systemClock, random01: Math.random });
    await agent.checkReplicas();
    agent.start();
    out(`agent: streaming to the archive at ${archive}`);

    const conn = await primary.connect();
    await createDemoSchema(conn);
    const until = Date.now() + seconds * 1000;
    let tick = 0;
    let lastReport = 0;
    while (Date.now() < until) {
      await demoTick(conn, tick);
      tick += 1;
      if (tick % 200 === 0) await conn.query('FLUSH BINARY LOGS');
      if (Date.now() - lastReport >= 1000) {
        lastReport = Date.now();
        const durable = agent.trackers[0]?.snapshot.durable;
        out(`  ${tick} ticks written; archive durable at ${durable === undefined ? '-' : `${durable.file}:${durable.position}`}`);
      }
      await new Promise((r) => setTimeout(r, DEMO_TICK_MS));
    }
    await conn.end();
    out(`workload done: ${tick} ticks (feed samples + message transactions)`);

    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    let comparison = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
    while ((comparison.differences.length > 0 || comparison.files.length === 0 || comparison.files.length < primaryBinlogFiles(primary.datadir, comparison.files[0]).length) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      comparison = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
    }
    const same = comparison.differences.length === 0 && comparison.files.join() === primaryBinlogFiles(primary.datadir, comparison.files[0]).join();
    out(`archive vs primary binlog: ${comparison.files.length} files, ${same ? 'identical byte for byte' : `DIFFERENT: ${JSON.stringify(comparison.differences)}`}`);
    return same ? 0 : 1;
  } finally {
    await agent?.stop();
    await primary.destroy();
    if (values.keep !== true) rmSync(dir, { recursive: true, force: true });
  }
}

function demoConfig(primary: MariadbServer, dir: string, archive: string): AgentConfig {
  const raw = agentConfigSchema.parse({
    primary: { socketPath: primary.socketPath, user: 'root', serverId: 4242 },
    stateDir: join(dir, 'state'),
    replicas: [{ name: 'standby', type: 'file', path: archive }],
  });
  return {
    primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 },
    stateDir: raw.stateDir,
    replicas: raw.replicas.filter((r) => typeof r !== 'string'),
    spool: raw.spool,
    http: undefined,
    binlog: raw.binlog,
    sourcePath: '(demo)',
  };
}
