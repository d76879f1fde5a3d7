import type { Connection } from 'mysql2/promise';
import { silentLogger } from '../../src/platform/logger.js';
import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { promote, type PromoteOptions, type PromotionReport } from '../../src/standby/promote.js';
import type { TargetSpec } from '../../src/standby/stop-point.js';

/** Promotes `archiveRoot` into a sandbox standby (root over its socket), replacing what it holds. */
export function promoteInto(standby: MariadbServer, archiveRoot: string, target: TargetSpec, extra: Partial<PromoteOptions> = {}): Promise<PromotionReport> {
  return promote({
    archiveRoot,
    target,
    credentials: { user: 'root', password: '', socketPath: standby.socketPath },
    targetDescription: 'standby',
    replace: true,
    dryRun: false,
    filesRoot: undefined,
    logger: silentLogger(),
    ...extra,
  });
}

/**
 * Makes the standby differ from `expected` (the tables a promotion should leave) by a table
 * beside them in their first database, so that a promotion that changes nothing cannot pass
 * for one that restored them: a promotion with --replace drops that database and restores it.
 */
export async function divergeStandby(conn: Connection, expected: Record<string, string>): Promise<void> {
  const [first] = Object.keys(expected).sort();
  if (first === undefined) throw new Error('nothing expected: the promotion would have nothing to restore');
  const db = first.slice(0, first.indexOf('.'));
  await conn.query(`CREATE TABLE IF NOT EXISTS \`${db}\`.\`not_from_the_primary\` (id INT PRIMARY KEY)`);
  await conn.query(`INSERT IGNORE INTO \`${db}\`.\`not_from_the_primary\` VALUES (1)`);
  if (JSON.stringify(await tableChecksums(conn)) === JSON.stringify(expected)) throw new Error('the standby still equals what the promotion should restore');
}
