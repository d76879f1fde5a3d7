import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { captureLogger } from '../support/capture-logger.js';
import { describeTree, treeDiff } from '../support/spool-tree-compare.js';
import { localSyncer } from '../support/spool-pass.js';

/**
 * Goal: what the agent cannot ship is never lost without a word. A name that is not valid UTF-8
 * (Linux allows any bytes but '/' and NUL): the journal records paths as JSON text and cannot
 * hold it, so the agent says which it skipped, and a restore over a target holding one restores
 * the rest around it.
 * A path too long to open (ENAMETOOLONG) is named as unreadable. Method: real files with such
 * names (made through Buffer paths) and paths, a real syncer and restore.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-spool-names-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `parent/name` as a Buffer path, so the name's bytes reach the file system as they are. */
const bytesPath = (parent: string, name: Buffer): Buffer => Buffer.concat([Buffer.from(`${parent}/`), name]);


/** Two full passes of source `gw` at `src` into `archive` (the second must not warn again); the log lines. */
async function twoPasses(src: string, archive: string): Promise<ReturnType<typeof captureLogger>['lines']> {
  const { logger, lines } = captureLogger();
  const s = localSyncer('gw', src, archive, { logger });
  s.start();
  await s.syncNow();
  await s.syncNow();
  await s.stop();
  return lines;
}

describe('spool names and paths the agent cannot ship', () => {
  it('the agent names each file and folder it cannot record, ships the rest, and a restore over such a name on the target goes on around it', async () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'queue'), { recursive: true });
    writeFileSync(join(src, 'queue', 'msg-1'), 'first message\n');
    writeFileSync(join(src, 'seqno'), '41\n');
    // Latin-1 'é' (0xe9) as a gateway on a latin1 locale writes it; and a folder named so.
    writeFileSync(bytesPath(join(src, 'queue'), Buffer.from([0x63, 0x61, 0x66, 0xe9])), 'latin-1 name\n');
    mkdirSync(bytesPath(src, Buffer.from([0x62, 0x80, 0x64])));
    writeFileSync(Buffer.concat([bytesPath(src, Buffer.from([0x62, 0x80, 0x64])), Buffer.from('/inner')]), 'inside\n');

    const archive = join(dir, 'archive');
    const lines = await twoPasses(src, archive);
    const warned = lines().filter((l) => l.code === 'SPOOL_NAME_NOT_UTF8');
    // Once per path, its bad bytes shown escaped; a folder's contents are not listed one by one.
    expect(warned.map((l) => l['path']).sort()).toEqual(['b\\x80d', 'queue/caf\\xe9']);
    expect(warned.every((l) => typeof l['hint'] === 'string')).toBe(true);

    // The target already holds such a name (a leftover, or a copy made by other means).
    const root = join(dir, 'restored');
    mkdirSync(join(root, 'gw', 'queue'), { recursive: true });
    const leftover = Buffer.from([0x6f, 0x6c, 0x64, 0xff]);
    writeFileSync(bytesPath(join(root, 'gw', 'queue'), leftover), 'left over\n');
    const restoreLog = captureLogger();
    const [result] = await restoreSpool({ archiveDir: archive, filesRoot: root, logger: restoreLog.logger });
    expect(result?.skipCode).toBeUndefined();
    expect(restoreLog.lines().filter((l) => l.code === 'SPOOL_NAME_NOT_UTF8').map((l) => l['path'])).toEqual(['queue/old\\xff']);
    expect(readFileSync(bytesPath(join(root, 'gw', 'queue'), leftover), 'utf8')).toBe('left over\n');
    // Everything else is there, as it is in the source (the comparison reads names as text: the
    // odd names are left out of both sides by their own checks above).
    const oddName = (rel: string): boolean => rel.includes('\ufffd');
    expect(treeDiff(await describeTree(src, oddName), await describeTree(join(root, 'gw'), oddName))).toEqual([]);
    expect(readdirSync(join(root, 'gw', 'queue')).length).toBe(2);
  });

  it('a path deeper than PATH_MAX (ENAMETOOLONG) is named as unreadable, not left out without a word', async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'seqno'), '7\n');
    // 20 folders of 243-byte names, about 4,900 bytes below the source, past Linux's 4,096: two
    // chains of 10, each short enough to make, the second then moved into the first.
    const chain = (from: number): string => Array.from({ length: 10 }, (_, i) => `d${from + i}${'0'.repeat(240)}`).join('/');
    mkdirSync(join(src, chain(10)), { recursive: true });
    mkdirSync(join(src, chain(20)), { recursive: true });
    writeFileSync(join(src, chain(20), 'leaf'), 'deep\n');
    const second = chain(20).split('/')[0] as string;
    const deepest = join(src, chain(10), second);
    renameSync(join(src, second), deepest);
    try {
      const archive = join(dir, 'archive');
      const lines = await twoPasses(src, archive);
      const warned = lines().filter((l) => l.code === 'SPOOL_UNREADABLE');
      // Once, at the first folder whose path is too long, with why.
      expect(warned.length).toBe(1);
      expect(String(warned[0]?.msg)).toContain('ENAMETOOLONG');
      expect(String(warned[0]?.['path']).split('/').length).toBeGreaterThan(10);
      expect(String(warned[0]?.['hint'])).toContain('shorten it');
    } finally {
      // Back within reach, so that afterEach can remove the folder.
      renameSync(deepest, join(src, second));
    }
  });

  it('a link whose target is not UTF-8 is named and left out, never restored pointing elsewhere; odd but valid targets come back exact', async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    const badTarget = Buffer.from([0x64, 0x61, 0x74, 0x61, 0xff]);
    symlinkSync(badTarget, join(src, 'current'));
    symlinkSync('tab\there\nand newline', join(src, 'odd'));
    const archive = join(dir, 'archive');
    const { logger, lines } = captureLogger();
    const s = localSyncer('gw', src, archive, { logger });
    s.start();
    await s.syncNow();
    await s.stop();
    expect(lines().filter((l) => l.code === 'SPOOL_NAME_NOT_UTF8').map((l) => l['path'])).toEqual(['current']);
    const root = join(dir, 'restored');
    await restoreSpool({ archiveDir: archive, filesRoot: root, logger: captureLogger().logger });
    // Before, it came back as a link to "data\ufffd": another file than the source's link named.
    expect(lstatSync(join(root, 'gw', 'current'), { throwIfNoEntry: false })).toBeUndefined();
    expect(readlinkSync(join(root, 'gw', 'odd'))).toBe('tab\there\nand newline');
  });
});
