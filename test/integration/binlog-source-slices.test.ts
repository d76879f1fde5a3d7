import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { BehaviorSubject, type Subscription } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BINLOG_MAGIC } from '../../src/core/binlog-event.js';
import { BinlogStreamFramer } from '../../src/core/binlog-stream-framer.js';
import { silentLogger } from '../../src/platform/logger.js';
import { binlogSource } from '../../src/primary/binlog-source.js';
import { compareArchiveWithPrimary, primaryBinlogFiles } from '../../src/sandbox/binlog-compare.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { waitFor } from '../support/wait.js';

/**
 * Goal: a backlog is taken a slice per turn of the event loop (so the lag endpoint is never
 * held up by a catch-up), with nothing lost or reordered by the slice pauses or by
 * flow-control pauses in between. Method: a real primary with a backlog of small
 * transactions across two files, the real dump with a slice of 8 events; a setImmediate
 * ticker counts the turns; the framed records, written out as files, must equal the
 * primary's binlog byte for byte.
 */
const SLICE_EVENTS = 8;
const TRANSACTIONS = 1_500;
const FLOW_PAUSE_EVERY_RECORDS = 1_000;
const FLOW_PAUSE_TURNS = 20;

describe('binlog source', () => {
  let dir: string;
  let primary: MariadbServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-source-'));
    primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
  });

  afterAll(async () => {
    await primary?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('an idle dump outlives the server closing its idle control connection (wait_timeout)', async () => {
    const conn = await primary.connect();
    const [logs] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS');
    const head = { file: String(logs[0]?.['File']), position: Number(logs[0]?.['Position']) };
    // Sessions opened from now on are closed by the server after 2 s of silence.
    await conn.query('SET GLOBAL wait_timeout = 2');
    let failure: unknown;
    let heartbeats = 0;
    const framer = new BinlogStreamFramer(head);
    const subscription = binlogSource({
      primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4411 },
      serverId: 4411,
      framer,
      tuning: { heartbeatPeriodMs: 500, idleTimeoutMs: 5_000, netWriteTimeoutS: 60 },
      paused$: new BehaviorSubject(false),
      logger: silentLogger(),
    }).subscribe({
      next: (framed) => {
        if (framed.kind === 'skip' && framed.reason === 'heartbeat') heartbeats += 1;
      },
      error: (err: unknown) => (failure = err),
    });
    try {
      await new Promise((r) => setTimeout(r, 4_500));
      expect(failure).toBeUndefined();
      expect(heartbeats).toBeGreaterThanOrEqual(4);
      // And it still streams.
      await conn.query('CREATE DATABASE after_idle');
      await waitFor('the statement to stream', () => framer.next.position > head.position, 10_000, 5);
    } finally {
      subscription.unsubscribe();
      await conn.query('SET GLOBAL wait_timeout = 28800');
      await conn.end();
    }
  });

  it('takes a backlog one slice per turn of the event loop, through flow-control pauses, byte for byte', async () => {
    const conn = await primary.connect();
    const [logs] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
    const first = String(logs[0]?.['Log_name']);
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB');
    for (let i = 0; i < TRANSACTIONS; i++) {
      await conn.query('INSERT INTO app.t (v) VALUES (?)', [`backlog row ${i}`]);
      if (i === TRANSACTIONS / 2) await conn.query('FLUSH BINARY LOGS');
    }
    const [status] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS');
    await conn.end();
    const head = { file: String(status[0]?.['File']), position: Number(status[0]?.['Position']) };

    const framer = new BinlogStreamFramer({ file: first, position: 4 });
    const paused$ = new BehaviorSubject(false);
    const files = new Map<string, Buffer[]>();
    let records = 0;
    let turn = 0;
    let eventsThisTurn = 0;
    let mostInOneTurn = 0;
    let flowPauses = 0;
    let pausedAtTurn = 0;
    let eventsWhileFlowPaused = 0;
    let subscription: Subscription | undefined;
    let ticking = true;
    const tick = (): void => {
      turn++;
      eventsThisTurn = 0;
      if (paused$.value && turn - pausedAtTurn >= FLOW_PAUSE_TURNS) paused$.next(false);
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    try {
      await new Promise<void>((resolve, reject) => {
        subscription = binlogSource({
          primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4_300 },
          serverId: 4_301,
          framer,
          tuning: { heartbeatPeriodMs: 1_000, idleTimeoutMs: 30_000, netWriteTimeoutS: 60 },
          paused$,
          slice: { events: SLICE_EVENTS, bytes: 1024 * 1024 * 1024 },
          logger: silentLogger(),
        }).subscribe({
          next: (framed) => {
            if (paused$.value) eventsWhileFlowPaused++;
            eventsThisTurn++;
            mostInOneTurn = Math.max(mostInOneTurn, eventsThisTurn);
            if (framed.kind === 'record') {
              const { record } = framed;
              const parts = files.get(record.file) ?? [BINLOG_MAGIC];
              files.set(record.file, parts);
              expect(record.offset).toBe(parts.reduce((n, b) => n + b.length, 0));
              parts.push(record.bytes);
              records++;
              if (records % FLOW_PAUSE_EVERY_RECORDS === 0) {
                // Flow control, as the pipeline does it above the high-water mark.
                paused$.next(true);
                pausedAtTurn = turn;
                flowPauses++;
              }
            }
            if (framer.file === head.file && framer.position >= head.position) resolve();
          },
          error: reject,
        });
      });
    } finally {
      ticking = false;
      subscription?.unsubscribe();
    }

    expect(records).toBeGreaterThan(TRANSACTIONS * 4);
    expect(flowPauses).toBeGreaterThanOrEqual(5);
    // Nothing comes while flow control holds the dump, and no turn of the loop handles more
    // than a slice in its I/O phase plus one in its immediate phase.
    expect(eventsWhileFlowPaused).toBe(0);
    expect(mostInOneTurn).toBeLessThanOrEqual(2 * SLICE_EVENTS);
    expect(turn).toBeGreaterThan(records / (2 * SLICE_EVENTS));

    const out = join(dir, 'binlog');
    mkdirSync(out);
    for (const [file, parts] of files) writeFileSync(join(out, file), Buffer.concat(parts));
    const comparison = compareArchiveWithPrimary(out, primary.datadir);
    expect(comparison.differences).toEqual([]);
    expect(comparison.files).toEqual(primaryBinlogFiles(primary.datadir, first));
    expect(comparison.files.length).toBeGreaterThanOrEqual(2);
  });
});
