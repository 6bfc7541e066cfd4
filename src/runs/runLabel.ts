/**
 * Short, readable names for runs. The backend names a run folder `<name>-YYYYmmdd-HHMMSS-xxxx`
 * (the recipe's `output.run_name` or file stem, the start time, a random tag); lists show the name
 * and the start time instead, and keep the whole id for tooltips and commands. Free of `vscode`, so
 * the tree, the quick picks and the loss webview share this one rule.
 */

const RUN_ID = /^(.+)-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-([0-9a-f]{4})$/;

/**
 * The short label of a run id: "name 20:04:46" for a run started on the day of `now`, else
 * "name 2026-11-28 20:04". An id of another shape is returned whole.
 */
export function shortRunLabel(runId: string, now: Date = new Date()): string {
  const m = RUN_ID.exec(runId);
  if (!m) return runId;
  const [, name, y, mo, d, h, mi, s] = m;
  const sameDay = Number(y) === now.getFullYear() && Number(mo) === now.getMonth() + 1 && Number(d) === now.getDate();
  return sameDay ? `${name} ${h}:${mi}:${s}` : `${name} ${y}-${mo}-${d} ${h}:${mi}`;
}

/**
 * Short labels for a list of runs, each distinct: runs whose short labels collide (same name,
 * started in the same second today or the same minute another day) get their random tag appended,
 * "tiny 20:04:46 · a1b2". Returns run id -> label.
 */
export function distinctRunLabels(runIds: readonly string[], now: Date = new Date()): Map<string, string> {
  const labels = new Map(runIds.map((id) => [id, shortRunLabel(id, now)] as const));
  const count = new Map<string, number>();
  for (const label of labels.values()) count.set(label, (count.get(label) ?? 0) + 1);
  for (const [id, label] of labels) {
    const tag = RUN_ID.exec(id)?.[8];
    if ((count.get(label) ?? 0) > 1 && tag) labels.set(id, `${label} · ${tag}`);
  }
  return labels;
}

