import type { PrimaryConnection } from '../config/load.js';
import { DEFAULT_EXPIRE_SETTING_REFRESH_MS } from '../config/defaults.js';
import { HotspareError, errorMessage } from '../core/errors.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { MysqlProbe, type BinlogFileInfo } from './mysql-probe.js';

/** One successful look at the primary's binlog. */
export interface HeadObservation {
  head: { file: string; position: number };
  files: BinlogFileInfo[];
  expireLogsSeconds: number;
  /**
   * The primary's binlog_format as last read (with the expiry setting, now and then): the preflight
   * refuses a primary that is not ROW, but a SET GLOBAL later goes unnoticed by the stream.
   */
  binlogFormat?: string;
  /** When SHOW MASTER STATUS answered. */
  checkedAtMs: number;
}

export interface HeadPollerOptions {
  primary: PrimaryConnection;
  intervalMs: number;
  /**
   * The interval while `wantFast()` holds (a replica without a stream): then the head
   * observations alone date the oldest undurable event, to within one interval.
   */
  fastIntervalMs?: number;
  wantFast?: () => boolean;
  clock: Clock;
  logger: Logger;
  onObservation: (observation: HeadObservation) => void;
  onFailure: (failure: { code: string; message: string; atMs: number }) => void;
  /** Each check's questions fail after this long without an answer (DEFAULT_PRIMARY_QUERY_TIMEOUT_MS). */
  queryTimeoutMs?: number;
  /** How often the settings (expiry, binlog_format) are read again (DEFAULT_EXPIRE_SETTING_REFRESH_MS). */
  settingsRefreshMs?: number;
}

/**
 * Reads the primary's head position and binlog file list once per interval over one
 * persistent connection, shared by every replica and every HTTP client: requests to the lag
 * endpoint never reach MySQL. A failed check closes the connection; the next interval opens
 * a new one. binlog_expire_logs_seconds is re-read now and then (it can be SET GLOBAL).
 */
export class HeadPoller {
  readonly #options: HeadPollerOptions;
  #probe: MysqlProbe | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #expireLogsSeconds = 0;
  #expireReadAtMs: number | undefined;
  #binlogFormat: string | undefined;
  #failing = false;
  /** The last full list (SHOW BINARY LOGS) and when it was read. */
  #files: { list: BinlogFileInfo[]; atMs: number } | undefined;

  constructor(options: HeadPollerOptions) {
    this.#options = options;
  }

  /** Checks at once, then every interval (measured from the end of the previous check). */
  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    await this.#probe?.close();
    this.#probe = undefined;
  }

  /** Checks now (if no check is running) instead of at the end of the current interval. */
  checkSoon(): void {
    if (this.#stopped || this.#running !== undefined || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#schedule(0);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#check().finally(() => {
        this.#running = undefined;
        const { intervalMs, fastIntervalMs, wantFast } = this.#options;
        const fast = fastIntervalMs !== undefined && !this.#failing && wantFast?.() === true;
        this.#schedule(fast ? Math.min(fastIntervalMs, intervalMs) : intervalMs);
      });
    }, delayMs);
    this.#timer.unref();
  }

  /**
   * The primary's binlog files. SHOW BINARY LOGS looks at every file (a primary may keep
   * thousands), so it runs once per interval; a fast check in between (a replica without a
   * stream) reuses the last list with the head file's size taken from the head, which is exact
   * while the head stays in the list's newest file (older files no longer change).
   */
  async #binlogFiles(probe: MysqlProbe, head: { file: string; position: number }, nowMs: number): Promise<BinlogFileInfo[]> {
    const last = this.#files;
    const newest = last?.list[last.list.length - 1];
    if (last !== undefined && newest !== undefined && newest.name === head.file && nowMs - last.atMs < this.#options.intervalMs) {
      return [...last.list.slice(0, -1), { name: newest.name, sizeBytes: head.position }];
    }
    const list = asOfHead(await probe.binlogFiles(), head);
    this.#files = { list, atMs: nowMs };
    return list;
  }

  async #check(): Promise<void> {
    const { clock, logger } = this.#options;
    try {
      this.#probe ??= await MysqlProbe.connect(this.#options.primary, { queryTimeoutMs: this.#options.queryTimeoutMs });
      const probe = this.#probe;
      // The head first, then the list: the list then always includes the head's file.
      const head = await probe.head();
      const checkedAtMs = clock.nowMs();
      const files = await this.#binlogFiles(probe, head, checkedAtMs);
      if (this.#expireReadAtMs === undefined || checkedAtMs - this.#expireReadAtMs >= (this.#options.settingsRefreshMs ?? DEFAULT_EXPIRE_SETTING_REFRESH_MS)) {
        // A failed read keeps the last value (unknown at first: no warning from a guess).
        this.#binlogFormat = (await probe.binlogFormat().catch(() => undefined)) ?? this.#binlogFormat;
        // A failed read keeps the last value and is tried again at the next check: counted as
        // 0 (no expiry) for a minute, the age warning would go quiet exactly then.
        const seconds = await probe.expireLogsSeconds().catch((err: unknown) => {
          logger.debug({ err }, 'the binlog expiry setting could not be read');
          return undefined;
        });
        if (seconds !== undefined) {
          this.#expireLogsSeconds = seconds;
          this.#expireReadAtMs = checkedAtMs;
        }
      }
      if (this.#failing) logger.info({ head }, 'head check works again');
      this.#failing = false;
      if (!this.#stopped) this.#options.onObservation({ head, files, expireLogsSeconds: this.#expireLogsSeconds, ...(this.#binlogFormat === undefined ? {} : { binlogFormat: this.#binlogFormat }), checkedAtMs });
    } catch (err) {
      const probe = this.#probe;
      this.#probe = undefined;
      await probe?.close();
      const code = err instanceof HotspareError ? err.code : 'INTERNAL';
      // Once per outage: the lag endpoint shows the rest.
      if (!this.#failing) logger.warn({ code, err: err instanceof HotspareError ? undefined : err }, `head check failed: ${errorMessage(err)}`);
      this.#failing = true;
      if (!this.#stopped) this.#options.onFailure({ code, message: errorMessage(err), atMs: clock.nowMs() });
    }
  }
}

/**
 * The list as it was when the head was read: the list is asked for after the head, so a write
 * (or a rotation) in between makes the head file longer than the head says, or adds a file
 * after it. One observation must be one moment, or the lag computed from it mixes two.
 */
function asOfHead(list: BinlogFileInfo[], head: { file: string; position: number }): BinlogFileInfo[] {
  const at = list.findIndex((f) => f.name === head.file);
  if (at < 0) return list;
  return [...list.slice(0, at), { name: head.file, sizeBytes: head.position }];
}
