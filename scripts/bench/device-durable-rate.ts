import { constants, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { O_DIRECT, alignedMemory } from '../../src/platform/aligned-memory.js';

/** The device's durable append rate: 1 MiB O_DIRECT writes, 4 in flight, from memory. */
const DEVICE_WRITE_BYTES = 1024 * 1024;
const DEVICE_WRITES_IN_FLIGHT = 4;
/** An fdatasync after every this many bytes, as the archive writer's batches at most. */
const DEVICE_SYNC_BYTES = 16 * 1024 * 1024;

/**
 * Seconds to make `bytes` durable in a new file in `dir` the fastest way the archive writer
 * could (O_DIRECT appends from aligned memory, an fdatasync per 16 MiB), with no network and
 * no parsing: the ceiling of any tool that fsyncs on this volume, measured in the same run.
 */
export async function deviceDurableSeconds(dir: string, bytes: number): Promise<number> {
  const path = join(dir, 'device-probe');
  const buffers = Array.from({ length: DEVICE_WRITES_IN_FLIGHT }, (_, i) => Buffer.from(alignedMemory(DEVICE_WRITE_BYTES)).fill(i + 1));
  const synced = await open(path, 'w+', 0o600);
  const direct = await open(path, constants.O_WRONLY | O_DIRECT);
  try {
    const start = process.hrtime.bigint();
    let at = 0;
    let sinceSync = 0;
    while (at < bytes) {
      const writes: Array<Promise<unknown>> = [];
      for (const buffer of buffers) {
        if (at >= bytes) break;
        writes.push(direct.write(buffer, 0, buffer.length, at));
        at += buffer.length;
        sinceSync += buffer.length;
      }
      await Promise.all(writes);
      if (sinceSync >= DEVICE_SYNC_BYTES || at >= bytes) {
        await synced.datasync();
        sinceSync = 0;
      }
    }
    return Number(process.hrtime.bigint() - start) / 1e9;
  } finally {
    await direct.close();
    await synced.close();
    rmSync(path, { force: true });
  }
}

