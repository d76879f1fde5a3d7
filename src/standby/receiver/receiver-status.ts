import { readdir, stat } from 'node:fs/promises';
import type { ArchiveIdentity } from '../../archive/archive-identity.js';
import { ArchiveLayout } from '../../archive/archive-layout.js';
import { listArchivedBinlogs } from '../../archive/archived-binlogs.js';
import { readLastHeard, type LastHeardRecord } from '../../archive/last-heard.js';
import type { DurablePoint } from '../../core/binlog-record.js';
import { volumeSpace, type VolumeSpace } from '../../platform/volume-space.js';

/** What `GET /status` on a receiver answers. */
export interface ReceiverStatus {
  archive: string;
  primary: ArchiveIdentity['primary'] | null;
  createdAt: string | null;
  binlog: {
    /** Everything up to here is fsynced (from the current or last agent session). */
    durable: DurablePoint | null;
    files: number;
    newest: { file: string; sizeBytes: number } | null;
  };
  agent: { id: string; remote: string; connectedAt: string } | null;
  /** When this receiver last heard from the agent (this process's memory). */
  lastHeardAt: string | null;
  /** state/last-heard.json: when the agent last heard from the primary; survives restarts. */
  primaryLastHeard: LastHeardRecord | null;
  base: string[];
  spool: string[];
  /** The archive volume's size and what is free on it (for this user), to alert before it fills; null if it cannot be read. */
  volume: VolumeSpace | null;
  /** The last failure a session reported to its agent (DISK_FULL, a refused event, ...), while this process runs. */
  lastError: { code: string; message: string; hint: string; at: string } | null;
  /** Connections open now, and how many of them have not finished a handshake (strays, scanners, a slow TLS peer). */
  connections: { open: number; withoutHandshake: number };
}

export async function receiverStatus(input: {
  archive: string;
  identity: ArchiveIdentity | undefined;
  durable: DurablePoint | undefined;
  agent: { id: string; remote: string; connectedAtMs: number } | undefined;
  lastHeardAtMs: number | undefined;
  lastProblem?: { code: string; message: string; hint: string; atMs: number } | undefined;
  connections: ReceiverStatus['connections'];
}): Promise<ReceiverStatus> {
  const layout = new ArchiveLayout(input.archive);
  const files = await listArchivedBinlogs(layout);
  const newestName = files[files.length - 1];
  let newest: ReceiverStatus['binlog']['newest'] = null;
  if (newestName !== undefined) {
    try {
      newest = { file: newestName, sizeBytes: (await stat(layout.binlogFile(newestName))).size };
    } catch {
      newest = null;
    }
  }
  return {
    archive: input.archive,
    primary: input.identity?.primary ?? null,
    createdAt: input.identity?.createdAt ?? null,
    binlog: { durable: input.durable ?? null, files: files.length, newest },
    agent: input.agent === undefined ? null : { id: input.agent.id, remote: input.agent.remote, connectedAt: new Date(input.agent.connectedAtMs).toISOString() },
    lastHeardAt: input.lastHeardAtMs === undefined ? null : new Date(input.lastHeardAtMs).toISOString(),
    // An unreadable record is no reason for the status page to fail: it says null.
    primaryLastHeard: (await readLastHeard(input.archive).catch(() => undefined)) ?? null,
    base: await names(layout.baseDir),
    spool: await names(layout.filesDir),
    volume: await volumeSpace(input.archive).catch(() => null),
    lastError:
      input.lastProblem === undefined
        ? null
        : { code: input.lastProblem.code, message: input.lastProblem.message, hint: input.lastProblem.hint, at: new Date(input.lastProblem.atMs).toISOString() },
    connections: input.connections,
  };
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch {
    return [];
  }
}
