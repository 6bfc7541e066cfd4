/**
 * The memory and cost line shown above a recipe and in the hover on `training`.
 */
import type { Analysis } from './analysis';

/** "1,234.5" style grouping, independent of the host locale. */
export function grouped(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "≈ 9.8 GiB peak · 16,384 tokens/step", or why there is no figure. */
export function estimateLine(a: Analysis): string {
  if (!a.recipe) {
    const errors = a.diagnostics.filter((d) => d.severity === 1).length; // DiagnosticSeverity.Error
    return `memory estimate after ${errors === 1 ? 'the problem is' : `${errors} problems are`} fixed`;
  }
  const e = a.estimate;
  const tokens = `${grouped(e?.tokens_per_step ?? 0)} tokens/step`;
  if (!e || e.total_gib === null) return `memory: unknown (${e?.notes[0] ?? 'no model config'}) · ${tokens}`;
  const gib = e.total_gib < 0.1 ? `${(e.total_gib * 1024).toFixed(0)} MiB` : `${e.total_gib.toFixed(1)} GiB`;
  return `≈ ${gib} peak · ${tokens}`;
}

/** Markdown table of the estimate's parts, for the hover on `training`. */
export function estimateMarkdown(a: Analysis): string {
  const e = a.estimate;
  const head = `**${estimateLine(a)}**`;
  if (!e || e.total_gib === null) return head;
  const rows: Array<[string, number | null]> = [
    ['4-bit weights, embeddings, norms', e.weights_gib],
    ['LoRA weights + grads', e.lora_gib],
    ['optimizer state', e.optimizer_gib],
    ['activations', e.activations_gib],
    ['loss (chunked head)', e.logits_gib],
    ['CUDA context, workspace', e.overhead_gib],
  ];
  const table = rows.map(([k, v]) => `| ${k} | ${v === null ? '?' : `${v.toFixed(2)} GiB`} |`).join('\n');
  const params = e.lora_params !== null ? `\n\n${grouped(e.lora_params)} trainable LoRA parameters.` : '';
  const notes = e.notes.length ? `\n\n${e.notes.map((n) => `- ${n}`).join('\n')}` : '';
  return `${head}\n\n| part | GiB |\n| --- | --- |\n${table}${params}${notes}`;
}
