import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SyncAgent } from '../agent/sync-agent.js';
import type { LagReport } from '../agent/lag-monitor.js';
import { loadAgentConfig } from '../config/load.js';
import { LagServer } from '../http/lag-server.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { compareArchiveWithPrimary, primaryBinlogFiles } from '../sandbox/binlog-compare.js';
import { freePort } from '../sandbox/free-port.js';
import { MariadbServer } from '../sandbox/mariadb-server.js';
import { tableChecksums } from '../sandbox/table-checksums.js';
import { describeTree, treeDiff } from '../sandbox/tree-compare.js';
import { promote } from '../standby/promote.js';
import { startReceiver, type Receiver } from '../standby/receiver/receiver.js';
import { createDemoSchema, createDemoSpool, demoFilesTick, demoTick } from './demo-workload.js';
import { childLogger } from '../platform/logger.js';

/** How long the demo's write workload runs by default. */
export const DEFAULT_DEMO_SECONDS = 8;
/** Pause between workload ticks: a few hundred transactions a second on a small machine. */
const DEMO_TICK_MS = 20;
/** A tick count at which the primary switches binlog files, so the archive spans several. */
const DEMO_ROTATE_EVERY_TICKS = 150;
/** How long the demo waits for the standby to catch up before it calls the run a failure. */
const CATCH_UP_TIMEOUT_MS = 60_000;
/** Consecutive caught-up polls (100 ms apart) before the demo takes the standby as caught up. */
const CATCH_UP_QUIET_POLLS = 5;

export interface DemoOptions {
  /** The demo's own folder: servers, archive, spool, configs. */
  dir: string;
  seconds: number;
  out: (line: string) => void;
  logger: Logger;
  clock: Clock;
}

/**
 * The embedded default, end to end on one machine: a throwaway primary and standby, a
 * gateway-style spool directory, `receive` on the standby's archive, the agent streaming both
 * to it over loopback, a write workload with live lag read from the real endpoint, then the
 * primary "lost": the standby promoted, and primary and standby compared side by side
 * (binlog bytes, CHECKSUM TABLE, spool tree). Returns whether everything matched.
 */
