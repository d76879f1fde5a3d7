import { parseArgs } from 'node:util';
import type { LagReport, ReplicaLagReport } from '../agent/lag-monitor.js';
import { DEFAULT_CHECK_TIMEOUT_MS } from '../config/defaults.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../platform/logger.js';

/** Monitoring-plugin exit codes; specific to `hotspare check` (every other verb uses 0/1/2). */
export const CheckStatus = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;
type StatusName = keyof typeof CheckStatus;

export interface CheckVerdict {
  status: StatusName;
  /** The one line the plugin prints (with performance data after `|`). */
  line: string;
}

/**
 * The verdict on a /lag report. CRITICAL: a replica in `gap` or `error`, over its lag
 * thresholds (the command line's when given, else the replica's own; its spool changes
 * waiting longer than the seconds threshold too), or without a stream
 * for longer than its budget. WARNING: binlog about to be purged, or a replica briefly
 * without a stream. Otherwise OK.
 */
export function evaluateLag(report: LagReport, limits: { maxLagSeconds?: number | undefined; maxLagBytes?: number | undefined }): CheckVerdict {
  if (!Array.isArray(report.replicas) || report.replicas.length === 0) return { status: 'UNKNOWN', line: 'HOTSPARE UNKNOWN - the lag endpoint lists no replicas' };
  const critical: string[] = [];
  const warning: string[] = [];
  const perf: string[] = [];
  for (const r of report.replicas) {
    const maxS = limits.maxLagSeconds ?? r.thresholds.maxLagSeconds;
    const maxB = limits.maxLagBytes ?? r.thresholds.maxLagBytes;
    const { secondsBehind, bytesBehind } = r.binlog;
    perf.push(`'${r.name}_lag_seconds'=${secondsBehind}s;;${maxS};0`, `'${r.name}_lag_bytes'=${bytesBehind}B;;${maxB};0`);
    if (r.state === 'gap' || r.state === 'error') critical.push(`${r.name} ${r.state}: ${describeProblem(r)}`);
    // Until the replica's archive has said where it ends (binlog.file null), its lag is a guess
    // from the primary's oldest file: as /healthz, no alarm on it (DISCONNECTED says why).
    const known = r.binlog.file !== null;
    if (known && secondsBehind > maxS) critical.push(`${r.name} ${secondsBehind} s behind (max ${maxS} s)`);
    if (known && bytesBehind > maxB) critical.push(`${r.name} ${bytesBehind} bytes behind (max ${maxB})`);
    if (r.files.oldestPendingSeconds > maxS) critical.push(`${r.name} spool changes waiting for ${r.files.oldestPendingSeconds} s (max ${maxS} s)`);
    const disconnected = r.problems.find((p) => p.code === 'DISCONNECTED');
    if (disconnected !== undefined) critical.push(`${r.name} disconnected: ${disconnected.message}`);
    else if (r.state === 'disconnected') warning.push(`${r.name} disconnected${r.error === null ? '' : ` (${r.error.code})`}`);
    for (const w of r.warnings) warning.push(`${r.name}: ${w.code}: ${w.message}`);
  }
  const status: StatusName = critical.length > 0 ? 'CRITICAL' : warning.length > 0 ? 'WARNING' : 'OK';
  const summary =
    status === 'OK'
      ? report.replicas.map((r) => `${r.name} ${r.state} ${r.binlog.secondsBehind} s ${r.binlog.bytesBehind} B`).join(', ')
      : [...critical, ...warning].join('; ');
  return { status, line: `HOTSPARE ${status} - ${summary} | ${perf.join(' ')}` };
}

function describeProblem(r: ReplicaLagReport): string {
  const p = r.problems[0] ?? (r.error === null ? undefined : r.error);
  return p === undefined ? 'no details' : `${p.code}: ${p.message}`;
}

/**
 * `hotspare check --url URL [--max-lag-seconds N] [--max-lag-bytes N]`: reads the agent's
 * /lag, prints one line and exits 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN). A URL without a
 * path means the agent's /lag. Wrong arguments and an unreachable endpoint are UNKNOWN.
 */
export async function checkCommand(argv: string[], _logger: Logger): Promise<number> {
  const out = (verdict: CheckVerdict): number => {
    process.stdout.write(`${verdict.line}\n`);
    return CheckStatus[verdict.status];
  };
  let url: URL;
  let limits: { maxLagSeconds?: number | undefined; maxLagBytes?: number | undefined };
  try {
    const { values } = parseArgs({
      args: argv,
      options: { url: { type: 'string' }, 'max-lag-seconds': { type: 'string' }, 'max-lag-bytes': { type: 'string' } },
      strict: true,
    });
    if (values.url === undefined) throw new Error('check needs --url URL (the agent\'s lag endpoint)');
    url = new URL(values.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--url must be http:// or https://, received ${values.url}`);
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/lag';
    limits = {
      maxLagSeconds: nonNegative(values['max-lag-seconds'], '--max-lag-seconds'),
      maxLagBytes: nonNegative(values['max-lag-bytes'], '--max-lag-bytes'),
    };
  } catch (err) {
    return out({ status: 'UNKNOWN', line: `HOTSPARE UNKNOWN - usage: ${errorMessage(err)}` });
  }
  let report: LagReport;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(DEFAULT_CHECK_TIMEOUT_MS), headers: { accept: 'application/json' } });
    if (response.status !== 200) return out({ status: 'UNKNOWN', line: `HOTSPARE UNKNOWN - ${url.href} answered HTTP ${response.status}` });
    report = (await response.json()) as LagReport;
    if (typeof report !== 'object' || report === null || !Array.isArray(report.replicas)) throw new Error('not a lag report');
  } catch (err) {
    return out({ status: 'UNKNOWN', line: `HOTSPARE UNKNOWN - cannot read ${url.href}: ${errorMessage(err)}` });
  }
  try {
    return out(evaluateLag(report, limits));
  } catch (err) {
    return out({ status: 'UNKNOWN', line: `HOTSPARE UNKNOWN - ${url.href} returned an unexpected report: ${errorMessage(err)}` });
  }
}

function nonNegative(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`${flag} expects a number >= 0, received ${JSON.stringify(value)}`);
  return n;
}
