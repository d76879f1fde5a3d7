import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { HotspareError } from '../core/errors.js';

/**
 * How a spool block's bytes are named. The spool archive refers to a block by its hash: an
 * unchanged block of a changed file is found by comparing hashes, and restore, verify and
 * compaction check every block they read against its hash.
 *
 * - `sha256`: SHA-256 cut to 128 bits, 22 base64url characters. Archives from before BLAKE3
 *   hold only these.
 * - `blake3`: BLAKE3 cut to 128 bits, `b3:` and 22 base64url characters, through
 *   @napi-rs/blake-hash (a prebuilt native module): about 5 GB/s on one core of this project's
 *   machines against SHA-256's 1.2-1.7 GB/s with SHA-NI. Every byte of a changed file is hashed
 *   on the agent (an append to a 1 GiB file re-reads the file to prove the old part unchanged),
 *   so this was most of the reader thread's CPU.
 *
 * An id says which function made it, so any reader checks any block without knowing which the
 * source used, and ids of both kinds may stand side by side in one source's history.
 */
export type BlockHashName = 'sha256' | 'blake3';

export type BlockHasher = (data: Uint8Array) => string;

const BLAKE3_PREFIX = 'b3:';
/** Both cut the digest to 16 bytes: 128 bits is ample against chance collisions of 64 KiB blocks. */
const DIGEST_BYTES = 16;

interface Blake3Module {
  blake3(data: Uint8Array): Buffer;
}

/** The native module, or why it could not be loaded (a platform without a prebuilt binary). */
let blake3Native: Blake3Module | { failed: unknown } | undefined;

const PACKAGE = '@napi-rs/blake-hash';

/**
 * On Linux the package's own loader asks process.report.getReport() whether the C library is
 * musl: 4-10 ms at every start of a spool reader thread (each spool source of each replica has
 * its own). /usr/bin/ldd tells the same in a read of a few kilobytes (musl's names musl; with
 * gcompat a glibc binary might even load on musl, so loading one is no test), and the platform
 * package is then required from where the package itself would find it. When ldd cannot be
 * read, or that fails, the package's loader decides.
 */
function requireBlake3(): Blake3Module {
  const require = createRequire(import.meta.url);
  if (process.platform === 'linux') {
    let libc: 'gnu' | 'musl' | undefined;
    try {
      libc = readFileSync('/usr/bin/ldd', 'latin1').includes('musl') ? 'musl' : 'gnu';
    } catch {
      libc = undefined;
    }
    if (libc !== undefined) {
      try {
        return createRequire(require.resolve(PACKAGE))(`${PACKAGE}-linux-${process.arch}-${libc}`) as Blake3Module;
      } catch {
        // Not installed for this machine: the package's loader says why.
      }
    }
  }
  return require(PACKAGE) as Blake3Module;
}

/**
 * HOTSPARE_BLAKE3=off makes hotspare behave as where the module does not load: an agent names
 * new sources' blocks by SHA-256 (for standbys still running a hotspare from before BLAKE3,
 * during an upgrade), and a standby shows what it does without the module. For good: a source
 * keeps the function it was given, and one already on BLAKE3 goes over to SHA-256 (its changed
 * files shipped whole once).
 */
export const BLAKE3_SWITCH = 'HOTSPARE_BLAKE3';

function loadBlake3(): Blake3Module | undefined {
  if (blake3Native === undefined && process.env[BLAKE3_SWITCH] === 'off') blake3Native = { failed: new Error(`${BLAKE3_SWITCH}=off`) };
  if (blake3Native === undefined) {
    try {
      blake3Native = requireBlake3();
    } catch (err) {
      blake3Native = { failed: err };
    }
  }
  return 'blake3' in blake3Native ? blake3Native : undefined;
}

const sha256Hasher: BlockHasher = (data) => hash('sha256', data, 'buffer').toString('base64url', 0, DIGEST_BYTES);

/**
 * Why this host does not compute BLAKE3, and what to do, for messages: the switch when it is
 * set (a shared environment file could hand the agent's switch to promote), else the module.
 */
export function blake3Unavailable(): { why: string; fix: string } {
  return process.env[BLAKE3_SWITCH] === 'off'
    ? { why: `${BLAKE3_SWITCH}=off is set`, fix: `unset ${BLAKE3_SWITCH} for this command` }
    : { why: "BLAKE3's native module (@napi-rs/blake-hash) does not load on this host", fix: 'install hotspare with npm on a platform @napi-rs/blake-hash has a binary for (Linux, macOS or Windows on x64 or arm64)' };
}

/** Why BLAKE3's module does not load here; undefined when it does. */
export function blake3LoadFailure(): unknown {
  loadBlake3();
  return blake3Native !== undefined && 'failed' in blake3Native ? blake3Native.failed : undefined;
}

/** The hash a new source uses: BLAKE3 where its native module loads, else SHA-256. */
export function defaultBlockHash(): BlockHashName {
  return loadBlake3() === undefined ? 'sha256' : 'blake3';
}

/** The function that names blocks for `name`. BLOCK_HASH_UNAVAILABLE when it is BLAKE3 and its module does not load. */
export function blockHasher(name: BlockHashName): BlockHasher {
  if (name === 'sha256') return sha256Hasher;
  const native = loadBlake3();
  if (native === undefined) {
    const { why, fix } = blake3Unavailable();
    throw new HotspareError('BLOCK_HASH_UNAVAILABLE', `the spool blocks are named by BLAKE3, and ${why}`, { cause: blake3LoadFailure(), hint: fix });
  }
  return (data) => BLAKE3_PREFIX + native.blake3(data).toString('base64url', 0, DIGEST_BYTES);
}

/** Which function made `id`; undefined when it is no block id at all. */
export function blockHashOf(id: string): BlockHashName | undefined {
  if (id.length === 22) return 'sha256';
  if (id.length === BLAKE3_PREFIX.length + 22 && id.startsWith(BLAKE3_PREFIX)) return 'blake3';
  return undefined;
}

/** Whether this host can check the block `id` names (false for an id of no known form). */
export function canCheckBlock(id: string): boolean {
  const name = blockHashOf(id);
  return name === 'sha256' || (name === 'blake3' && loadBlake3() !== undefined);
}

/**
 * Test seam: makes this thread behave as on a platform where BLAKE3's module does not load,
 * until the returned function is called. (A reader thread is told its function by name.)
 */
export function simulateBlake3Missing(): () => void {
  const before = blake3Native;
  blake3Native = { failed: new Error('simulated: no BLAKE3 module') };
  return () => {
    blake3Native = before;
  };
}

/** Whether `data` is the block `id` names (with the function the id says; BLOCK_HASH_UNAVAILABLE as blockHasher). */
export function blockMatches(data: Uint8Array, id: string): boolean {
  const name = blockHashOf(id);
  return name !== undefined && blockHasher(name)(data) === id;
}
