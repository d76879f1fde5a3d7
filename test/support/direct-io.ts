import { constants, writeFileSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { O_DIRECT } from '../../src/platform/aligned-memory.js';


/** Whether the file system of `folder` takes O_DIRECT (tmpfs, for one, refuses it). */
export async function volumeTakesDirect(folder: string): Promise<boolean> {
  if (O_DIRECT === 0) return false;
  const probe = join(folder, '.direct-probe');
  writeFileSync(probe, '');
  try {
    await (await open(probe, constants.O_WRONLY | O_DIRECT)).close();
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { force: true });
  }
}

/**
 * An `openDirect` for DirectAppendBuffers whose descriptors are real, except that the
 * `failAt`-th write of all (counted from 1) fails with `code`. `writes()` counts them.
 */
export function failingDirectOpen(failAt: number, code: string, message: string): { openDirect: (path: string) => Promise<FileHandle>; writes: () => number } {
  let count = 0;
  const openDirect = async (path: string): Promise<FileHandle> => {
    const real = await open(path, constants.O_WRONLY | O_DIRECT);
    return new Proxy(real, {
      get(target, key, receiver) {
        if (key !== 'write') return Reflect.get(target, key, receiver) as unknown;
        return (...args: unknown[]) => {
          count += 1;
          if (count === failAt) return Promise.reject(Object.assign(new Error(message), { code }));
          return (target.write as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      },
    });
  };
  return { openDirect, writes: () => count };
}
