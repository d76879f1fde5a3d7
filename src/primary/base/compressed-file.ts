import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import type { ArchiveFiles } from '../../archive/archive-files.js';
import { DEFAULT_BASE_GZIP_LEVEL } from '../../config/defaults.js';

/**
 * Writes `source` gzip-compressed into the archive through ArchiveFiles.putFile (atomic and
 * durable there), streaming with backpressure, and returns the stored size and sha256.
 */
export async function putCompressed(
  files: ArchiveFiles,
  path: string,
  source: AsyncIterable<string | Buffer>,
): Promise<{ bytes: number; sha256: string }> {
  // Large output chunks: fewer writes (and, to a remote archive, fewer requests) per megabyte.
  const gzip = createGzip({ level: DEFAULT_BASE_GZIP_LEVEL, chunkSize: 256 * 1024 });
  const hash = createHash('sha256');
  let bytes = 0;
  const pump = (async () => {
    for await (const chunk of source) {
      if (!gzip.write(chunk)) await once(gzip, 'drain');
    }
    gzip.end();
  })();
  pump.catch((err: unknown) => gzip.destroy(err instanceof Error ? err : new Error(String(err))));
  async function* compressed(): AsyncGenerator<Buffer> {
    for await (const chunk of gzip as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      yield chunk;
    }
  }
  await files.putFile(path, compressed());
  await pump;
  return { bytes, sha256: hash.digest('hex') };
}
