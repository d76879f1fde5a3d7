import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'hotspare-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const base = { primary: { host: '127.0.0.1', port: 3306, user: 'hotspare', password: 's3cret', serverId: 4242 }, stateDir: 'state', replicas: [{ name: 'a', type: 'file', path: '/mnt/a' }] };

// Goal: the contract's config loads as written (JSON and YAML), and every error names its field.
describe('agent config', () => {
  it("loads the contract's example with replica files relative to the config", () => {
    mkdirSync(join(dir, 'replicas'), { recursive: true });
    write('replicas/standby-a.json', { name: 'standby-a', type: 'file', path: '/mnt/archive' });
    write('replicas/standby-b.json', { name: 'standby-b', type: 'remote', address: 'standby-b.example:7654', tokenFile: '/etc/hotspare/token', tls: { ca: '/etc/hotspare/ca.pem' } });
    write('pw', 'hunter2\n');
    const path = write('agent.json', {
      primary: { host: '127.0.0.1', port: 3306, user: 'hotspare', passwordFile: 'pw', serverId: 4242 },
      stateDir: '/var/lib/hotspare',
      replicas: ['replicas/standby-a.json', 'replicas/standby-b.json'],
      spool: [{ name: 'spool', path: '/etc/emg/spool' }, { name: 'config', path: '/etc/emg', exclude: ['log/**', 'spool/**'] }, { name: 'feeds', path: '/var/lib/phpfina', appendOnly: ['*.dat'] }],
      http: { listen: '127.0.0.1:9187' },
    });
    const config = loadAgentConfig(path);
    expect(config.primary.password).toBe('hunter2');
    expect(config.replicas.map((r) => r.name)).toEqual(['standby-a', 'standby-b']);
    expect(config.replicas[0]?.thresholds.maxLagSeconds).toBeGreaterThan(0);
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9187 });
    expect(config.spool[1]?.exclude).toEqual(['log/**', 'spool/**']);
    expect(config.spool.map((s) => s.appendOnly)).toEqual([[], [], ['*.dat']]);
  });

  it('resolves every relative path of a replica, in a replica file or inline, against the config file', () => {
    mkdirSync(join(dir, 'rel/replicas'), { recursive: true });
    write('rel/replicas/b.json', { name: 'b', type: 'remote', address: 'b.example:7654', tokenFile: 'secrets/token', tls: { ca: 'tls/ca.pem', servername: 'b' } });
    const path = write('rel/agent.json', {
      ...base,
      replicas: ['replicas/b.json', { name: 'a', type: 'file', path: 'archive' }, { name: 'c', type: 'remote', address: 'c.example:7654', tokenFile: '/etc/hotspare/token' }],
    });
    const config = loadAgentConfig(path);
    expect(config.replicas).toMatchObject([
      { name: 'b', tokenFile: join(dir, 'rel/secrets/token'), tls: { ca: join(dir, 'rel/tls/ca.pem'), servername: 'b' } },
      { name: 'a', path: join(dir, 'rel/archive') },
      { name: 'c', tokenFile: '/etc/hotspare/token' },
    ]);
    expect(config.stateDir).toBe(join(dir, 'rel/state'));
  });

  it('loads YAML', () => {
    const path = write('agent.yaml', 'primary:\n  socketPath: /run/mysqld/mysqld.sock\n  user: hotspare\n  serverId: 7\nstateDir: /tmp/s\nreplicas:\n  - {name: a, type: file, path: /mnt/a}\n');
    expect(loadAgentConfig(path).primary.socketPath).toBe('/run/mysqld/mysqld.sock');
  });

  it.each([
    [{ ...base, primary: { ...base.primary, port: 'x' } }, 'primary.port: expected a number, received "x"'],
    [{ ...base, colour: 'blue' }, '(top level): unknown key "colour"'],
    [{ ...base, replicas: [{ name: 'a', type: 'ftp', path: '/x' }] }, 'replicas[0].type: expected one of "file", "remote", received "ftp"'],
    [{ ...base, replicas: [{ name: 'a', type: 'file' }] }, 'replicas[0].path: required'],
    [{ ...base, replicas: [base.replicas[0], base.replicas[0]] }, 'replicas[1].name: duplicate replica name "a"'],
    [{ ...base, spool: [{ name: 's', path: 'relative' }] }, 'spool[0].path: expected an absolute path'],
    [{ ...base, spool: [{ name: 's', path: '/var/log/gw', appendOnly: '*.log' }] }, 'spool[0].appendOnly: expected an array'],
    [{ ...base, http: { listen: 'nowhere' } }, 'http.listen: expected HOST:PORT'],
    [{ ...base, primary: { ...base.primary, passwordFile: '/nonexistent/pw', password: undefined } }, 'primary.passwordFile: cannot read /nonexistent/pw: ENOENT'],
  ])('names the field: %#', (content, message) => {
    const path = write('bad.json', content);
    expect(() => loadAgentConfig(path)).toThrowError(message);
  });

  it('names the replicas entry whose file is missing or not JSON', () => {
    const missing = write('agent-missing.json', { ...base, replicas: [base.replicas[0], 'replicas/missing.json'] });
    expect(() => loadAgentConfig(missing)).toThrowError(/^replicas\[1\]: cannot read .*replicas\/missing\.json: ENOENT$/);
    write('replicas/garbled.json', '{ not json');
    const garbled = write('agent-garbled.json', { ...base, replicas: ['replicas/garbled.json'] });
    expect(() => loadAgentConfig(garbled)).toThrowError(/^replicas\[0\]: .*replicas\/garbled\.json is not valid JSON/);
  });

  it('names a field inside a replica file', () => {
    write('replicas/broken.json', { name: 'x', type: 'remote', address: 'nohost', tokenFile: '/t' });
    const path = write('agent2.json', { ...base, replicas: ['replicas/broken.json'] });
    expect(() => loadAgentConfig(path)).toThrowError('replicas[0] (replicas/broken.json).address: expected HOST:PORT');
  });

  it('base.method: logical by default, physical when asked, and a wrong value names the field', () => {
    expect(loadAgentConfig(write('base-default.json', base)).base.method).toBe('logical');
    expect(loadAgentConfig(write('base-physical.json', { ...base, base: { method: 'physical' } })).base.method).toBe('physical');
    expect(() => loadAgentConfig(write('base-bad.json', { ...base, base: { method: 'xtrabackup' } }))).toThrowError(/^base\.method: /);
    expect(() => loadAgentConfig(write('base-extra.json', { ...base, base: { method: 'physical', level: 9 } }))).toThrowError(/base.*level/);
  });

  it('refuses replicas, state and spool folders that overlap, a receiver twice, a dump id twice, and tuning that contradicts itself', () => {
    const folder = join(dir, 'volumes');
    mkdirSync(join(folder, 'real'), { recursive: true });
    symlinkSync(join(folder, 'real'), join(folder, 'link'));
    const file = (name: string, path: string): object => ({ name, type: 'file', path });
    const remote = (name: string, address: string): object => ({ name, type: 'remote', address, tokenFile: '/t' });
    const cases: Array<[string, object, RegExp]> = [
      ['same-path', { replicas: [file('a', join(folder, 'real')), file('b', join(folder, 'real'))] }, /^replicas\[1\]\.path: .* lies inside replica "a"'s archive/],
      ['symlinked', { replicas: [file('a', join(folder, 'real')), file('b', join(folder, 'link'))] }, /^replicas\[1\]\.path: /],
      ['nested', { replicas: [file('a', join(folder, 'real')), file('b', join(folder, 'real', 'inner'))] }, /^replicas\[1\]\.path: /],
      ['in-state', { stateDir: join(folder, 'state'), replicas: [file('a', join(folder, 'state', 'archive'))] }, /^replicas\[0\]\.path: .*the state folder/],
      ['spool-holds-archive', { replicas: [file('a', join(folder, 'real', 'archive'))], spool: [{ name: 's', path: join(folder, 'real') }] }, /^spool\[0\]\.path: .*ship the archive or agent state into itself/],
      ['same-receiver', { replicas: [remote('a', 'standby:7654'), remote('b', 'standby:7654')] }, /^replicas\[1\]\.address: standby:7654 is also replica "a"'s receiver/],
      ['same-dump-id', { replicas: [file('a', '/mnt/a'), { ...file('b', '/mnt/b'), serverId: 4242 }] }, /^replicas\[1\]\.serverId: dump id 4242 is also replica "a"'s/],
      ['heartbeat', { binlog: { heartbeatPeriodMs: 10_000, idleTimeoutMs: 5_000 } }, /^binlog\.heartbeatPeriodMs: must be below binlog\.idleTimeoutMs/],
      ['retry', { binlog: { retryDelayMsMin: 5_000, retryDelayMsMax: 1_000 } }, /^binlog\.retryDelayMsMin: must not be above/],
      ['spool-nested', { spool: [{ name: 'inner', path: join(folder, 'real', 'spool') }, { name: 'outer', path: join(folder, 'real') }] }, /^spool\[1\]\.path: .* lies inside spool source "inner" .* archived and restored twice/],
      ['spool-same', { spool: [{ name: 'a', path: join(folder, 'real') }, { name: 'b', path: join(folder, 'link') }] }, /^spool\[1\]\.path: /],
      ['spool-nested-other-excluded', { spool: [{ name: 'outer', path: join(folder, 'real'), exclude: ['log/**'] }, { name: 'inner', path: join(folder, 'real', 'spool') }] }, /^spool\[1\]\.path: /],
    ];
    for (const [name, change, message] of cases) {
      expect(() => loadAgentConfig(write(`overlap-${name}.json`, { ...base, ...change })), name).toThrowError(message);
    }
    // An archive inside a spool source that the source's exclude leaves out is fine.
    const excluded = loadAgentConfig(write('overlap-excluded.json', { ...base, replicas: [file('a', join(folder, 'real', 'archive'))], spool: [{ name: 's', path: join(folder, 'real'), exclude: ['archive'] }] }));
    expect(excluded.spool).toHaveLength(1);
    // Nested spool sources are fine when the outer one leaves the inner out (the contract's example, either order).
    for (const order of [0, 1]) {
      const pair = [{ name: 'spool', path: join(folder, 'real', 'spool') }, { name: 'config', path: join(folder, 'real'), exclude: ['log/**', 'spool/**'] }];
      expect(loadAgentConfig(write(`overlap-spool-excluded-${order}.json`, { ...base, spool: order === 0 ? pair : pair.reverse() })).spool).toHaveLength(2);
    }
  });
});
