/**
 * A short-lived memo for file-system scans that completion repeats on every keystroke.
 */

const entries = new Map<string, { at: number; value: unknown }>();

/** `fn()`, reused for `ttlMs` per key (a scan of folders is seconds-fresh, never stale for long). */
export function memo<T>(key: string, ttlMs: number, fn: () => T): T {
  const now = Date.now();
  const hit = entries.get(key);
  if (hit && now - hit.at < ttlMs) return hit.value as T;
  const value = fn();
  entries.set(key, { at: now, value });
  if (entries.size > 256) entries.delete(entries.keys().next().value as string);
  return value;
}
