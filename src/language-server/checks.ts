/**
 * Checks that need more than the schema: fields that contradict each other, the base model's
 * config, files on disk, and the selected backend's GPU. They run on a schema-valid recipe.
 */
import type { MemoryEstimate } from '../recipe/estimate';
import type { Recipe } from '../recipe/schema';
import type { PathKey } from '../recipe/yamlSource';
import { dataFileProblem, looksLikeFile } from './datasets';
import type { SetValue } from './edits';

/** How strongly a finding is shown: hints are advice, never problems. */
export type CheckLevel = 'error' | 'warning' | 'hint';

/** One finding, pointing at the value (or key) at `path`, with optional quick fixes. */
export interface Finding {
  path: PathKey[];
  level: CheckLevel;
  code: 'cross-field' | 'dataset' | 'memory' | 'hint';
  message: string;
  fixes: SetValue[];
}

/** What the checks know besides the recipe. */
export interface CheckEnv {
  recipeDir: string;
  /** The written (not default-filled) recipe, to tell what the user set. */
  written: Record<string, unknown>;
  modelConfig?: Record<string, unknown>;
  estimate?: MemoryEstimate;
  /** Largest CUDA device memory of the selected backend, MiB; undefined when unknown. */
  gpuMemoryMb?: number;
  /** Whether the selected backend has a CUDA device; undefined when unknown. */
  hasCuda?: boolean;
}

function has(section: unknown, key: string): boolean {
  return !!section && typeof section === 'object' && key in section;
}

/** Every cross-field, disk and memory finding for a valid recipe. */
export function crossChecks(r: Recipe, env: CheckEnv): Finding[] {
  const out: Finding[] = [];
  const add = (p: PathKey[], level: CheckLevel, code: Finding['code'], message: string, ...fixes: SetValue[]): void => {
    out.push({ path: p, level, code, message, fixes });
  };
  const set = (title: string, p: string[], yaml: string): SetValue => ({ title, path: p, yaml });
  const q = r.quantization;
  const w = env.written;
  if (q.bits === 8) {
    for (const k of ['quant_type', 'double_quant'] as const) {
      if (has(w['quantization'], k)) add(['quantization', k], 'warning', 'cross-field', `ignored with bits: 8 (it applies to 4-bit quantization only)`);
    }
  }
  if (q.quant_storage_dtype !== 'uint8' && q.compute_dtype !== 'auto' && q.quant_storage_dtype !== q.compute_dtype) {
    add(['quantization', 'quant_storage_dtype'], 'error', 'cross-field', `must be uint8 or equal compute_dtype (${q.compute_dtype}); 4-bit weights stored as ${q.quant_storage_dtype} cannot be computed in ${q.compute_dtype}`,
      set('Set quant_storage_dtype: uint8', ['quantization', 'quant_storage_dtype'], 'uint8'));
  }
  if (env.hasCuda === false && r.training.optimizer !== 'adamw') {
    add(['training', 'optimizer'], 'warning', 'cross-field', `${r.training.optimizer} needs a CUDA GPU and the selected backend has none; it will use adamw`,
      set('Set optimizer: adamw', ['training', 'optimizer'], 'adamw'));
  }
  const positions = env.modelConfig?.['max_position_embeddings'];
  if (typeof positions === 'number' && r.data.max_seq_len > positions) {
    add(['data', 'max_seq_len'], 'warning', 'cross-field', `above the model's max_position_embeddings (${positions}); positions past it were never trained`,
      set(`Set max_seq_len: ${positions}`, ['data', 'max_seq_len'], String(positions)));
  }
  if (r.data.format === 'text' && r.data.train_on !== 'all') {
    add(has(w['data'], 'train_on') ? ['data', 'train_on'] : ['data', 'format'], 'error', 'cross-field',
      `train_on: ${r.data.train_on} needs assistant turns, and format: text has none; use train_on: all`, set('Set train_on: all', ['data', 'train_on'], 'all'));
  }
  const evalData = r.data.eval !== undefined || r.data.eval_split > 0;
  if (!evalData && r.training.eval_every > 0) {
    add(['training', 'eval_every'], 'warning', 'cross-field', 'no eval data (data.eval or data.eval_split), so nothing is evaluated',
      set('Set data.eval_split: 0.05', ['data', 'eval_split'], '0.05'));
  }
  if (!evalData && r.training.early_stopping.patience > 0) {
    add(['training', 'early_stopping', 'patience'], 'warning', 'cross-field', 'early stopping needs eval data (data.eval or data.eval_split)',
      set('Set data.eval_split: 0.05', ['data', 'eval_split'], '0.05'));
  }
  const ratio = r.lora.alpha / r.lora.r;
  if (ratio < 0.25 || ratio > 4) {
    add(['lora', 'alpha'], 'hint', 'hint', `alpha / r = ${ratio.toPrecision(3)} is unusual (most runs use 0.25–4, often alpha = 2 × r)`,
      set(`Set alpha: ${2 * r.lora.r}`, ['lora', 'alpha'], String(2 * r.lora.r)));
  }
  if (r.training.lr > 1e-3 || r.training.lr < 1e-5) {
    add(['training', 'lr'], 'hint', 'hint', `lr ${r.training.lr} is outside the usual 1e-4 to 3e-4 for adapters`, set('Set lr: 2.0e-4', ['training', 'lr'], '2.0e-4'));
  }
  if (r.lora.dropout > 0.3) {
    add(['lora', 'dropout'], 'hint', 'hint', `dropout ${r.lora.dropout} is high; 0.05–0.1 is typical`, set('Set dropout: 0.05', ['lora', 'dropout'], '0.05'));
  }
  for (const key of ['train', 'eval'] as const) {
    const value = r.data[key];
    if (value === undefined || !looksLikeFile(value)) continue;
    const problem = dataFileProblem(value, env.recipeDir);
    if (problem) add(['data', key], 'error', 'dataset', problem);
  }
  const tpl = r.data.chat_template;
  if (tpl.endsWith('.jinja') && !tpl.includes('\n')) {
    const problem = dataFileProblem(tpl, env.recipeDir);
    if (problem) add(['data', 'chat_template'], 'error', 'dataset', problem.replace('.jsonl, .json, .csv or .parquet', '.jinja'));
  }
  memoryCheck(r, env, add, set);
  return out;
}

