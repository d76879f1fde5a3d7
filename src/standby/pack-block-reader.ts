import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { packPath, type BlockPiece } from '../spool/spool-format.js';

export type PackBlockRead =
  | { kind: 'read'; bytes: Buffer }
  /** The pack is not in the archive (ENOENT). */
  | { kind: 'missing'; pack: number }
  /** The pack ends before `end`, where the block's piece in it ends. */
  | { kind: 'short'; pack: number; end: number };

/**
 * Reads spool blocks out of a source's packs in a local archive (restore, verify): a block's
 * pieces (`blockPieces` of its BlockRef) in order, into one buffer. Each pack is opened once and
 * kept open until close(), since a restore or a verify reads many blocks of few packs. A pack
 * that cannot be opened for another reason than its absence (EACCES) throws, with its path.
 */
export class PackBlockReader {
  readonly #handles = new Map<number, FileHandle | 'missing'>();

  constructor(
    private readonly archiveDir: string,
    private readonly source: string,
  ) {}

  async read(pieces: readonly BlockPiece[]): Promise<PackBlockRead> {
    const bytes = Buffer.allocUnsafe(pieces.reduce((n, [, , length]) => n + length, 0));
    let at = 0;
    for (const [pack, offset, length] of pieces) {
      const handle = await this.#handle(pack);
      if (handle === 'missing') return { kind: 'missing', pack };
      const { bytesRead } = await handle.read(bytes, at, length, offset);
      if (bytesRead !== length) return { kind: 'short', pack, end: offset + length };
      at += length;
    }
    return { kind: 'read', bytes };
  }

  async close(): Promise<void> {
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    for (const h of handles) if (h !== 'missing') await h.close();
  }

  async #handle(pack: number): Promise<FileHandle | 'missing'> {
    let handle = this.#handles.get(pack);
    if (handle === undefined) {
      handle = await open(join(this.archiveDir, packPath(this.source, pack)), 'r').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return 'missing' as const;
        throw err;
      });
      this.#handles.set(pack, handle);
    }
    return handle;
  }
}
