import {
  DEFAULT_RETRY_DELAY_MS_MAX,
  DEFAULT_RETRY_DELAY_MS_MIN,
  DEFAULT_SPOOL_BLOCK_BYTES,
  DEFAULT_SPOOL_COMPACT_BYTES_MAX,
  DEFAULT_SPOOL_DEBOUNCE_MS,
  DEFAULT_SPOOL_DIRECT_WRITE_BYTES,
  DEFAULT_SPOOL_FIRST_SCAN_MAX_AGE_MS,
  DEFAULT_SPOOL_BLOCK_PIECES_MAX,
  DEFAULT_SPOOL_KNOWN_DEAD_MAX,
  DEFAULT_SPOOL_MISSING_CHECK_INTERVAL_MS,
  DEFAULT_SPOOL_PACK_BYTES_MAX,
  DEFAULT_SPOOL_PACK_LIVE_RATIO_MIN,
  DEFAULT_SPOOL_PASS_COMMIT_BYTES,
  DEFAULT_SPOOL_PASS_COMMIT_OPS,
  DEFAULT_SPOOL_RACY_WINDOW_MS,
  DEFAULT_SPOOL_READ_ATTEMPTS,
  DEFAULT_SPOOL_READ_BUFFERS,
  DEFAULT_SPOOL_READ_BYTES,
  DEFAULT_SPOOL_READ_CONCURRENCY,
  DEFAULT_SPOOL_READER_IDLE_MS,
  DEFAULT_SPOOL_RESCAN_INTERVAL_MS,
  DEFAULT_SPOOL_SEEN_RECORD_MS,
  DEFAULT_SPOOL_SEGMENT_BYTES_MAX,
  DEFAULT_SPOOL_UNSTABLE_RETRY_MS_MAX,
  DEFAULT_SPOOL_UNSTABLE_RETRY_MS_MIN,
  DEFAULT_SPOOL_WRITE_BATCH_BYTES,
  DEFAULT_SPOOL_WRITE_BATCHES,
} from '../config/defaults.js';
import type { BlockHashName } from './block-hash.js';
import type { ReaderConfig } from './file-reader.js';

/** A spool syncer's limits and switches, each with its named default (config/defaults.ts); tests and benchmarks override some. */
export interface SpoolTuning {
  blockBytes: number;
  rescanIntervalMs: number;
  /** A missing source's folder is looked for again this often (see DEFAULT_SPOOL_MISSING_CHECK_INTERVAL_MS). */
  missingCheckIntervalMs: number;
  debounceMs: number;
  writeBatchBytes: number;
  /** Write batches in memory at once (filling or being written). */
  writeBatches: number;
  /** A run of new blocks at least this long is written from the read buffer, not copied into a batch. */
  directWriteBytes: number;
  /** A block extended by appends is stored in at most this many pieces (see DEFAULT_SPOOL_BLOCK_PIECES_MAX). */
  blockPiecesMax: number;
  packBytesMax: number;
  packLiveRatioMin: number;
  compactBytesMax: number;
  segmentBytesMax: number;
  readAttempts: number;
  /** A file that changed under every attempt waits this long before it is read again, doubling up to the max (DEFAULT_SPOOL_UNSTABLE_RETRY_MS_*). */
  unstableRetryMsMin: number;
  unstableRetryMsMax: number;
  /** A pass commits what it shipped after this many bytes of files, or this many operations. */
  passCommitBytes: number;
  passCommitOps: number;
  /** Bytes read from a file at once (and the size of each read buffer). */
  readBytes: number;
  /** Read buffers in use at once: the reader's memory bound. */
  readBuffers: number;
  /** Files queued to the reader at once. */
  readConcurrency: number;
  /** The reader thread ends after this long without a file to read. */
  readerIdleMs: number;
  /** The walk asked for at start() is taken by a first pass that begins within this long (DEFAULT_SPOOL_FIRST_SCAN_MAX_AGE_MS). */
  firstScanMaxAgeMs: number;
  racyWindowMs: number;
  /** An idle source gets a `seen` journal record at a full pass once its newest record is this old (see SpoolOp). */
  seenRecordMs: number;
  retryDelayMsMin: number;
  retryDelayMsMax: number;
  /** Watch for changes (latency); without it only rescans find them. */
  watch: boolean;
  /** The block index is rebuilt from the tree once it holds this many entries beyond its live blocks (see DEFAULT_SPOOL_KNOWN_DEAD_MAX). */
  knownDeadMax: number;
}

export const DEFAULT_SPOOL_TUNING: SpoolTuning = {
  blockBytes: DEFAULT_SPOOL_BLOCK_BYTES,
  rescanIntervalMs: DEFAULT_SPOOL_RESCAN_INTERVAL_MS,
  missingCheckIntervalMs: DEFAULT_SPOOL_MISSING_CHECK_INTERVAL_MS,
  debounceMs: DEFAULT_SPOOL_DEBOUNCE_MS,
  writeBatchBytes: DEFAULT_SPOOL_WRITE_BATCH_BYTES,
  writeBatches: DEFAULT_SPOOL_WRITE_BATCHES,
  directWriteBytes: DEFAULT_SPOOL_DIRECT_WRITE_BYTES,
  blockPiecesMax: DEFAULT_SPOOL_BLOCK_PIECES_MAX,
  packBytesMax: DEFAULT_SPOOL_PACK_BYTES_MAX,
  packLiveRatioMin: DEFAULT_SPOOL_PACK_LIVE_RATIO_MIN,
  compactBytesMax: DEFAULT_SPOOL_COMPACT_BYTES_MAX,
  segmentBytesMax: DEFAULT_SPOOL_SEGMENT_BYTES_MAX,
  readAttempts: DEFAULT_SPOOL_READ_ATTEMPTS,
  unstableRetryMsMin: DEFAULT_SPOOL_UNSTABLE_RETRY_MS_MIN,
  unstableRetryMsMax: DEFAULT_SPOOL_UNSTABLE_RETRY_MS_MAX,
  passCommitBytes: DEFAULT_SPOOL_PASS_COMMIT_BYTES,
  passCommitOps: DEFAULT_SPOOL_PASS_COMMIT_OPS,
  readBytes: DEFAULT_SPOOL_READ_BYTES,
  readBuffers: DEFAULT_SPOOL_READ_BUFFERS,
  readConcurrency: DEFAULT_SPOOL_READ_CONCURRENCY,
  readerIdleMs: DEFAULT_SPOOL_READER_IDLE_MS,
  firstScanMaxAgeMs: DEFAULT_SPOOL_FIRST_SCAN_MAX_AGE_MS,
  racyWindowMs: DEFAULT_SPOOL_RACY_WINDOW_MS,
  seenRecordMs: DEFAULT_SPOOL_SEEN_RECORD_MS,
  retryDelayMsMin: DEFAULT_RETRY_DELAY_MS_MIN,
  retryDelayMsMax: DEFAULT_RETRY_DELAY_MS_MAX,
  watch: true,
  knownDeadMax: DEFAULT_SPOOL_KNOWN_DEAD_MAX,
};

/** What a reader thread for blocks of this size and hash is started with, under `tuning`. */
export function readerConfigOf(tuning: SpoolTuning, blockBytes: number, blockHash: BlockHashName): ReaderConfig {
  return { blockBytes, blockHash, readBytes: tuning.readBytes, buffers: tuning.readBuffers, attempts: tuning.readAttempts, endsPerMessage: Math.max(1, Math.floor(tuning.readConcurrency / 8)) };
}
