import type { Observable } from 'rxjs';
import type { ArchiveFiles } from '../archive/archive-files.js';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import type { BinlogRecord, DurablePoint, ResumePoint } from '../core/binlog-record.js';

/**
 * One standby's archive, whatever carries the bytes there (a mounted folder, a TCP stream to
 * `hotspare receive`). The pipeline only ever talks to this interface and never branches on
 * the type; every backend passes the same conformance suite (test/integration/replica-target).
 */
export interface ReplicaTarget {
  readonly name: string;
  readonly type: string;
  /**
   * Opens the archive for writing: checks or claims its identity (refusing another
   * primary's archive with ARCHIVE_FOREIGN), takes the single-writer lock, and recovers its
   * durable state. Rejects with a HotspareError.
   */
  open(identity: PrimaryIdentity): Promise<ReplicaSession>;
}

/** An open, locked archive. One at a time per archive. */
export interface ReplicaSession {
  /** Where the archive's binlog ends (undefined: no binlog yet). */
  readonly resume: ResumePoint | undefined;
  /** Queues an event; throws a HotspareError when it does not continue the archive. */
  append(record: BinlogRecord): void;
  /** Bytes appended but not yet acknowledged as durable: what flow control watches. */
  readonly pendingBytes: number;
  /** Emits after each durable write (fsync on the standby); errors when the session breaks. */
  readonly durable$: Observable<DurablePoint>;
  /**
   * Durable file operations in the same archive (base backups, spool data, indexes). They
   * are independent of the binlog stream: a write here never waits for binlog events.
   */
  readonly files: ArchiveFiles;
  /** Makes what was appended durable, then releases the archive. */
  close(): Promise<void>;
}