export async function runDemo(options: DemoOptions): Promise<boolean> {
  const { dir, out, logger, clock } = options;
  const servers: MariadbServer[] = [];
  let receiver: Receiver | undefined;
  let agent: SyncAgent | undefined;
  let lagServer: LagServer | undefined;
  try {
    const [primary, standby] = await Promise.all([
      MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') }),
      MariadbServer.start({ serverId: 2, binlog: false, baseDir: join(dir, 'standby'), extraArgs: ['--read-only=ON'] }),
    ]);
    servers.push(primary, standby);
    out(`primary: MariaDB on 127.0.0.1:${primary.port} (binlog ROW, CRC32); standby: 127.0.0.1:${standby.port}, read-only`);

    const archive = join(dir, 'standby-archive');
    const token = 'demo-token-not-secret';
    writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    receiver = await startReceiver({ archive, listen: { host: '127.0.0.1', port: 0 }, token, logger: childLogger(logger, { demo: 'receiver' }), clock });
    out(`receive: archive ${archive}, listening on 127.0.0.1:${receiver.address.port}`);

    const spool = join(dir, 'gateway');
    createDemoSpool(spool);
    const configPath = writeDemoConfig({ dir, primary, receiverPort: receiver.address.port, httpPort: await freePort(), spool });
    const config = loadAgentConfig(configPath);
    agent = new SyncAgent(config, await SyncAgent.preflight(config), { logger: childLogger(logger, { demo: 'agent' }), clock, random01: Math.random });
    await agent.checkReplicas();
    const running = agent;
    lagServer = await LagServer.listen({ ...(config.http as { host: string; port: number }), report: (nowMs) => running.lag.report(nowMs), clock, logger: childLogger(logger, { component: 'lag-server' }) });
    agent.start();
    const lagUrl = `http://${lagServer.address}/lag`;
    out(`agent: config ${configPath}; lag endpoint ${lagUrl}`);

    const conn = await primary.connect();
    let ticks = 0;
    try {
      await createDemoSchema(conn);
      const endMs = clock.nowMs() + options.seconds * 1000;
      let nextReportMs = 0;
      while (clock.nowMs() < endMs) {
        await demoTick(conn, ticks);
        demoFilesTick(spool, ticks);
        ticks += 1;
        if (ticks % DEMO_ROTATE_EVERY_TICKS === 0) await conn.query('FLUSH BINARY LOGS');
        if (clock.nowMs() >= nextReportMs) {
          nextReportMs = clock.nowMs() + 1000;
          out(`  ${String(ticks).padStart(5)} ticks  ${describeLag(await fetchLag(lagUrl))}`);
        }
        await new Promise((r) => setTimeout(r, DEMO_TICK_MS));
      }
    } finally {
      await conn.end();
    }
    out(`workload done: ${ticks} ticks (a feed sample, a message transaction and its spool files each)`);

    const caughtUp = await waitForCatchUp(lagUrl, clock);
    out(`  caught up: ${describeLag(caughtUp)}`);
    const binlog = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
    const expectedFiles = primaryBinlogFiles(primary.datadir, binlog.files[0]);
    const binlogSame = binlog.differences.length === 0 && binlog.files.join() === expectedFiles.join();
    out(`archive vs primary binlog: ${binlog.files.length} files, ${binlogSame ? 'identical byte for byte' : `DIFFERENT: ${JSON.stringify(binlog.differences)}`}`);

    // The primary is "lost": the agent and the receiver stop, and the standby takes over.
    await lagServer.close();
    lagServer = undefined;
    await agent.stop();
    agent = undefined;
    await receiver.close();
    receiver = undefined;
    out('primary lost: agent and receiver stopped; promoting the standby');
    const filesRoot = join(dir, 'restored-files');
    const report = await promote({
      archiveRoot: archive,
      target: { kind: 'end' },
      credentials: { user: 'root', password: '', socketPath: standby.socketPath },
      targetDescription: `standby 127.0.0.1:${standby.port}`,
      replace: false,
      dryRun: false,
      filesRoot,
      logger: childLogger(logger, { demo: 'promote' }),
    });
    const last = report.lastTransaction;
    out(`promoted from base ${report.base.id}: replayed ${report.replayBytes} bytes to ${report.stopAt.file}:${report.stopAt.position}`);
    out(`  last transaction ${last === undefined ? 'none' : `${last.gtid ?? ''} committed ${last.commitTime}`}; loss window ${report.lossWindowSeconds ?? '?'} s`);

    const primaryConn = await primary.connect();
    const standbyConn = await standby.connect();
    const [before, after] = await Promise.all([tableChecksums(primaryConn), tableChecksums(standbyConn)]).finally(() => Promise.all([primaryConn.end(), standbyConn.end()]));
    out('CHECKSUM TABLE            primary        standby');
    let tablesSame = true;
    for (const table of Object.keys(before)) {
      const same = before[table] === after[table];
      tablesSame &&= same;
      out(`  ${table.padEnd(22)} ${String(before[table]).padStart(12)}  ${String(after[table]).padStart(12)}  ${same ? 'equal' : 'DIFFERENT'}`);
    }
    const skipLog = (rel: string): boolean => rel === 'log' || rel.startsWith('log/');
    const files = treeDiff(await describeTree(spool, skipLog), await describeTree(join(filesRoot, 'gateway')));
    out(`spool tree (log/ excluded) vs restored: ${files.length === 0 ? 'identical (bytes, modes, times, links)' : `DIFFERENT: ${files.join('; ')}`}`);
    const ok = binlogSame && tablesSame && files.length === 0;
    out(ok ? 'demo OK: the standby holds exactly what the primary had' : 'demo FAILED: see the differences above');
    return ok;
  } finally {
    await lagServer?.close();
    await agent?.stop();
    await receiver?.close();
    await Promise.all(servers.map((s) => s.destroy()));
  }
}

/** The agent config a user would write, as a file: the demo loads it like `hotspare agent` does. */
function writeDemoConfig(p: { dir: string; primary: MariadbServer; receiverPort: number; httpPort: number; spool: string }): string {
  const path = join(p.dir, 'agent.json');
  const config = {
    primary: { socketPath: p.primary.socketPath, user: 'root', password: '', serverId: 4242 },
    stateDir: join(p.dir, 'agent-state'),
    replicas: [{ name: 'standby', type: 'remote', address: `127.0.0.1:${p.receiverPort}`, tokenFile: join(p.dir, 'token'), thresholds: { maxLagSeconds: 5 } }],
    spool: [{ name: 'gateway', path: p.spool, exclude: ['log/**'] }],
    http: { listen: `127.0.0.1:${p.httpPort}` },
  };
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

async function fetchLag(url: string): Promise<LagReport> {
  const response = await fetch(url);
  return (await response.json()) as LagReport;
}

function describeLag(report: LagReport): string {
  return report.replicas
    .map((r) => `${r.name}: ${r.state}, ${r.binlog.bytesBehind} bytes / ${r.binlog.secondsBehind.toFixed(3)} s behind, files pending ${r.files.pendingChanges}`)
    .join('; ');
}

async function waitForCatchUp(url: string, clock: Clock): Promise<LagReport> {
  const deadline = clock.nowMs() + CATCH_UP_TIMEOUT_MS;
  // File changes are seen after a short debounce: caught up means caught up for a while.
  let quietPolls = 0;
  for (;;) {
    const report = await fetchLag(url);
    const done = report.replicas.every((r) => r.state === 'streaming' && r.binlog.bytesBehind === 0 && r.binlog.secondsBehind === 0 && r.files.pendingChanges === 0);
    quietPolls = done ? quietPolls + 1 : 0;
    if (quietPolls >= CATCH_UP_QUIET_POLLS || clock.nowMs() > deadline) return report;
    await new Promise((r) => setTimeout(r, 100));
  }
}
