import { constants } from 'node:fs';

/** O_DIRECT where the platform has one (Linux); elsewhere 0, and writes stay buffered. */
export const O_DIRECT = (constants as { O_DIRECT?: number }).O_DIRECT ?? 0;

/** WebAssembly memory grows in pages of this size. */
const WASM_PAGE_BYTES = 64 * 1024;
/** The one WebAssembly API used here (the project's TypeScript libraries do not declare it); absent under --jitless. */
const Memory = (globalThis as unknown as {
  WebAssembly?: { Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBuffer | SharedArrayBuffer } };
}).WebAssembly?.Memory;

export const alignDown = (n: number, align: number): number => n - (n % align);
export const alignUp = (n: number, align: number): number => alignDown(n + align - 1, align);

/** Memory made by alignedMemory(): its first byte is page-aligned. */
const pageAligned = new WeakSet<ArrayBufferLike>();

/**
 * Memory whose start is page-aligned, for buffers that O_DIRECT may write from without a copy.
 * Node can neither allocate aligned memory nor tell where a Buffer lies; a WebAssembly memory
 * is mapped by V8 on pages of its own, so its start is page-aligned. Its pages are the system's
 * zero pages until written, like any large allocation. `shared` makes it a SharedArrayBuffer.
 */
export function alignedMemory(bytes: number, shared = false): ArrayBuffer | SharedArrayBuffer {
  // Without WebAssembly, plain memory: an O_DIRECT write from it fails with EINVAL, and its
  // writers fall back to the page cache.
  if (Memory === undefined) return shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  const pages = Math.ceil(bytes / WASM_PAGE_BYTES);
  const { buffer } = new Memory(shared ? { initial: pages, maximum: pages, shared } : { initial: pages });
  pageAligned.add(buffer);
  return buffer;
}

/** Where `data` starts in memory modulo any alignment up to a page, when known (memory from alignedMemory()); otherwise undefined. */
export function memoryOffset(data: Buffer): number | undefined {
  return pageAligned.has(data.buffer) ? data.byteOffset : undefined;
}
