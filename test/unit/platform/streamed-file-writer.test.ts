import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StreamedFileWriter, WriteSlots } from '../../../src/platform/streamed-file-writer.js';

/** Writes and fdatasyncs under way, counted across every handle that shares it. */
interface Under {
  writing: number;
  most: number;
  datasyncs: number;
}

/** A real file handle whose writes and fdatasyncs are counted (into `under`) as they start and end. */
function counted(handle: FileHandle, under: Under = { writing: 0, most: 0, datasyncs: 0 }): { handle: FileHandle; writesAtOnce: () => number; datasyncs: () => number } {
  const proxy = new Proxy(handle, {
    get(target, key) {
      if (key === 'write' || key === 'writev' || key === 'datasync') {
        return async (...args: unknown[]) => {
          under.writing += 1;
          under.most = Math.max(under.most, under.writing);
          if (key === 'datasync') under.datasyncs += 1;
          try {
            return await (target[key] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } finally {
            under.writing -= 1;
          }
        };
      }
      const value = Reflect.get(target, key) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { handle: proxy, writesAtOnce: () => under.most, datasyncs: () => under.datasyncs };
}

describe('StreamedFileWriter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hotspare-streamed-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes every chunk at its place while several writes are under way, and syncs in the background as it goes', async () => {
    // Chunks of many sizes (empty ones too), each with its own byte pattern.
    const chunks = Array.from({ length: 300 }, (_, i) => Buffer.alloc((i * 7919) % 70_000, i % 251));
    const path = join(dir, 'whole');
    const raw = await open(path, 'w');
    const file = counted(raw);
    try {
      const writer = new StreamedFileWriter(file.handle, { groupBytes: 64 * 1024, writesInFlight: 3, writebackBytes: 1024 * 1024, slots: new WriteSlots(8) });
      for (const chunk of chunks) await writer.write(chunk);
      await writer.finish();
      expect(writer.bytes).toBe(chunks.reduce((n, c) => n + c.length, 0));
    } finally {
      await raw.close();
    }
    expect(readFileSync(path).equals(Buffer.concat(chunks))).toBe(true);
    // The producer did not wait for each write: several were in the thread pool together, and
    // never more than the limit (small chunks are gathered, not each handed to the pool).
    expect(file.writesAtOnce()).toBeGreaterThan(1);
    expect(file.writesAtOnce()).toBeLessThanOrEqual(3 + 1); // (and one background write-back)
    // ~10 MB with a write-back every 1 MiB (one at a time): fdatasyncs before the final fsync.
    expect(file.datasyncs()).toBeGreaterThan(0);
  });

  it('writers sharing slots never have more writes under way together than the slots', async () => {
    const slots = new WriteSlots(2);
    const under: Under = { writing: 0, most: 0, datasyncs: 0 };
    const files = await Promise.all([0, 1, 2].map((i) => open(join(dir, `shared-${i}`), 'w')));
    const counting = files.map((h) => counted(h, under).handle);
    try {
      await Promise.all(
        counting.map(async (handle, i) => {
          const writer = new StreamedFileWriter(handle, { groupBytes: 32 * 1024, writesInFlight: 4, writebackBytes: 256 * 1024, slots });
          for (let n = 0; n < 64; n++) await writer.write(Buffer.alloc(32 * 1024, i + 1));
          await writer.finish();
        }),
      );
    } finally {
      await Promise.all(files.map((h) => h.close()));
    }
    // Three writers of up to four writes each, two slots: writes and write-backs two at a time.
    expect(under.most).toBe(2);
    for (const i of [0, 1, 2]) expect(readFileSync(join(dir, `shared-${i}`)).equals(Buffer.alloc(64 * 32 * 1024, i + 1))).toBe(true);
  });

  it('a failed write is thrown to the producer, and settle() leaves nothing under way', async () => {
    const path = join(dir, 'read-only');
    writeFileSync(path, '');
    // Opened for reading: every write fails (EBADF) in the thread pool.
    const handle = await open(path, 'r');
    const writer = new StreamedFileWriter(handle, { groupBytes: 16 * 1024, writesInFlight: 2, writebackBytes: 1024 * 1024, slots: new WriteSlots(2) });
    let failure: unknown;
    try {
      for (let i = 0; i < 100; i++) await writer.write(Buffer.alloc(32 * 1024, 1));
      await writer.finish();
    } catch (err) {
      failure = err;
    }
    await writer.settle();
    await handle.close();
    expect((failure as NodeJS.ErrnoException | undefined)?.code).toBe('EBADF');
  });
});
