import { describe, expect, it } from 'vitest';
import { ReadHashes } from '../../../src/spool/read-hashes.js';

/** A first read of `first`, then a second of `again`: whether the second is taken as the same bytes. */
function agree(first: string[], again: string[], keptMax?: number): boolean {
  const a = new ReadHashes(keptMax);
  for (const h of first) a.add(h);
  const b = new ReadHashes(keptMax);
  for (const h of again) if (!b.addMatching(h, a)) return false;
  return b.sameAs(a);
}

describe('ReadHashes', () => {
  const blocks = ['h0', 'h1', 'h2', 'h3', 'h4'];

  it('two reads of the same blocks agree, kept or folded into the digest', () => {
    expect(agree(blocks, blocks)).toBe(true);
    expect(agree(blocks, blocks, 2)).toBe(true);
    expect(agree([], [])).toBe(true);
  });

  it('a block that differs, among the kept ones or the folded ones, is found', () => {
    expect(agree(blocks, ['h0', 'hX', 'h2', 'h3', 'h4'])).toBe(false);
    expect(agree(blocks, ['h0', 'h1', 'h2', 'h3', 'hX'], 2)).toBe(false);
    // The same hashes in another order are other bytes.
    expect(agree(blocks, ['h0', 'h1', 'h2', 'h4', 'h3'], 2)).toBe(false);
  });

  it('a second read with fewer or more blocks does not agree', () => {
    expect(agree(blocks, blocks.slice(0, 4))).toBe(false);
    expect(agree(blocks, [...blocks, 'h5'])).toBe(false);
    expect(agree(blocks, blocks.slice(0, 4), 2)).toBe(false);
    expect(agree(blocks.slice(0, 2), blocks.slice(0, 3), 2)).toBe(false);
  });
});