function memoryCheck(r: Recipe, env: CheckEnv, add: (p: PathKey[], l: CheckLevel, c: Finding['code'], m: string, ...f: SetValue[]) => void, set: (t: string, p: string[], y: string) => SetValue): void {
  const total = env.estimate?.total_gib;
  if (total === null || total === undefined || env.gpuMemoryMb === undefined) return;
  const gpuGib = env.gpuMemoryMb / 1024;
  if (total <= gpuGib) return;
  const t = r.training;
  const fixes: SetValue[] = [];
  if (t.micro_batch_size > 1) {
    const mb = Math.max(1, Math.floor(t.micro_batch_size / 2));
    fixes.push(set(`Lower micro_batch_size to ${mb}`, ['training', 'micro_batch_size'], String(mb)));
  }
  if (!t.gradient_checkpointing) fixes.push(set('Enable gradient_checkpointing', ['training', 'gradient_checkpointing'], 'true'));
  if (r.data.max_seq_len > 512) fixes.push(set(`Lower max_seq_len to ${r.data.max_seq_len / 2}`, ['data', 'max_seq_len'], String(Math.floor(r.data.max_seq_len / 2))));
  const where: PathKey[] = has(env.written['training'], 'micro_batch_size') ? ['training', 'micro_batch_size'] : ['base_model'];
  add(where, 'error', 'memory', `estimated peak ${total.toFixed(1)} GiB is above the backend's GPU memory (${gpuGib.toFixed(1)} GiB); lower micro_batch_size or max_seq_len, or enable gradient_checkpointing`, ...fixes);
}
