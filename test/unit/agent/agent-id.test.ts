import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_ID_FILE, loadAgentId } from '../../../src/agent/agent-id.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotspare-agent-id-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('loadAgentId', () => {
  it('makes an id on first use, in a stateDir that does not exist yet, and returns the same one after', async () => {
    const stateDir = join(dir, 'state');
    const id = await loadAgentId(stateDir);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(readFileSync(join(stateDir, AGENT_ID_FILE), 'utf8')).toBe(`${id}\n`);
    expect(await loadAgentId(stateDir)).toBe(id);
  });

  it('replaces a file that holds no id with a new one', async () => {
    writeFileSync(join(dir, AGENT_ID_FILE), '../../not an id\n');
    const id = await loadAgentId(dir);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await loadAgentId(dir)).toBe(id);
  });
});
