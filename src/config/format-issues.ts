import type { z } from 'zod';

/**
 * Turns zod issues into one line each that names the field, the way operators read them:
 * `primary.port: expected a number, received "x"`.
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix = ''): string[] {
  return flatten(issues, []).map((issue) => `${fieldPath(prefix, issue.path)}: ${issueMessage(issue)}`);
}

/**
 * A union (a replica given as a file name or inline) reports "invalid input" for the whole
 * value. When only one alternative was plausible (the value was an object, not a string),
 * its own issues say far more, so they replace the union's.
 */
function flatten(issues: readonly z.core.$ZodIssue[], base: readonly PropertyKey[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    const path = [...base, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const plausible = issue.errors.filter((branch) => !(branch.length === 1 && branch[0]?.code === 'invalid_type' && branch[0].path.length === 0));
      if (plausible.length === 1 && plausible[0] !== undefined) return flatten(plausible[0], path);
    }
    return [{ ...issue, path } as z.core.$ZodIssue];
  });
}

function fieldPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const input = (issue as { input?: unknown }).input;
      if (input === undefined) return 'required';
      const article = /^[aeiou]/.test(issue.expected) ? 'an' : 'a';
      return `expected ${article} ${issue.expected}, received ${JSON.stringify(input)}`;
    }
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_union': {
      const input = (issue as { input?: unknown }).input;
      if ((issue as { note?: string }).note === 'No matching discriminator') {
        const received = typeof input === 'object' && input !== null ? (input as Record<string, unknown>)['type'] : input;
        return `expected one of "file", "remote", received ${JSON.stringify(received)}`;
      }
      return issue.message;
    }
    default:
      return issue.message;
  }
}
