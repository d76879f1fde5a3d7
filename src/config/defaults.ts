/**
 * Every limit in hotspare has a name and a default here; the config schema uses these, so a
 * default is written once. Units come last in every name.
 */

/**
 * Pause the dump connection when this many bytes are received but not yet durable on a
 * replica. An fsync costs about 10 ms however little it covers, so the mark must let one
 * fsync's worth of stream arrive while the previous one runs (at 300 MB/s, 16 MiB lets each
 * fsync cover several MiB); it is also what the agent may hold in memory per replica.
 */
export const DEFAULT_BINLOG_HIGH_WATER_BYTES = 16 * 1024 * 1024;
/** Resume the dump connection when the bytes not yet durable fall below this. */
export const DEFAULT_BINLOG_LOW_WATER_BYTES = 8 * 1024 * 1024;
/**
 * At most this many bytes go into one write (one writev) on an archive; an fsync covers
 * every write made before it. Large enough that what arrived during one fsync is written at
 * once and covered by the next.
 */
export const DEFAULT_SYNC_BATCH_BYTES_MAX = 16 * 1024 * 1024;
/** The primary sends a heartbeat at this period when idle, so a dead link shows. */
export const DEFAULT_HEARTBEAT_PERIOD_MS = 1_000;
/** No bytes at all for this long (heartbeats included) means the link is dead. */
export const DEFAULT_DUMP_IDLE_TIMEOUT_MS = 10_000;
/** net_write_timeout on the dump connection, so a long pause does not kill the dump. */
export const DEFAULT_NET_WRITE_TIMEOUT_S = 3_600;
/** Reconnect backoff: first delay, cap, and the jitter fraction. */
export const DEFAULT_RETRY_DELAY_MS_MIN = 200;
export const DEFAULT_RETRY_DELAY_MS_MAX = 30_000;
export const DEFAULT_RETRY_JITTER_RATIO = 0.3;
/**
 * The longest wait before connecting again to a receiver that could not be reached (or went
 * away): a connect attempt costs the standby nothing, while each second waited after it is back
 * is a second it is not protected. At the binlog's cap (30 s) an 18 s outage cost 29 s.
 */
export const DEFAULT_RECEIVER_RETRY_DELAY_MS_MAX = 5_000;
/**
 * The dump connection yields the event loop after this many events or bytes in one turn of it
 * (it pauses and resumes on the next turn), so a backlog never holds up the lag endpoint.
 */
export const DEFAULT_DUMP_SLICE_EVENTS = 128;
export const DEFAULT_DUMP_SLICE_BYTES = 256 * 1024;
/**
 * The dump connection's socket reads into slabs of this size, each read taking what is left of
 * one, down to DEFAULT_DUMP_READ_BYTES_MIN (see dumpSocketFactory): a catch-up arrives in reads
 * of up to a slab instead of libuv's 64 KiB. Not larger: reads of 1 MiB made the CRC32 of
 * the events that followed them 2-3x as slow (the kernel's copy of a large read seems to leave
 * it out of the cache), which ate most of what the fewer reads saved.
 */
export const DEFAULT_DUMP_READ_SLAB_BYTES = 256 * 1024;
export const DEFAULT_DUMP_READ_BYTES_MIN = 64 * 1024;
/** How often the agent asks the primary for its head position (one cheap query, shared). */
export const DEFAULT_HEAD_POLL_INTERVAL_MS = 500;
/** How often the agent reads a `file` replica's archive volume (size, free space) for the lag endpoint, in ms. */
export const DEFAULT_ARCHIVE_VOLUME_CHECK_INTERVAL_MS = 10_000;
/**
 * A file replica's session checks this often (ms) that its archive folder is still the one it
 * opened: a folder moved away (or a volume unmounted) under an open binlog file is otherwise
 * written on through that file, unseen, until the next one is opened at the old path.
 */
export const DEFAULT_ARCHIVE_ROOT_CHECK_INTERVAL_MS = 1_000;
/**
 * A question to the primary over the agent's ordinary connection (preflight, head checks) fails
 * as PRIMARY_UNREACHABLE after this long without an answer: a primary whose host vanished sends
 * no reset, and TCP alone gives up only after many minutes.
 */
