import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../../src/core/crc32.js';

describe('crc32', () => {
  it('gives zlib.crc32 values for views at any offset, whole and continued part by part', () => {
    const bytes = Buffer.alloc(70_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    for (const [start, end] of [[0, 0], [0, 1], [3, 17], [1, 8192], [5, 70_000], [0, 70_000]] as const) {
      const view = bytes.subarray(start, end);
      expect(crc32(view)).toBe(zlibCrc32(view));
      const cut = start + ((end - start) >> 1);
      expect(crc32(bytes.subarray(cut, end), crc32(bytes.subarray(start, cut)))).toBe(zlibCrc32(view));
    }
  });

  it('reads a string as UTF-8, as zlib.crc32 does (spool journal lines hold any path)', () => {
    for (const text of ['', 'abc', 'spool/émoji-😀/файл.txt']) expect(crc32(text)).toBe(zlibCrc32(text));
  });

  it('loads the native implementation on this platform (npm ci installs its binary)', () => {
    const native = createRequire(import.meta.url)('@node-rs/crc32') as { crc32: (d: Uint8Array) => number };
    expect(native.crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });
});
