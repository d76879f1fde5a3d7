import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkArchivePath, LocalArchiveFiles, type ArchiveFiles } from '../../archive/archive-files.js';
import { BASE_METADATA_FILE, BASE_PARTIAL_SUFFIX } from '../../archive/base-catalog.js';
import { DEFAULT_BASE_STAGING_BYTES_MAX, DEFAULT_BASE_UPLOAD_PIECE_BYTES, DEFAULT_BASE_UPLOAD_PIECES_IN_FLIGHT } from '../../config/defaults.js';
import { HotspareError } from '../../core/errors.js';
import type { Logger } from '../../platform/logger.js';
import { whenAborted } from '../../platform/when-aborted.js';
import { childLogger } from '../../platform/logger.js';

/**
 * Where a remote replica's base backups are staged on the agent's disk (`<stateDir>/base-upload/<replica>/`),
 * shared by all the target's sessions: a base outlives the connection it was taken on.
 */
export class BaseStaging {
  readonly files: LocalArchiveFiles;
  /** Partial bases being written by this process, each with the end of its backup (renamed or removed). */
  readonly #active = new Map<string, { ended: Promise<void>; end: () => void }>();
  /** Bytes staged per partial base, against DEFAULT_BASE_STAGING_BYTES_MAX. */
  readonly staged = new Map<string, number>();
  /** Uploads run one at a time, whichever session asks. */
  uploading: Promise<void> = Promise.resolve();
  cleaned = false;

