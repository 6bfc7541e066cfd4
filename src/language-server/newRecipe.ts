/**
 * The text of a new recipe: the fields a first run needs, each with the schema's description as
 * its comment and the schema's default as its value, except what the purpose changes (LoRA rank
 * and alpha from the playbook) and what was picked (base model, data file, data format). Says in
 * the file when the model is not on this machine or the data file does not exist yet.
 */
import { schemaAt } from '../recipe/messages';
import { recipeSchema, type Recipe } from '../recipe/schema';

/** What the recipe is for; sets the LoRA rank and alpha (alpha = 2 × r). */
export const PURPOSES = {
  light: { label: 'Light domain or style adaptation', r: 16 },
  instruction: { label: 'Instruction tuning or several tasks', r: 64 },
  hard: { label: 'A hard task, chasing the last points of quality', r: 128 },
} as const;

/** A purpose key. */
export type Purpose = keyof typeof PURPOSES;

/** The choices made in the New Recipe pickers, and what is known about them. */
export interface NewRecipeChoice {
  baseModel: string;
  /** How the model was found: a local folder, the local cache, or typed (not on this machine). */
  modelSource: 'local' | 'cache' | 'typed';
  train: string;
  /** Whether the data file exists. */
  trainExists: boolean;
  format: Recipe['data']['format'];
  purpose: Purpose;
}

/** Fields written, by section, in this order. */
const FIELDS: ReadonlyArray<[string, readonly string[]]> = [
  ['data', ['train', 'format', 'eval_split', 'chat_template', 'train_on', 'max_seq_len', 'packing']],
  ['lora', ['r', 'alpha', 'dropout', 'target_modules']],
  ['training', ['epochs', 'micro_batch_size', 'grad_accum', 'lr', 'scheduler', 'warmup_ratio', 'optimizer', 'gradient_checkpointing']],
  ['output', ['dir']],
];

function scalar(v: unknown): string {
  if (typeof v === 'number') return v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(1).replace('e-', '.0e-').replace(/\.(\d)\.0e/, '.$1e') : String(v);
  if (typeof v === 'string') return /^[\w./-]+$/.test(v) && !/^(true|false|null|[-.\d])/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

function comment(path: string[]): string {
  const d = schemaAt(path).description ?? '';
  const first = d.split(/(?<=\.)\s/)[0] ?? d;
  return first.length > 72 ? `${first.slice(0, 69)}...` : first;
}

/** Gated hub organisations whose models need an accepted licence and a login. */
const GATED_ORGS = ['meta-llama', 'mistralai', 'google', 'CohereForAI', 'tiiuae'];

/** The commented recipe text for `choice`; every other value is the schema's default. */
export function renderNewRecipe(choice: NewRecipeChoice): string {
  const { r } = PURPOSES[choice.purpose];
  const data: Record<string, unknown> = { train: choice.train, format: choice.format };
  if (choice.format === 'text') data['train_on'] = 'all';
  const defaults = recipeSchema.parse({ base_model: choice.baseModel, data, lora: { r, alpha: 2 * r } }) as unknown as Record<string, Record<string, unknown>>;
  const out = [`# QLoRA Studio recipe (${PURPOSES[choice.purpose].label.toLowerCase()}). Hover a key for its documentation;`, '# Ctrl+Space lists the others.'];
  if (choice.modelSource === 'typed') {
    const org = choice.baseModel.split('/')[0] ?? '';
    out.push(`# NOTE: ${choice.baseModel} is not on this machine: the first run downloads it.`);
    if (GATED_ORGS.includes(org)) out.push(`# NOTE: ${org} models are gated: accept the licence on the hub and run \`huggingface-cli login\` first.`);
  }
  out.push(`base_model: ${scalar(choice.baseModel)}   # ${comment(['base_model'])}`);
  for (const [section, keys] of FIELDS) {
    out.push(`${section}:`);
    for (const key of keys) {
      if (section === 'data' && key === 'train' && !choice.trainExists) out.push(`  # NOTE: ${choice.train} does not exist yet: create it before starting a run.`);
      out.push(`  ${key}: ${scalar(defaults[section]?.[key])}   # ${comment([section, key])}`);
    }
  }
  return out.join('\n') + '\n';
}