export const DEFAULT_PRIMARY_QUERY_TIMEOUT_MS = 10_000;
/** Closing that connection waits this long for the primary's goodbye, then drops it. */
export const DEFAULT_PRIMARY_CLOSE_TIMEOUT_MS = 2_000;
/** Checkpoint the archive's resume index at most this often (the data itself is fsynced per batch). */
export const DEFAULT_INDEX_CHECKPOINT_INTERVAL_MS = 1_000;
/** The head poll interval while some replica has no stream (its lag is then dated by head checks alone). */
export const DEFAULT_HEAD_POLL_FAST_INTERVAL_MS = 50;
/** The lag endpoint renders /lag and /healthz at most this often; requests in between get the same bytes. */
export const DEFAULT_LAG_RENDER_INTERVAL_MS = 10;
/** /metrics is rendered again when the lag figures changed, and at least this often (process metrics). */
export const DEFAULT_METRICS_RENDER_INTERVAL_MS = 1_000;
/** The head counts as known while its last successful check is at most this many intervals old. */
export const DEFAULT_HEAD_STALE_INTERVALS = 3;
/** How often the head poller re-reads binlog_expire_logs_seconds. */
export const DEFAULT_EXPIRE_SETTING_REFRESH_MS = 60_000;
/** Lag thresholds for /healthz when a replica definition sets none. */
export const DEFAULT_MAX_LAG_SECONDS = 60;
export const DEFAULT_MAX_LAG_BYTES = 64 * 1024 * 1024;
/** Warn about purge when the primary keeps this many files or fewer ahead of a replica's need. */
export const DEFAULT_PURGE_WARNING_FILES = 2;
/** Warn about purge when the needed file's age reaches this fraction of binlog_expire_logs_seconds. */
export const DEFAULT_PURGE_WARNING_EXPIRE_RATIO = 0.75;
/** `hotspare check` gives up on the lag endpoint after this long (UNKNOWN). */
export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;
/** Default port of `hotspare receive`. */
export const DEFAULT_RECEIVE_PORT = 7654;
/** Spool files: the unit of change detection and shipping; a rewrite ships whole blocks of this size. */
export const DEFAULT_SPOOL_BLOCK_BYTES = 64 * 1024;
/**
 * A source's `blockBytes` is a power of two within these: page-aligned for O_DIRECT pack writes,
 * and at most the reader's piece (DEFAULT_SPOOL_READ_BYTES). Small blocks cost memory and journal
 * lines per block (a 1 GiB file in 4 KiB blocks is 262,144 of them).
 */
export const SPOOL_BLOCK_BYTES_MIN = 4 * 1024;
export const SPOOL_BLOCK_BYTES_MAX = 1024 * 1024;
/**
 * A block an append extended is stored in pieces (the block as it was, then the appended
 * bytes) up to this many; the next append ships it whole. Each piece is about 20 bytes of
 * every journal line and checkpoint entry naming the block, and a run to read at restore;
 * shipping whole costs up to a block. At 64 KiB blocks an append costs on average about 2 KiB
 * of data (a block per 32 appends) and 300 bytes of journal, against half a block (32 KiB)
 * when every append shipped the block whole.
 */
export const DEFAULT_SPOOL_BLOCK_PIECES_MAX = 32;
/** A full rescan of every spool source this often catches whatever the watcher missed. */
export const DEFAULT_SPOOL_RESCAN_INTERVAL_MS = 60_000;
/**
 * A source whose folder is missing is looked for this often (a stat): its watcher is closed
 * meanwhile, and waiting for the next rescan left it unarchived, and SPOOL_SOURCE_MISSING
 * raised, for up to a minute after the folder was back.
 */
export const DEFAULT_SPOOL_MISSING_CHECK_INTERVAL_MS = 1_000;
/** Watcher events are gathered this long before a pass, so a burst of writes ships once. */
export const DEFAULT_SPOOL_DEBOUNCE_MS = 50;
/** Keep spool history (for point-in-time restore) this long. */
export const DEFAULT_SPOOL_RETENTION_SECONDS = 7 * 24 * 3600;
/** Unsynced archive writes to one file start an early write-back (fdatasync in the background) every this many bytes. */
export const DEFAULT_ARCHIVE_WRITEBACK_BYTES = 16 * 1024 * 1024;
/**
 * An archive write whose aligned middle is at least this long goes to the disk with O_DIRECT
 * (see LocalArchiveFiles.write); shorter ones are not worth a second descriptor.
 */
