import { silentLogger } from '../../src/platform/logger.js';
import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';
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
