import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { markBaseInProgress } from '../../../src/archive/base-catalog.js';
import { systemClock } from '../../../src/platform/clock.js';
import { FileTarget } from '../../../src/replica/targets/file-target.js';
import { captureLogger } from '../../support/capture-logger.js';
import { TEST_PRIMARY_IDENTITY } from '../../support/fixtures.js';

const identity = TEST_PRIMARY_IDENTITY;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotspare-file-target-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Goal: what a base backup killed half-way (SIGKILL, a crash) left in a `file` archive does not
 * stay there forever, and nothing else in base/ is touched. Method: a real file target opened
 * over an archive holding a partial base folder, a complete-looking one and a stray file.
 */
describe('file target, opening an archive', () => {
  it('removes the partial base folders a dead backup left, with a warning, and keeps the rest', async () => {
    const archive = join(dir, 'archive');
    const partial = join(archive, 'base', '20261206T010203.004Z.partial');
    mkdirSync(partial, { recursive: true });
    writeFileSync(join(partial, 'data-1.sql.gz'), Buffer.alloc(64 * 1024));
    const complete = join(archive, 'base', '20261205T010203.004Z');
    mkdirSync(complete, { recursive: true });
    writeFileSync(join(complete, 'metadata.json'), '{}');
    writeFileSync(join(archive, 'base', 'notes.txt'), 'an operator note');
    const { logger, lines } = captureLogger();

    const session = await new FileTarget({ name: 'a', path: archive, logger, clock: systemClock, syncBatchBytesMax: 1 << 20 }).open(identity);
    await session.close();

    expect(existsSync(partial)).toBe(false);
    expect(existsSync(join(complete, 'metadata.json'))).toBe(true);
    expect(existsSync(join(archive, 'base', 'notes.txt'))).toBe(true);
    expect(lines().filter((l) => l.msg.includes('base backup that did not complete'))).toEqual([expect.objectContaining({ level: 40, folder: 'base/20261206T010203.004Z.partial' })]);
  });

  it('leaves partial base folders alone while this process takes a base (a session reopened under it)', async () => {
    const archive = join(dir, 'archive');
    const partial = join(archive, 'base', '20261206T010203.004Z.partial');
    mkdirSync(partial, { recursive: true });
    const release = markBaseInProgress();
    try {
      const session = await new FileTarget({ name: 'a', path: archive, logger: captureLogger().logger, clock: systemClock, syncBatchBytesMax: 1 << 20 }).open(identity);
      await session.close();
      expect(existsSync(partial)).toBe(true);
    } finally {
      release();
    }
  });
});