export const DEFAULT_ARCHIVE_DIRECT_WRITE_BYTES_MIN = 256 * 1024;
/** O_DIRECT offsets, lengths and memory are aligned to this: the file-system block size, a multiple of any device's logical block. */
export const DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES = 4096;
/** An archive copies O_DIRECT writes through this many aligned buffers (of DEFAULT_ARCHIVE_DIRECT_BUFFER_BYTES), its memory bound for them. */
export const DEFAULT_ARCHIVE_DIRECT_BUFFERS = 4;
/** Size of each aligned buffer O_DIRECT writes are copied through; a longer write goes in pieces of this size. */
export const DEFAULT_ARCHIVE_DIRECT_BUFFER_BYTES = 1024 * 1024;
/**
 * The binlog archive appends whole blocks with O_DIRECT through this many aligned buffers of
 * DEFAULT_BINLOG_DIRECT_BUFFER_BYTES (8 MiB in all, per writer): enough for the thread pool to
 * have several writes at once while the next buffer is filled (see BinlogAppendFile). Writes of
 * 2 MiB rather than 1: half the direct writes per catch-up (each a thread-pool round trip and,
 * on ext4, an extending direct write that takes the inode's lock), faster and cheaper in the
 * binlog suite.
 */
export const DEFAULT_BINLOG_DIRECT_BUFFERS = 4;
export const DEFAULT_BINLOG_DIRECT_BUFFER_BYTES = 2 * 1024 * 1024;
/** Spool block data is copied into batches of this size, each written to the archive in one piece (without fsync; synced once per pass). */
export const DEFAULT_SPOOL_WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * At most this many spool write batches exist at once (filling or being written): the memory
 * bound, and how much a slow (remote) archive has in flight. A fast one reuses one or two.
 */
export const DEFAULT_SPOOL_WRITE_BATCHES = 8;
/** A data pack grows to this size before the next one starts. */
export const DEFAULT_SPOOL_PACK_BYTES_MAX = 256 * 1024 * 1024;
/** At a checkpoint, a pack with less than this share of live data has its live blocks copied forward, so pruning can drop it. */
export const DEFAULT_SPOOL_PACK_LIVE_RATIO_MIN = 0.5;
/** At most this many live bytes are copied forward per checkpoint (the rest at the next one). */
export const DEFAULT_SPOOL_COMPACT_BYTES_MAX = 256 * 1024 * 1024;
/** Live blocks being copied forward are read from the archive in pieces of at most this size. */
export const DEFAULT_SPOOL_COMPACT_READ_BYTES = 1024 * 1024;
/** A journal segment grows to this size before a new one starts with a checkpoint. */
export const DEFAULT_SPOOL_SEGMENT_BYTES_MAX = 64 * 1024 * 1024;
/**
 * The spool syncer's index of blocks it may reference instead of writing again (hash -> where)
 * holds the tree's live blocks plus every block written since the last journal checkpoint. Under
 * churn (a queue of unique messages, a counter rewritten in place) nearly every written block is
 * dead soon after, and a checkpoint comes only every 64 MiB of journal or a quarter of the
 * retention (42 h by default): the index grew by about 160 bytes per block written until then,
 * per replica and source. Once it holds more than this many entries beyond the live blocks (or
 * more than as many again as the live blocks, for a large tree), it is rebuilt from the tree at the
 * end of a pass: identical data written again after that is stored again (a few KiB, rare), and
 * rebuilding costs a walk of the tree no more often than the index doubles.
 */
