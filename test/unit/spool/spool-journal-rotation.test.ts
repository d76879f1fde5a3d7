import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../../src/archive/archive-files.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { encodeLineText } from '../../../src/spool/spool-format.js';
import { SpoolJournal } from '../../../src/spool/spool-journal.js';

/**
 * Goal: a new journal segment is due after segmentBytesMax of operations since its checkpoint,
 * however large the checkpoint itself (a tree of hundreds of thousands of files), also after
 * the journal is opened again. Method: a real journal in a temporary archive, a small limit.
 */
const work = mkdtempSync(join(tmpdir(), 'hotspare-journal-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const LIMIT = 4096;
const NEVER_MS = 1e15;
const opLine = (i: number): string => encodeLineText({ op: 'rm', t: 1_000 + i, path: `gone-${i}` });

describe('spool journal rotation', () => {
  it('counts the operations since the checkpoint, not the checkpoint', async () => {
    const files = new LocalArchiveFiles(work);
    const { journal, tree } = await SpoolJournal.open(files, 's', 65536, 1_000, silentLogger());
    // A checkpoint far larger than the limit.
    for (let i = 0; i < 500; i++) tree.entries.set(`dir/file-${i}`, { kind: 'dir', mode: 0o755, mtimeNs: '0', ino: i });
    const checkpointBytes = await journal.rotate(tree, { pack: 1 });
    expect(checkpointBytes).toBeGreaterThan(4 * LIMIT);
    await journal.append([opLine(1)]);
    expect(journal.rotationDue(2_000, LIMIT, NEVER_MS)).toBe(false);
    // Opened again (the agent restarted): the same.
    const reopened = (await SpoolJournal.open(files, 's', 65536, 3_000, silentLogger())).journal;
    expect(reopened.rotationDue(3_000, LIMIT, NEVER_MS)).toBe(false);
    const lines: string[] = [];
    for (let i = 2; Buffer.byteLength(lines.join('')) < LIMIT; i++) lines.push(opLine(i));
    await reopened.append(lines);
    expect(reopened.rotationDue(3_000, LIMIT, NEVER_MS)).toBe(true);
  });
});