  /** A backup writes into `partial`: it is never cleaned up under it, and `base/` waits for it. */
  begin(partial: string): void {
    if (this.#active.has(partial)) return;
    let end!: () => void;
    const ended = new Promise<void>((r) => (end = r));
    this.#active.set(partial, { ended, end });
  }

  end(partial: string): void {
    this.#active.get(partial)?.end();
    this.#active.delete(partial);
    this.staged.delete(partial);
  }

  isActive(partial: string): boolean {
    return this.#active.has(partial);
  }

  /** Resolves when every backup running now has ended. */
  async idle(): Promise<void> {
    await Promise.all([...this.#active.values()].map((a) => a.ended));
  }

  constructor(
    readonly root: string,
    readonly logger: Logger,
    readonly bytesMax: number = DEFAULT_BASE_STAGING_BYTES_MAX,
    /**
     * The agent stopping: an upload ends between pieces, without waiting for the pieces in
     * flight. A staged base stays ready, and the next start finishes its upload (where the
     * standby's copy ends), so a stop never waits for a whole base to cross a slow link.
     */
    readonly stopSignal?: AbortSignal,
  ) {
    this.files = new LocalArchiveFiles(root);
  }

  /** Throws BASE_ABORTED once the agent is stopping. */
  throwIfStopping(): void {
    if (this.stopSignal?.aborted === true) throw stoppingError();
  }

  /** `promise`, or BASE_ABORTED as soon as the agent is stopping, whichever comes first. */
  async untilStopping<T>(promise: Promise<T>): Promise<T> {
    this.throwIfStopping();
    let stopListening = (): void => undefined;
    const stopped = new Promise<never>((_, reject) => (stopListening = whenAborted(this.stopSignal, () => reject(stoppingError()))));
    try {
      return await Promise.race([promise, stopped]);
    } finally {
      stopListening();
    }
  }
}

function stoppingError(): HotspareError {
  return new HotspareError('BASE_ABORTED', 'the upload of a base backup to the standby was interrupted: the agent is stopping', {
    hint: "the base is complete on the agent (stateDir/base-upload/); the agent finishes its upload, from where the standby's copy ends, when it starts again",
  });
}

/** `base/<id>.partial` when `path` lies in a partial base (where a backup writes), else undefined. */
function partialOf(path: string): string | undefined {
  const [root, name] = checkArchivePath(path).split('/');
  return root === 'base' && name !== undefined && name.endsWith(BASE_PARTIAL_SUFFIX) ? `base/${name}` : undefined;
}

/**
 * ArchiveFiles of a remote archive in which base backups are taken to the agent's disk first
 * and uploaded from there, so that a base completes over a link that drops more often than the
 * backup takes. Whatever produces a base (it writes `base/<id>.partial/...`, then renames it to
 * `base/<id>`) writes into the staging folder at local speed, and its snapshot is never lost with
 * a connection. The rename is the commit: the staged base is marked ready (renamed locally) and
 * uploaded, each file continued at the size the standby holds of it once made durable (so
 * every connection's bytes count, however soon it drops), then renamed on the standby. A dropped link fails that rename,
 * but the ready base stays staged: the next session's first look at `base/` (the agent's
 * ensureBaseBackup does one before any binlog) finishes the upload before it answers, so no new
 * backup is taken. Every other path goes straight to the standby.
 */
export class StagedBaseFiles implements ArchiveFiles {
  constructor(
    private readonly remote: ArchiveFiles,
    private readonly staging: BaseStaging,
  ) {}

  async putFile(path: string, data: AsyncIterable<Buffer> | Buffer): Promise<void> {
    const partial = partialOf(path);
    if (partial === undefined) return this.remote.putFile(path, data);
    this.staging.begin(partial);
    if (Buffer.isBuffer(data)) {
      this.#count(partial, data.length);
      return this.staging.files.putFile(path, data);
    }
    return this.staging.files.putFile(path, this.#counting(partial, data));
  }

  async writeAt(path: string, offset: number, data: Buffer): Promise<void> {
    await this.write(path, offset, data);
    await this.sync([path]);
  }

  async write(path: string, offset: number, data: Buffer): Promise<void> {
    const partial = partialOf(path);
    if (partial === undefined) return this.remote.write(path, offset, data);
    this.staging.begin(partial);
    this.#count(partial, data.length);
    return this.staging.files.write(path, offset, data);
  }

  async sync(paths: readonly string[]): Promise<void> {
    const local = paths.filter((p) => partialOf(p) !== undefined);
    const remote = paths.filter((p) => partialOf(p) === undefined);
    if (local.length > 0) await this.staging.files.sync(local);
    if (remote.length > 0) await this.remote.sync(remote);
  }

  async truncate(path: string, size: number): Promise<void> {
    return partialOf(path) === undefined ? this.remote.truncate(path, size) : this.staging.files.truncate(path, size);
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    return partialOf(path) === undefined ? this.remote.readFile(path) : this.staging.files.readFile(path);
  }

  async readAt(path: string, offset: number, length: number): Promise<Buffer> {
    return partialOf(path) === undefined ? this.remote.readAt(path, offset, length) : this.staging.files.readAt(path, offset, length);
  }

  async size(path: string): Promise<number | undefined> {
    return partialOf(path) === undefined ? this.remote.size(path) : this.staging.files.size(path);
  }

  /**
   * Listing `base/` first waits for a backup this process is taking (one whose session was lost
   * goes on locally), then finishes the upload of any staged, ready base: the answer then
   * includes it, and no second backup is started for a link that dropped.
   */
  async list(path: string): Promise<string[]> {
    if (partialOf(path) !== undefined) return this.staging.files.list(path);
    if (checkArchivePath(path) === 'base') {
      await this.staging.idle();
      await this.finishUploads();
    }
    return this.remote.list(path);
  }

  async rename(from: string, to: string): Promise<void> {
    const partial = partialOf(from);
    if (partial === undefined) return this.remote.rename(from, to);
    if (partial !== from || to !== from.slice(0, -BASE_PARTIAL_SUFFIX.length)) return this.staging.files.rename(from, to);
    // The base is complete on the agent's disk: from here on it survives a lost link and a restart.
    await this.staging.files.rename(from, to);
    this.staging.end(partial);
    await this.finishUploads();
  }

  async remove(path: string): Promise<void> {
    const partial = partialOf(path);
    if (partial === undefined) return this.remote.remove(path);
    try {
      await this.staging.files.remove(path);
    } finally {
      // Ended even when the removal fails: idle() (which the binlog stream waits on before a
      // new base) must not wait for a backup that is over.
      if (partial === path) this.staging.end(partial);
    }
    // The standby's copy of a partial base whose upload is pending is what the upload resumes.
    if ((await this.staging.files.size(`${partial.slice(0, -BASE_PARTIAL_SUFFIX.length)}/${BASE_METADATA_FILE}`)) !== undefined) return;
    await this.remote.remove(path);
  }

  /** Uploads every staged, ready base (one upload at a time per target). */
  finishUploads(): Promise<void> {
    const run = this.staging.uploading.catch(() => undefined).then(() => this.#uploadReady());
    this.staging.uploading = run;
    return run;
  }

  async #uploadReady(): Promise<void> {
    const staging = this.staging;
    const names = await staging.files.list('base');
    if (!staging.cleaned) {
      // What an interrupted backup of an earlier run left; a ready base is kept (it is uploaded).
      staging.cleaned = true;
      for (const name of names.filter((n) => n.endsWith(BASE_PARTIAL_SUFFIX) && !staging.isActive(`base/${n}`))) await staging.files.remove(`base/${name}`);
    }
    for (const id of names.filter((n) => !n.endsWith(BASE_PARTIAL_SUFFIX))) {
      staging.throwIfStopping();
      await this.#upload(id);
    }
  }

  async #upload(id: string): Promise<void> {
    const log = childLogger(this.staging.logger, { component: 'base-upload', base: id });
    const staging = this.staging;
    const remotePartial = `base/${id}${BASE_PARTIAL_SUFFIX}`;
    if ((await staging.untilStopping(this.remote.size(`base/${id}/${BASE_METADATA_FILE}`))) === undefined) {
      const files = await walk(join(staging.root, 'base', id));
      // metadata.json last: a standby with all the other files of a base still has no base.
      files.sort((a, b) => Number(a === BASE_METADATA_FILE) - Number(b === BASE_METADATA_FILE));
      for (const rel of files) await this.#uploadFile(join(staging.root, 'base', id, rel), `${remotePartial}/${rel}`, log);
      await staging.untilStopping(this.remote.rename(remotePartial, `base/${id}`));
      log.info({ files: files.length }, 'base backup uploaded to the standby');
    }
    await staging.files.remove(`base/${id}`);
  }

  /**
   * Uploads one staged file from what the standby holds: its copy is made durable first (SYNC),
   * then measured, and the upload continues at that size. The receiver writes a file's pieces in
   * order, so what it holds is always a prefix of the file. Pieces go out two at a time, and one
   * SYNC at the end makes the file durable.
   */
  async #uploadFile(localPath: string, remotePath: string, log: Logger): Promise<void> {
    const staging = this.staging;
    staging.throwIfStopping();
    const handle = await open(localPath, 'r');
    try {
      const { size } = await handle.stat();
      let at = 0;
      if ((await staging.untilStopping(this.remote.size(remotePath))) !== undefined) {
        await staging.untilStopping(this.remote.sync([remotePath]));
        at = (await staging.untilStopping(this.remote.size(remotePath))) ?? 0;
        if (at > size) {
          // Not a prefix of this file: start it again.
          await staging.untilStopping(this.remote.truncate(remotePath, 0));
          at = 0;
        }
        if (at > 0) log.info({ file: remotePath, at, size }, 'base upload resumed');
      }
      const inflight: Array<Promise<void>> = [];
      try {
        do {
          staging.throwIfStopping();
          const piece = Buffer.allocUnsafe(Math.min(DEFAULT_BASE_UPLOAD_PIECE_BYTES, size - at));
          const { bytesRead } = await handle.read(piece, 0, piece.length, at);
          const sent = this.remote.write(remotePath, at, piece.subarray(0, bytesRead));
          // Observed at once: after a lost link every piece in flight fails, and only the first is awaited.
          sent.catch(() => undefined);
          inflight.push(sent);
          at += bytesRead;
          if (inflight.length >= DEFAULT_BASE_UPLOAD_PIECES_IN_FLIGHT) await staging.untilStopping(inflight.shift() as Promise<void>);
        } while (at < size);
        while (inflight.length > 0) await staging.untilStopping(inflight.shift() as Promise<void>);
      } finally {
        // Nothing is left running against the file when one piece failed; when the agent is
        // stopping, the pieces in flight end with the session (and no upload follows here).
        if (staging.stopSignal?.aborted !== true) await Promise.allSettled(inflight);
      }
      await staging.untilStopping(this.remote.sync([remotePath]));
    } finally {
      await handle.close();
    }
  }

  /** Adds bytes to a partial base's staged total; throws BASE_STAGING_FULL past the limit. */
  #count(partial: string, bytes: number): void {
    const total = (this.staging.staged.get(partial) ?? 0) + bytes;
    this.staging.staged.set(partial, total);
    if (total > this.staging.bytesMax) {
      throw new HotspareError('BASE_STAGING_FULL', `the base backup is larger than the ${this.staging.bytesMax} bytes it may take in the agent's stateDir`, {
        hint: 'a remote replica stages each base in the agent\'s stateDir before uploading it: raise `base.stagingBytesMax` in the agent config (and give the stateDir that much room)',
      });
    }
  }

  async *#counting(partial: string, data: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of data) {
      this.#count(partial, chunk.length);
      yield chunk;
    }
  }
}

/** Every file under `dir`, as paths relative to it (a physical base has subfolders). */
async function walk(dir: string, at = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, at), { withFileTypes: true })) {
    const rel = at === '' ? entry.name : `${at}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await walk(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}
