import { describe, expect, it } from 'vitest';
import { isUnder, SpoolTree } from '../../../src/spool/spool-tree.js';

const dir = (ino: number) => ({ kind: 'dir' as const, mode: 0o755, mtimeNs: '1', ino });
const link = (ino: number) => ({ kind: 'link' as const, target: 'x', mtimeNs: '1', ino });

function tree(paths: string[]): SpoolTree {
  const t = new SpoolTree(65536);
  paths.forEach((p, i) => t.apply(p.endsWith('/') ? { op: 'dir', t: 1, path: p.slice(0, -1), e: dir(i + 1) } : { op: 'link', t: 1, path: p, e: link(i + 1) }));
  return t;
}

describe('spool tree', () => {
  it('isUnder: the path itself and what lies under it, not a sibling whose name merely starts the same', () => {
    expect(isUnder('a', '')).toBe(true);
    expect(isUnder('', '')).toBe(true);
    expect(isUnder('q/b1', 'q/b1')).toBe(true);
    expect(isUnder('q/b1/7.msg', 'q/b1')).toBe(true);
    expect(isUnder('q/b10/7.msg', 'q/b1')).toBe(false);
    expect(isUnder('q/b1x', 'q/b1')).toBe(false);
    expect(isUnder('q', 'q/b1')).toBe(false);
    expect(isUnder('', 'q')).toBe(false);
  });

  it('removing a folder removes what lies under it and nothing else; the root alone is removed alone', () => {
    const t = tree(['q/', 'q/b1/', 'q/b1/1.msg', 'q/b1/2.msg', 'q/b10/', 'q/b10/3.msg', 'q/b1x', 'seqno']);
    t.apply({ op: 'rm', t: 2, path: 'q/b1' });
    expect([...t.entries.keys()].sort()).toEqual(['q', 'q/b10', 'q/b10/3.msg', 'q/b1x', 'seqno']);
    expect(t.pathsUnder('q').sort()).toEqual(['q', 'q/b10', 'q/b10/3.msg', 'q/b1x']);
    t.apply({ op: 'dir', t: 3, path: '', e: dir(99) });
    t.apply({ op: 'rm', t: 4, path: '' });
    expect([...t.entries.keys()].sort()).toEqual(['q', 'q/b10', 'q/b10/3.msg', 'q/b1x', 'seqno']);
  });

  it('a moved folder takes what lies under it, and replaces what was at its new path', () => {
    const t = tree(['queue/', 'queue/b1/', 'queue/b1/1.msg', 'queue/b12/', 'queue/b12/5.msg', 'sent/', 'sent/b1/', 'sent/b1/old.msg']);
    t.apply({ op: 'mv', t: 2, from: 'queue/b1', to: 'sent/b1' });
    expect([...t.entries.keys()].sort()).toEqual(['queue', 'queue/b12', 'queue/b12/5.msg', 'sent', 'sent/b1', 'sent/b1/1.msg']);
  });
});
