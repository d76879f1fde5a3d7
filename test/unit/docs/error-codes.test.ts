import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../..', import.meta.url).pathname;

/** A code as the sources spell it: upper case, digits and inner underscores (DISK_FULL, VERSION). */
const CODE = String.raw`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)`;

/**
 * The forms in which src/ gives an operator a code (each may span lines):
 * - `new HotspareError('X', ...)`: `error X: ...` on stderr, or a replica's failure in the log and /lag;
 * - `code: 'X'`: a log line's field, a /lag or /healthz problem, a wire problem, an errno mapping;
 * - `refuse('X', ...)` (physical-restore.ts) and `new Refusal('X', ...)` (the receiver's REFUSE);
 * - `#warnOnce(path, 'X', ...)` (spool-syncer.ts: a log line's code);
 * - REFUSAL_CODES (wire-messages.ts: the codes a receiver refuses an agent with).
 */
const WHOLE_FILE_FORMS: readonly RegExp[] = [
  new RegExp(String.raw`HotspareError\(\s*'${CODE}'`, 'g'),
  new RegExp(String.raw`\bcode\??:\s*'${CODE}'`, 'g'),
  new RegExp(String.raw`\brefuse\(\s*'${CODE}'`, 'g'),
  new RegExp(String.raw`\bnew Refusal\(\s*'${CODE}'`, 'g'),
  new RegExp(String.raw`#warnOnce\([^,()]+,\s*'${CODE}'`, 'g'),
];

/**
 * A code chosen by a conditional on a line that builds a code or an error, such as
 * `err instanceof HotspareError ? err.code : 'INTERNAL'` or
 * `new HotspareError(handshaking ? 'RECEIVER_UNREACHABLE' : 'RECEIVER_LOST', ...)`.
 */
const CODE_LINE = /\bcode\b|HotspareError\(/;
const CONDITIONAL_CODE = new RegExp(String.raw`(?:\?\?|\?|:)\s*'${CODE}'`, 'g');
/** System error codes (ENOENT, EIO) pass through such conditionals too; they are not hotspare's. */
const ERRNO = /^E[A-Z0-9]+$/;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(dir, name))
    .sort();
}

/** Every operator-visible code in src/, with one place that emits it. */
function codesInSources(): Map<string, string> {
  const found = new Map<string, string>();
  const add = (code: string, file: string): void => {
    if (!found.has(code)) found.set(code, file.slice(root.length));
  };
  for (const file of tsFiles(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const form of WHOLE_FILE_FORMS) for (const m of text.matchAll(form)) add(m[1] as string, file);
    for (const line of text.split('\n')) {
      if (!CODE_LINE.test(line)) continue;
      for (const m of line.matchAll(CONDITIONAL_CODE)) if (!ERRNO.test(m[1] as string)) add(m[1] as string, file);
    }
    const refusals = /REFUSAL_CODES\s*=\s*\[([^\]]*)\]/.exec(text);
    if (refusals !== null) for (const m of (refusals[1] as string).matchAll(new RegExp(`'${CODE}'`, 'g'))) add(m[1] as string, file);
  }
  return found;
}

/** README's `## Error codes` section, up to the next `## ` heading. */
function errorCodesSection(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Error codes\n');
  if (start < 0) return '';
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The section's tables: each `### ` heading with the codes of its rows (`` | `X` | ``), in order. */
function documentedTables(section: string): Array<{ title: string; codes: string[] }> {
  const tables: Array<{ title: string; codes: string[] }> = [];
  for (const line of section.split('\n')) {
    const heading = /^### (.+)$/.exec(line);
    if (heading !== null) tables.push({ title: heading[1] as string, codes: [] });
    const row = new RegExp(String.raw`^\| \`${CODE}\` \|`).exec(line);
    if (row !== null) tables.at(-1)?.codes.push(row[1] as string);
  }
  return tables;
}

// Goal: every code an operator can meet in hotspare's output or logs is explained in README's
// `## Error codes`, and that section names no code the sources no longer emit.
describe("README's error codes", () => {
  const inSources = codesInSources();
  const section = errorCodesSection();
  const tables = documentedTables(section);
  const documented = tables.flatMap((t) => t.codes);

  it('has the section, with tables', () => {
    expect(section, 'README.md has no `## Error codes` section').not.toBe('');
    expect(documented.length).toBeGreaterThan(0);
    // The scan itself still finds codes (a refactor of the forms above would otherwise pass silently).
    expect(inSources.size).toBeGreaterThan(50);
  });

  it('documents every code the sources emit', () => {
    const missing = [...inSources.keys()].filter((code) => !documented.includes(code)).sort();
    expect(missing, `codes emitted in src/ but without a row in README's ## Error codes: ${missing.map((c) => `${c} (${inSources.get(c)})`).join(', ')}`).toEqual([]);
  });

  it('documents no code the sources no longer emit', () => {
    const stale = documented.filter((code) => !inSources.has(code)).sort();
    expect(stale, `codes in README's ## Error codes that src/ no longer emits: ${stale.join(', ')}`).toEqual([]);
  });

  it('lists each code once, alphabetically within its table', () => {
    const twice = documented.filter((code, i) => documented.indexOf(code) !== i);
    expect(twice, `codes with more than one row: ${twice.join(', ')}`).toEqual([]);
    for (const { title, codes } of tables) {
      // By code units, as Array.prototype.sort orders them (`_` after the letters).
      expect(codes, `the rows of "${title}" are not in alphabetical order`).toEqual([...codes].sort());
    }
  });
});