export const DEFAULT_SPOOL_KNOWN_DEAD_MAX = 16_384;
/** Spool files are read in pieces of this size (the next piece is read while one is hashed). */
export const DEFAULT_SPOOL_READ_BYTES = 1024 * 1024;
/** This many spool files are queued to the reader thread at once, so it never waits for the next one. */
export const DEFAULT_SPOOL_READ_CONCURRENCY = 256;
/** A run of new spool blocks at least this long is written to the pack straight from the read buffer instead of being copied into a batch. */
export const DEFAULT_SPOOL_DIRECT_WRITE_BYTES = 256 * 1024;
/**
 * A long spool pass (a first copy of a large tree) commits what it has shipped every this many
 * bytes of files or journal operations, so a crash or a failed write part-way loses at most
 * that much work, and the operations held in memory stay bounded.
 */
export const DEFAULT_SPOOL_PASS_COMMIT_BYTES = 256 * 1024 * 1024;
export const DEFAULT_SPOOL_PASS_COMMIT_OPS = 50_000;
/** The spool reader thread holds at most this many read buffers of DEFAULT_SPOOL_READ_BYTES (with it or being shipped). */
export const DEFAULT_SPOOL_READ_BUFFERS = 8;
/** The spool reader thread ends after this long without a file to read (an idle source holds no thread and no buffer). */
export const DEFAULT_SPOOL_READER_IDLE_MS = 10_000;
/**
 * Spool readers a stopped syncer leaves for the next (ReaderPool): a reconnecting standby's next
 * session reads with a running thread. Each holds at most its thread and buffers, and those only
 * until DEFAULT_SPOOL_READER_IDLE_MS has passed without work.
 */
export const DEFAULT_SPOOL_IDLE_READERS_MAX = 8;
/**
 * The walk a syncer asks for as it starts (so that it runs while the archive is opened) is taken
 * by its first pass only if that pass begins within this long: an archive slow to open (a remote
 * one's journal) would otherwise have the pass compare the archive with the tree as it was
 * seconds before. (What changes after any walk is found by the pass that follows the watcher's
 * readiness.)
 */
export const DEFAULT_SPOOL_FIRST_SCAN_MAX_AGE_MS = 1_000;
/** A file that keeps changing while it is read is tried this many times per pass. */
export const DEFAULT_SPOOL_READ_ATTEMPTS = 5;
/**
 * After a pass found a file changing under every attempt, it is not read again for this long,
 * doubling with each such pass up to the max (then, and at the first, SPOOL_FILE_UNSTABLE is
 * logged): a busy 64 MiB log read five times on every watcher event took 1.5 cores of the primary
 * and logged a warning 12 times a second. The archive keeps the file's last version meanwhile.
 */
export const DEFAULT_SPOOL_UNSTABLE_RETRY_MS_MIN = 1_000;
export const DEFAULT_SPOOL_UNSTABLE_RETRY_MS_MAX = 60_000;
/**
 * A file whose mtime is this close to the moment it was read may be rewritten within the same
 * timestamp tick, invisibly to size/mtime; it is hashed again on a pass after this window.
 */
export const DEFAULT_SPOOL_RACY_WINDOW_MS = 1_000;
/**
 * A spool source that has not changed for this long gets a `seen` journal record at its next
 * full pass (one line, about 60 bytes): after a crash or a stop the next start knows that nobody
 * watched it from at most this long before, and a restore to a point in between warns
 * (SPOOL_POINT_UNCERTAIN) for no more than that. Shorter: more appends on an idle archive.
 */
export const DEFAULT_SPOOL_SEEN_RECORD_MS = 5 * 60_000;
/** A restore inside an unwatched window names at most this many of the deletes and renames it could not place (it counts them all). */
export const DEFAULT_SPOOL_UNPLACED_NAMED = 10;
/**
 * The agent records in each archive when it last heard from the primary (state/last-heard.json)
 * at most this often: the end of the loss window `promote` reports, to within this much.
 */
export const DEFAULT_LAST_HEARD_WRITE_INTERVAL_MS = 1_000;
/**
 * A stopping agent waits at most this long for what each replica has received to become
 * durable before it writes the last last-heard record, so an agent stopped right after it
 * caught up says so (and promote reports a loss window of 0, not the fsync still in flight).
 * Short: under a steady write load there may be no such moment, and a stop must not drag.
 */
