/**
 * The recipe reference (docs/recipe.md), rendered from the zod schema's JSON Schema so every field,
 * default and description in the doc is the one the validators use. scripts/genRecipeDoc.ts writes
 * it; a unit test fails when the committed file is stale. No `vscode` import.
 */
import { recipeJsonSchema, type SchemaNode } from './messages';

/** One row of the reference: a field of a section. */
export interface FieldDoc {
  /** Dotted path, e.g. "training.lr". */
  path: string;
  /** The accepted values, e.g. "number > 0, ≤ 1". */
  type: string;
  /** The default as YAML would show it, "required", or "optional" (no default). */
  default: string;
  description: string;
}

interface Bounded extends SchemaNode {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  required?: string[];
}

/** "number > 0, ≤ 1", "`cosine` | `linear`", "list of text (at least 1)" for a schema node. */
export function describeType(node: Bounded): string {
  if (node.anyOf) return node.anyOf.map(describeType).join(' or ');
  if ('const' in node) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(' | ');
  const bounds = [
    node.exclusiveMinimum !== undefined ? `> ${node.exclusiveMinimum}` : undefined,
    node.minimum !== undefined ? `≥ ${node.minimum}` : undefined,
    node.exclusiveMaximum !== undefined ? `< ${node.exclusiveMaximum}` : undefined,
    // zod's int() adds Number.MAX_SAFE_INTEGER as a maximum; it is no limit a user meets
    node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER ? `≤ ${node.maximum}` : undefined,
  ].filter((b): b is string => b !== undefined);
  switch (node.type) {
    case 'integer':
      return ['integer', bounds.join(', ')].filter(Boolean).join(' ');
    case 'number':
      return ['number', bounds.join(', ')].filter(Boolean).join(' ');
    case 'string':
      if (node.pattern) return `text matching \`${node.pattern}\``;
      return (node.minLength ?? 0) >= 1 ? 'non-empty text' : 'text';
    case 'boolean':
      return '`true` | `false`';
    case 'array':
      return `list of ${node.items ? describeType(node.items) : 'values'}${node.minItems ? ` (at least ${node.minItems})` : ''}`;
    case 'object':
      return 'mapping';
    default:
      return String(node.type ?? 'any');
  }
}

function showDefault(node: Bounded, required: boolean): string {
  if (required) return '**required**';
  if (!('default' in node)) return 'optional';
  if (node.type === 'object') return 'see below';
  return `\`${JSON.stringify(node.default)}\``;
}

/** Every field of the recipe, in schema order, sections before their fields. */
export function recipeFields(node: Bounded = recipeJsonSchema, prefix = ''): FieldDoc[] {
  const out: FieldDoc[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const sub = child as Bounded;
    const required = (node.required ?? []).includes(key);
    out.push({ path, type: describeType(sub), default: showDefault(sub, required), description: sub.description ?? '' });
    if (sub.type === 'object') out.push(...recipeFields(sub, path));
  }
  return out;
}

const INTRO = `# Recipe reference (\`*.qlora.yaml\`)

<!-- Generated from src/recipe/schema.ts by \`npx tsx scripts/genRecipeDoc.ts\`. Do not edit. -->

A recipe is one YAML document that says which model to adapt, on which data, and how. Only
\`base_model\` and \`data.train\` are required; every other field has the default listed below.

\`\`\`yaml
base_model: meta-llama/Llama-3.1-8B-Instruct   # a Hugging Face id or a local folder
data:
  train: data/train.jsonl                      # relative to this file
\`\`\`

## Rules that the table cannot show

- **Validation.** The editor and \`qlora-studio run\` check a recipe the same way and report every
  problem at once as \`file:line:column: path: message\`: unknown keys (with a "did you mean"),
  values out of range, wrong types, missing keys, YAML syntax errors and duplicate keys.
- **YAML 1.2.** Values are read by the YAML 1.2 core schema: \`2e-4\` is a number, \`yes\`/\`no\`/\`on\`
  are text (write \`true\`/\`false\`), \`0x10\` is hex. Anchors and aliases work; a second \`---\`
  document does not.
- **Paths** (\`data.train\`, \`data.eval\`, a \`.jinja\` chat template, \`output.dir\`, a local
  \`base_model\` or \`tokenizer\`) are relative to the folder holding the recipe. The editor reports a
  missing or unreadable data file or \`.jinja\` template as you type; a run checks every path when it
  starts.
- **Local model or hub id.** \`base_model\` is a local folder when it starts with \`./\`, \`../\`, \`/\` or
  \`~\`, or when a folder of that name exists next to the recipe; otherwise it is a Hugging Face id.
- **Overrides.** \`training.max_steps\` wins over \`training.epochs\`, \`training.warmup_steps\` over
  \`training.warmup_ratio\`, and \`data.eval\` over \`data.eval_split\`. Writing both is allowed and gives
  a warning, not an error.
- **trust_remote_code** is never turned on for you: it runs Python code shipped with the model, so
  a recipe must say \`trust_remote_code: true\` itself.
- **Memory.** The editor shows the estimated peak GPU memory and tokens per step
  (\`micro_batch_size × max_seq_len × grad_accum\`) above the recipe, and an error when the peak is
  above the connected backend's GPU memory; the formulas are documented in
  \`python-backend/src/qlora_studio/estimate/memory.py\`.
`;

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/\n/g, ' ');
}

/** The whole of docs/recipe.md. */
export function renderRecipeReference(): string {
  const fields = recipeFields();
  const lines = [INTRO];
  const top = fields.filter((f) => !f.path.includes('.'));
  for (const section of top) {
    const children = fields.filter((f) => f.path.startsWith(`${section.path}.`));
    if (!children.length) continue;
    lines.push(`## \`${section.path}\`\n`, `${section.description}\n`);
    lines.push('| Field | Accepts | Default | Meaning |', '| --- | --- | --- | --- |');
    for (const f of children) lines.push(`| \`${f.path}\` | ${escapeCell(f.type)} | ${escapeCell(f.default)} | ${escapeCell(f.description)} |`);
    lines.push('');
  }
  const plain = top.filter((f) => !fields.some((c) => c.path.startsWith(`${f.path}.`)));
  lines.splice(1, 0, '## Top level\n', '| Field | Accepts | Default | Meaning |', '| --- | --- | --- | --- |',
    ...plain.map((f) => `| \`${f.path}\` | ${escapeCell(f.type)} | ${escapeCell(f.default)} | ${escapeCell(f.description)} |`), '');
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
