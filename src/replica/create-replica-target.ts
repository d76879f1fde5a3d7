import { join } from 'node:path';
import type { ReplicaDefinition } from '../config/schema.js';
import type { HotspareError } from '../core/errors.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { VolumeReading } from '../platform/volume-poller.js';
import type { ReplicaTarget } from './replica-target.js';
import { FileTarget } from './targets/file-target.js';
import { RemoteTarget } from './targets/remote-target.js';
import { childLogger } from '../platform/logger.js';

export interface TargetDependencies {
  logger: Logger;
  clock: Clock;
  syncBatchBytesMax: number;
  /** The agent's stateDir: a remote replica stages its base backups under `base-upload/<name>/` there. */
  stateDir?: string | undefined;
  /** At most this many bytes of one staged base (`base.stagingBytesMax`). */
  baseStagingBytesMax?: number | undefined;
  /** The agent's id (loadAgentId), presented to receivers. */
  agentId?: string | undefined;
  /** A remote replica's archive volume, as its receiver reports it. */
  onVolume?: ((reading: VolumeReading | undefined) => void) | undefined;
  /** Aborted when the agent stops (a remote replica's base upload ends between pieces). */
  stopSignal?: AbortSignal | undefined;
  /**
   * For a folder that holds no archive: the error to refuse it with when this replica's archive
   * was known to hold binlog there (a file replica creates nothing in it then).
   */
  missingArchive?: (() => HotspareError | undefined) | undefined;
}

/** The one place that maps a replica definition's `type` to its backend. */
export function createReplicaTarget(definition: ReplicaDefinition, deps: TargetDependencies): ReplicaTarget {
  const logger = childLogger(deps.logger, { replica: definition.name });
  switch (definition.type) {
    case 'file':
      return new FileTarget({ name: definition.name, path: definition.path, logger, clock: deps.clock, syncBatchBytesMax: deps.syncBatchBytesMax, missingArchive: deps.missingArchive });
    case 'remote':
      return new RemoteTarget({
        name: definition.name,
        address: definition.address,
        tokenFile: definition.tokenFile,
        tls: definition.tls,
        logger,
        clock: deps.clock,
        baseStagingDir: deps.stateDir === undefined ? undefined : join(deps.stateDir, 'base-upload', definition.name),
        baseStagingBytesMax: deps.baseStagingBytesMax,
        agentId: deps.agentId,
        onVolume: deps.onVolume,
        stopSignal: deps.stopSignal,
      });
  }
}