export const DEFAULT_STOP_SETTLE_MS = 2_000;
/** A post-promotion hook is killed after this long. */
export const DEFAULT_HOOK_TIMEOUT_SECONDS = 300;
/** The longest a hook may be given (a day): a timer of more than 2^31-1 ms fires at once, so the hook would be killed at its start. */
export const HOOK_TIMEOUT_SECONDS_MAX = 86_400;
/**
 * Wire protocol version spoken by `remote` replicas and `hotspare receive` (2: events travel in
 * EVENTS batches; 3: an event larger than a batch travels in EVENT_PIECE frames, and READ_FILE
 * answers in chunks, so every frame is bounded).
 */
export const WIRE_PROTOCOL_VERSION = 3;
/** Frames before the handshake completes, and control frames, are at most this long. */
export const DEFAULT_WIRE_CONTROL_FRAME_BYTES_MAX = 64 * 1024;
/**
 * The agent gathers the events it has in hand into one EVENTS frame of up to this many bytes
 * (event bytes and their metadata); an event larger than that travels alone in EVENT_PIECE
 * frames of up to this many bytes each. The frame leaves at the end of the current turn of the
 * event loop, never later, so an idle stream's one event is sent at once.
 */
export const DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX = 1024 * 1024;
/**
 * After the handshake no frame is longer than this: a batch or a piece of events
 * (DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX), or a file chunk (DEFAULT_WIRE_FILE_CHUNK_BYTES), plus
 * its metadata (a FILE_REQUEST's arguments are at most 64 KiB). A receiver's memory per session
 * is then this plus its pending bytes, whatever the size of an event.
 */
export const DEFAULT_WIRE_FRAME_BYTES_MAX = 1024 * 1024 + 128 * 1024;
/** An EVENTS frame holds at most this many events (the receiver refuses more). */
export const DEFAULT_WIRE_FRAME_EVENTS_MAX = 4096;
/** A putFile over the wire travels in chunks of this size, one request each (bounded memory). */
export const DEFAULT_WIRE_FILE_CHUNK_BYTES = 1024 * 1024;
/** Each side sends a PING when it has sent nothing else for this long. */
export const DEFAULT_WIRE_HEARTBEAT_INTERVAL_MS = 2_000;
/** Nothing received for this long (PINGs included) means the peer is dead. */
export const DEFAULT_WIRE_IDLE_TIMEOUT_MS = 15_000;
/** A connection must send its HELLO (after TLS, if any) within this long or it is dropped; admission is the receiver's own work and not counted. */
export const DEFAULT_WIRE_HANDSHAKE_TIMEOUT_MS = 5_000;
/** The agent gives up connecting to a receiver after this long (and retries with backoff). */
export const DEFAULT_REMOTE_CONNECT_TIMEOUT_MS = 5_000;
/** On close the agent waits this long for the receiver's final acknowledgement. */
export const DEFAULT_REMOTE_CLOSE_TIMEOUT_MS = 10_000;
/** An archive file operation over the wire fails after this long without an answer. */
export const DEFAULT_REMOTE_REQUEST_TIMEOUT_MS = 120_000;
/**
 * Once the agent stops, an archive file operation (a spool write) waits at most this long for
 * the receiver's answer: over a slow link the stop would otherwise wait for the whole pass, up
 * to DEFAULT_REMOTE_REQUEST_TIMEOUT_MS per operation, and a service manager's stop timeout
 * kill it. An operation given up on commits nothing (pack data is referenced only by journal
 * records written after it is synced); the next start ships it again.
 */
export const DEFAULT_STOP_REQUEST_GRACE_MS = 5_000;
/**
 * At start, the agent checks every replica's archive at once and waits at most this long for
 * each: one on a hung volume (an NFS server gone, a frozen disk) is left to its retries, and
 * the others start (checked one after the other, without a deadline, one hung volume held
 * them all back).
 */
export const DEFAULT_REPLICA_CHECK_TIMEOUT_MS = 10_000;
/** The agent saves each replica's durable point in its stateDir this often (and at stop), for the lag of a standby it cannot reach after a restart. */
export const DEFAULT_DURABLE_POINTS_SAVE_INTERVAL_MS = 5_000;
/**
 * A replica's saved "caught up by" time is written again once it has moved this far (ms): an
 * idle primary moves it with every heartbeat, and a restarted agent dates what lies beyond the
 * saved point from it (at most this much too old) instead of from the last commit, days ago.
 */
