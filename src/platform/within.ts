/**
 * `promise`'s value as `{ value }` if it resolves within `ms`, undefined if it has not by then
 * (it is left running); a rejection within `ms` rejects. For the waits that must end, whatever
 * the other side does: a goodbye a vanished peer never answers, a process that never exits.
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<{ value: T } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise.then((value) => ({ value })), new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
