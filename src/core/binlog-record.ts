/** One binlog event on its way into an archive, with where it belongs. */
export interface BinlogRecord {
  /** The binlog file on the primary that holds this event. */
  file: string;
  /** Offset of the event's first byte in that file. */
  offset: number;
  bytes: Buffer;
  /** Header timestamp: for a commit marker, the commit time in seconds. */
  timestampS: number;
  /** True when the stream stands between two transactions after this event. */
  boundary: boolean;
  /** At a boundary: the GTID of the transaction it completed, if the server writes GTIDs. */
  gtid?: string | undefined;
}

/** Where a replica's archive stands: everything up to here is fsynced there. */
export interface DurablePoint {
  file: string;
  /** End of the durable bytes of `file` (an event boundary). */
  position: number;
  /** The last durable transaction boundary; a promotion can restore exactly up to here. */
  boundaryFile: string;
  boundaryPosition: number;
  /** Commit time of the last durable complete transaction (seconds), when known. */
  commitTimestampS: number | undefined;
  gtid: string | undefined;
}

/** Where to ask the primary to continue from: a file and an event boundary within it. */
export interface ResumePoint {
  file: string;
  position: number;
  /** Carried forward so the durable point is complete before the first new event. */
  commitTimestampS: number | undefined;
  gtid: string | undefined;
}