export const DEFAULT_DURABLE_POINTS_CAUGHT_UP_STEP_MS = 60_000;
/** The receiver serves at most this many connections at once (one agent plus strays). */
export const DEFAULT_RECEIVER_CONNECTIONS_MAX = 16;
/**
 * The agent's lag endpoint serves at most this many connections at once (scrapers and checkers
 * keep a few open), and drops one whose request has not come whole within
 * DEFAULT_LAG_HTTP_REQUEST_TIMEOUT_MS: without a limit, idle connections by the thousand used up
 * the descriptors of the process that holds the dumps and the archives.
 */
export const DEFAULT_LAG_HTTP_CONNECTIONS_MAX = 64;
export const DEFAULT_LAG_HTTP_REQUEST_TIMEOUT_MS = 10_000;
/**
 * The receiver logs at most this many lines about connections it drops or refuses (strays, a
 * full table, a wrong token) per DEFAULT_RECEIVER_PEER_LOG_WINDOW_MS; the next line let through
 * says how many were held back.
 */
export const DEFAULT_RECEIVER_PEER_LOG_LINES = 20;
export const DEFAULT_RECEIVER_PEER_LOG_WINDOW_MS = 10_000;
/**
 * The receiver's GET /status (--http) serves at most this many connections at once, and drops
 * one whose request has not fully come within DEFAULT_RECEIVER_HTTP_REQUEST_TIMEOUT_MS: without
 * a limit, about a thousand idle connections used up a receiver's descriptors (the usual limit
 * of 1024), and the agent's connections were then closed as they came.
 */
export const DEFAULT_RECEIVER_HTTP_CONNECTIONS_MAX = 16;
export const DEFAULT_RECEIVER_HTTP_REQUEST_TIMEOUT_MS = 10_000;
/** The receiver stops reading a connection while this many bytes wait for fsync. */
export const DEFAULT_RECEIVER_PENDING_BYTES_MAX = 64 * 1024 * 1024;
/** At most this many putFile uploads may be open at once on one receiver session. */
export const DEFAULT_RECEIVER_UPLOADS_MAX = 8;
/**
 * The receiver stops reading a connection while this many bytes of archive file requests wait
 * their turn (the agent sends WRITE chunks without waiting: a few MiB at a time, so this is
 * never reached by an agent, only by a peer that writes faster than the disk takes it).
 */
export const DEFAULT_RECEIVER_FILE_QUEUE_BYTES_MAX = 32 * 1024 * 1024;
/**
 * A queued file request counts at least this much against DEFAULT_RECEIVER_FILE_QUEUE_BYTES_MAX,
 * whatever its payload: its request object, arguments and place in the queue cost about that
 * much memory, so a flood of 9-byte requests is bounded as well as one of large writes (counted
 * by payload alone, 32 MiB of them was about 3.7 million requests, gigabytes of heap).
 */
export const DEFAULT_RECEIVER_FILE_REQUEST_COST_BYTES = 1024;
/**
 * The receiver drops a peer that has not taken what it was sent (its socket's send buffer
 * full, no drain) for this long: one that stops reading would otherwise hold its session, and
 * the archive, for ever (its answers wait for a drain, its PINGs keep the idle clock fresh).
 * Generous, so a slow link taking a 1 MiB answer (about 17 KB/s) is not taken for one.
 */
export const DEFAULT_RECEIVER_WRITE_STALL_MS = 60_000;
/**
 * A remote replica's base backup is taken into the agent's stateDir first and uploaded from
 * there (so it survives a link that drops): at most this many bytes of one base are staged.
 */
