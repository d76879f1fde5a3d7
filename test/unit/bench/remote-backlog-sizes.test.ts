import { describe, expect, it } from 'vitest';
import { remoteBacklogSizes } from '../../../scripts/bench/remote-streaming.js';

const MiB = 1024 * 1024;

// Goal: the remote suite's backlog sizes come from the environment as README says (whole MB,
// 0 leaving the short backlog out), and a value that would measure something else than it
// reports (an empty one read as 0, a target backlog of nothing, a short one no shorter than the
// target's) stops the suite instead.
describe('remote suite backlog sizes', () => {
  it('defaults to 1 GiB and 200 MB', () => {
    expect(remoteBacklogSizes({})).toEqual({ backlogBytes: 1024 * MiB, shortBacklogBytes: 200 * MiB });
  });

  it('takes whole numbers of MB, 0 leaving the short backlog out', () => {
    expect(remoteBacklogSizes({ BENCH_REMOTE_BACKLOG_MB: '512', BENCH_REMOTE_SHORT_BACKLOG_MB: '0' })).toEqual({ backlogBytes: 512 * MiB, shortBacklogBytes: 0 });
    expect(remoteBacklogSizes({ BENCH_REMOTE_BACKLOG_MB: '300', BENCH_REMOTE_SHORT_BACKLOG_MB: '100' })).toEqual({ backlogBytes: 300 * MiB, shortBacklogBytes: 100 * MiB });
  });

  it('refuses what is not a whole number of MB, empty included', () => {
    for (const text of ['', ' ', '1.5', '-1', '1e3', '0x10', 'ten']) {
      expect(() => remoteBacklogSizes({ BENCH_REMOTE_BACKLOG_MB: text })).toThrow(/BENCH_REMOTE_BACKLOG_MB must be a whole number/);
      expect(() => remoteBacklogSizes({ BENCH_REMOTE_SHORT_BACKLOG_MB: text })).toThrow(/BENCH_REMOTE_SHORT_BACKLOG_MB must be a whole number/);
    }
  });

  it('refuses a target backlog of nothing, and a short backlog no shorter than it', () => {
    expect(() => remoteBacklogSizes({ BENCH_REMOTE_BACKLOG_MB: '0', BENCH_REMOTE_SHORT_BACKLOG_MB: '0' })).toThrow(/at least 1/);
    expect(() => remoteBacklogSizes({ BENCH_REMOTE_BACKLOG_MB: '200' })).toThrow(/must be below/);
    expect(() => remoteBacklogSizes({ BENCH_REMOTE_BACKLOG_MB: '100' })).toThrow(/must be below/);
  });
});
