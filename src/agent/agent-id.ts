import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HotspareError, errorMessage } from '../core/errors.js';
import { writeFileDurable } from '../platform/durable-file.js';

/** The file in the agent's stateDir that holds its id. */
export const AGENT_ID_FILE = 'agent-id';

/**
 * The agent's id, the same across its restarts: kept in its stateDir, made on first use. A
 * receiver takes a connection from the same agent id as a reconnect and ends the old one, so an
 * agent restarted after a crash (its old connection not yet timed out on the standby, as after
 * a power cut) resumes at once instead of being refused as another agent.
 */
export async function loadAgentId(stateDir: string): Promise<string> {
  const path = join(stateDir, AGENT_ID_FILE);
  try {
    const text = (await readFile(path, 'utf8')).trim();
    if (/^[A-Za-z0-9-]{1,128}$/.test(text)) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new HotspareError('STATE_UNREADABLE', `cannot read ${path}: ${errorMessage(err)}`, { hint: `make ${stateDir} readable and writable by the agent`, cause: err });
    }
  }
  // Missing or not an id (a torn first write cannot happen: the write is atomic): a new one.
  const id = randomUUID();
  await writeFileDurable(path, `${id}\n`);
  return id;
}