export const DEFAULT_BASE_STAGING_BYTES_MAX = 64 * 1024 * 1024 * 1024;
/** A staged base is uploaded in pieces of this size (each travels as wire-sized WRITE chunks). */
export const DEFAULT_BASE_UPLOAD_PIECE_BYTES = 4 * 1024 * 1024;
/** Pieces of a base upload sent before the first of them is answered (memory: this many pieces). */
export const DEFAULT_BASE_UPLOAD_PIECES_IN_FLIGHT = 2;
/** Base backups: one INSERT statement holds rows up to about this many bytes of SQL. */
export const DEFAULT_BASE_INSERT_BYTES_MAX = 1024 * 1024;
/** Base backups: parallel row streams (client sessions sharing one snapshot), and restore clients. */
export const DEFAULT_BASE_STREAMS = 2;
/** Base backups: gzip level of the files (speed over size: the primary is busy; the strategy is Z_RLE, see compressed-file.ts). */
export const DEFAULT_BASE_GZIP_LEVEL = 1;
/** Base backups: how long the primary waits for a dump session that stopped reading (a slow archive). */
export const DEFAULT_BASE_NET_WRITE_TIMEOUT_S = 3600;
/**
 * Base backups: the most non-transactional tables locked for read in one LOCK TABLES, so that
 * the global read lock can go before their rows are copied (table-read-locks.ts). LOCK TABLES
 * opens every table at once; beyond this, a primary's table cache and open-file limit would be
 * at risk, and the tables are copied under the global read lock instead.
 */
export const DEFAULT_BASE_TABLE_LOCK_TABLES_MAX = 1000;
/**
 * Base backups: how long LOCK TABLES ... READ on the non-transactional tables may wait (s). It
 * waits only for a session holding a write lock on one of them; past this the tables are copied
 * under the global read lock instead, as the writers behind that lock would otherwise wait too.
 */
export const DEFAULT_BASE_TABLE_LOCK_WAIT_TIMEOUT_S = 2;
/** Base backups: the session's lock_wait_timeout once it holds the global read lock (the schema dump's metadata locks). */
export const DEFAULT_BASE_LOCK_WAIT_TIMEOUT_S = 60;
/**
 * Base backups: FLUSH TABLES WITH READ LOCK is asked for only once no writing statement on the
 * primary has run this long (it would make every writer wait for that statement, global-read-lock.ts).
 */
export const DEFAULT_BASE_LOCK_LONG_QUERY_S = 2;
/** Base backups: how long the lock waits for such statements to end before it is asked for anyway (each attempt still bounded). */
export const DEFAULT_BASE_LOCK_QUIET_WAIT_MAX_S = 10;
/** Base backups: the longest pause between attempts that were not granted (the pauses double from the poll interval). */
export const DEFAULT_BASE_LOCK_RETRY_PAUSE_MS_MAX = 30_000;
/** Base backups: how long one FLUSH TABLES WITH READ LOCK may wait (writers wait with it) before it gives up and tries again. */
export const DEFAULT_BASE_LOCK_ATTEMPT_TIMEOUT_S = 2;
/** Base backups: how often the primary is looked at for long statements while the lock waits. */
export const DEFAULT_BASE_LOCK_POLL_INTERVAL_MS = 500;
/** Base backups: how long in all a base waits for the global read lock before it fails with BASE_LOCK_TIMEOUT. */
export const DEFAULT_BASE_LOCK_WAIT_MAX_S = 600;
/** An abandoned base backup's KILL of its primary session waits this long to connect; the socket is closed anyway. */
export const DEFAULT_BASE_KILL_CONNECT_TIMEOUT_MS = 3_000;
/** wait_timeout of the base backup's own connection, which idles holding the lock and snapshot while the dump runs: the longest a server takes (a year). */
export const DEFAULT_BASE_SESSION_WAIT_TIMEOUT_S = 31_536_000;
/** Agent control socket: the longest request or answer line (JSON) it accepts. */
export const DEFAULT_CONTROL_MESSAGE_BYTES_MAX = 64 * 1024;
/** Agent control socket: connections served at once (each is one `hotspare base` waiting). */
export const DEFAULT_CONTROL_CONNECTIONS_MAX = 8;
/** A base backup asked of the agent waits this long for a replica's archive session to open. */
export const DEFAULT_CONTROL_SESSION_WAIT_MS = 60_000;
/** When the agent stops, how long answers already worked out get to reach their askers before the control connections are dropped. */
export const DEFAULT_CONTROL_CLOSE_WAIT_MS = 2_000;
/** Physical base backups: keep at most this much of mariabackup's stderr (its tail) for the error message. */
export const DEFAULT_PHYSICAL_BASE_STDERR_BYTES_MAX = 16 * 1024;
/** Physical promotion: how long the target server may take to exit after SHUTDOWN. */
export const DEFAULT_TARGET_STOP_TIMEOUT_MS = 120_000;
/** Promotion: the target session's lock_wait_timeout (s): read_only = ON waiting for commits, DROP DATABASE for open tables. */
export const DEFAULT_PROMOTE_LOCK_WAIT_TIMEOUT_S = 60;
/** Physical promotion: how long the target's start command and the server's first answer may take. */
export const DEFAULT_TARGET_START_TIMEOUT_MS = 300_000;
/** Physical promotion: how often the target is polled while it stops or starts. */
export const DEFAULT_TARGET_POLL_INTERVAL_MS = 25;
/**
 * Physical base backups: how the mariabackup stream is stored. Measured side by side by the base
 * benchmark (see README, Benchmarks, and take-physical-base-backup.ts for the figures).
 */
