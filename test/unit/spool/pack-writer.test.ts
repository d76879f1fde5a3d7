import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../../src/archive/archive-files.js';
import { PackWriter } from '../../../src/spool/pack-writer.js';
import { packPath } from '../../../src/spool/spool-format.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A local archive whose writes wait until `release()`: a write in flight, held there. */
class HeldWrites extends LocalArchiveFiles {
  #gate: Promise<void>;
  release!: () => void;
  constructor(root: string) {
    super(root);
    this.#gate = new Promise((r) => (this.release = r));
  }
  override async write(path: string, offset: number, data: Buffer): Promise<void> {
    await this.#gate;
    return super.write(path, offset, data);
  }
}

describe('PackWriter', () => {
  it('close() waits for the writes under way, so the next writer lists their pack and starts after it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hotspare-pack-'));
    dirs.push(root);
    const files = new HeldWrites(root);
    const first = await PackWriter.open(files, 's', 64 * 1024, 1024 * 1024, 2);
    // A block larger than a batch is written at once, in the background: its pack does not exist yet.
    const [seq] = await first.add(Buffer.alloc(128 * 1024, 7));
    let closed = false;
    const closing = first.close().then(() => (closed = true));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    files.release();
    await closing;
    expect(statSync(join(root, packPath('s', seq))).size).toBe(128 * 1024);
    const next = await PackWriter.open(new LocalArchiveFiles(root), 's', 64 * 1024, 1024 * 1024, 2);
    expect(next.seq).toBe(seq + 1);
  });
});