export const DEFAULT_PHYSICAL_BASE_COMPRESSION: 'gzip' | 'none' = 'none';
/**
 * The largest single buffered write to a file (larger ones are cut). Linux (6.x) caches a large
 * write in large folios, and on this project's VMs (free page reporting to the host) those cost
 * a host fault each: 256 MB written in 2 MiB writes took 0.70 s of system time, in 256 KiB writes
 * 0.11 s (dd: 1.85 s against 0.21 s for 585 MB). Below this size the syscalls cost nothing next
 * to the copy.
 */
export const DEFAULT_PAGE_CACHE_WRITE_BYTES = 256 * 1024;
/**
 * How many of one batch's slices are in the thread pool at once (see writevAllAt). Enough to
 * keep libuv's four threads busy without a turn of the event loop per slice, and few enough
 * that an fsync or a file open queued behind them waits for at most a few milliseconds.
 */
export const DEFAULT_PAGE_CACHE_WRITES_IN_FLIGHT = 4;
/**
 * Files written from a stream (StreamedFileWriter), all of the process's together: writes and
 * write-backs in the thread pool at once. A logical base writes four files, a receiver takes
 * several uploads; a hung volume holds at most these threads of the pool for them.
 */
export const DEFAULT_STREAMED_WRITE_SLOTS = 4;
/**
 * A file written from a stream: an fdatasync starts in the background after this many bytes,
 * so the disk writes while the stream goes on and the final fsync has only the tail left.
 */
export const DEFAULT_STREAMED_WRITEBACK_BYTES = 32 * 1024 * 1024;
/** Physical base backups: the stream goes to the archive in pieces of about this size. */
export const DEFAULT_PHYSICAL_BASE_PIECE_BYTES = 1024 * 1024;
/**
 * Physical promotion: the stream is read in pieces of this size by the extractor's thread
 * (xbstream-extract.ts); a piece is its memory. At least one chunk header (546 bytes) long.
 */
export const DEFAULT_XBSTREAM_READ_BYTES = 1024 * 1024;
/**
 * Physical promotion: at most this many files of the stream may be open (begun, not yet ended)
 * at once. mariabackup has one per copy thread open; many more means the stream is damaged.
 */
export const DEFAULT_XBSTREAM_OPEN_FILES_MAX = 1024;
/** Physical promotion: mbstream -x worker threads (files written in parallel), where mbstream extracts (a compressed stream, or a chunk type our extractor does not know). */
export const DEFAULT_PHYSICAL_EXTRACT_THREADS = 2;
/**
 * Physical promotion: files of the prepared base flushed to disk at once (fdatasync on the
 * libuv pool, whose 4 threads this fills), so the disk sees several files' writeback together.
 */
export const DEFAULT_PHYSICAL_SYNC_CONCURRENCY = 4;
/**
 * Base checksums: each file is read in pieces of this size into two buffers reused throughout
 * (one is read while the other is hashed). 64 KiB stream chunks, each a fresh buffer, made the
 * reads cost as much as the sha256 itself.
 */
export const DEFAULT_BASE_CHECKSUM_READ_BYTES = 1024 * 1024;

/** After a stop has made everything durable and closed what it owns, the process exits within this long even if a handle still holds it. */
export const DEFAULT_EXIT_GRACE_MS = 5_000;
