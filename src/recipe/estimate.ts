/**
 * Peak GPU memory of a QLoRA run, estimated from the base model's config.json and the recipe, so
 * the recipe CodeLens can show it without a backend. Mirror of (and checked against, through
 * test/fixtures/recipes/estimates.json) python-backend/src/qlora_studio/estimate/memory.py, whose
 * header documents every formula. Pure: reading config.json is the caller's job. No `vscode` import.
 */
import type { Recipe } from './schema';

/** The estimate: GiB per device; every figure null (and a note saying why) without a usable config. */
export interface MemoryEstimate {
  total_gib: number | null;
  weights_gib: number | null;
  lora_gib: number | null;
  optimizer_gib: number | null;
  activations_gib: number | null;
  logits_gib: number | null;
  overhead_gib: number | null;
  lora_params: number | null;
  base_params: number | null;
  /** micro_batch_size × max_seq_len × grad_accum; known even without a config. */
  tokens_per_step: number;
  notes: string[];
}

const GIB = 1024 ** 3;
const OVERHEAD_GIB = 1.0;
const DOUBLE_QUANT_BITS = 8 / 64 + 32 / (64 * 256);
const SINGLE_QUANT_BITS = 32 / 64;
const OPTIMIZER_BYTES: Record<string, number> = { paged_adamw_8bit: 2, adamw_8bit: 2, paged_adamw_32bit: 8, adamw: 8 };
const DTYPE_BYTES: Record<string, number> = { bfloat16: 2, float16: 2, float32: 4 };
const REQUIRED_CONFIG = ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size'] as const;
/** fp32 logits one chunk of the engine's loss holds (python train/loss.py's _CHUNK_ELEMENTS). */
const LOSS_CHUNK_ELEMENTS = 2 ** 25;
/** Config attributes of models whose loss takes the plain full-logits path (python train/loss.py). */
const LOGIT_TRANSFORMS = ['final_logit_softcapping', 'logit_scale', 'logits_scaling', 'output_multiplier_scale'] as const;
/** Tokens of one MLP tile when a micro-batch is longer than two tiles (python train/offload.py). */
const MLP_TILE_TOKENS = 8192;
/** Extra values per token (x hidden) a replayed layer holds once its MLP runs in tiles (python estimate/memory.py). */
const TILED_EXTRA_H = 10;
const LLAMA_LINEARS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

interface Shape {
  h: number;
  i: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  tied: boolean;
  plainLoss: boolean;
}

/** A positive whole number from a config field, else undefined. */
function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** The decoder's dimensions, or the names of the fields that are missing or unusable. */
function shapeOf(config: Record<string, unknown>): Shape | string[] {
  const nested = config['text_config'];
  const useNested = !('hidden_size' in config) && nested !== null && typeof nested === 'object' && !Array.isArray(nested);
  const cfg = useNested ? (nested as Record<string, unknown>) : config;
  const missing = REQUIRED_CONFIG.filter((k) => count(cfg[k]) === undefined);
  if (missing.length) return missing;
  const h = cfg['hidden_size'] as number;
  const heads = cfg['num_attention_heads'] as number;
  return {
    h,
    i: count(cfg['intermediate_size']) ?? 4 * h,
    layers: cfg['num_hidden_layers'] as number,
    heads,
    kvHeads: count(cfg['num_key_value_heads']) ?? heads,
    headDim: count(cfg['head_dim']) ?? Math.floor(h / heads),
    vocab: cfg['vocab_size'] as number,
    tied: cfg['tie_word_embeddings'] === true,
    // Python's `value not in (None, 1, 1.0)`: true equals 1 there
    plainLoss: LOGIT_TRANSFORMS.some((k) => cfg[k] !== undefined && cfg[k] !== null && cfg[k] !== 1 && cfg[k] !== true),
  };
}

function linearsOf(s: Shape): Record<string, [number, number]> {
  return {
    q_proj: [s.h, s.heads * s.headDim],
    k_proj: [s.h, s.kvHeads * s.headDim],
    v_proj: [s.h, s.kvHeads * s.headDim],
    o_proj: [s.heads * s.headDim, s.h],
    gate_proj: [s.h, s.i],
    up_proj: [s.h, s.i],
    down_proj: [s.i, s.h],
  };
}

/** Bytes the loss holds at its peak: chunked over the head, or full logits on the plain path. */
function lossBytes(tokens: number, s: Shape, c: number): number {
  if (s.plainLoss) return tokens * s.vocab * (c + 8);
  const rows = Math.min(tokens, Math.max(1, Math.floor(LOSS_CHUNK_ELEMENTS / s.vocab)));
  return 2 * tokens * s.h * c + rows * s.vocab * (c + 4);
}

function unknownFigures(tokens: number, notes: string[]): MemoryEstimate {
  return {
    total_gib: null, weights_gib: null, lora_gib: null, optimizer_gib: null, activations_gib: null,
    logits_gib: null, overhead_gib: null, lora_params: null, base_params: null, tokens_per_step: tokens, notes,
  };
}

/** Said with every estimate of a run whose memory plan is on (training.memory_budget_gib not 0). */
export const PLAN_NOTE =
  'this is the peak of the recipe as written; after its first step a CUDA run may use more, up to training.memory_budget_gib (auto: the free GPU memory), to skip recomputation and join micro-batches; memory_budget_gib: 0 keeps this peak';

/**
 * Estimate the peak GPU memory (GiB, per device) of training `recipe` on a model with `modelConfig`
 * (the parsed config.json). Without a config every figure is null and `notes` says why.
 */
export function estimateMemory(recipe: Recipe, modelConfig: Record<string, unknown> | undefined): MemoryEstimate {
  const { training: t, data: d, quantization: q, lora } = recipe;
  const tokens = t.micro_batch_size * d.max_seq_len * t.grad_accum;
  if (!modelConfig) return unknownFigures(tokens, ['no model config: open a recipe whose base_model is a local folder with config.json']);
  const s = shapeOf(modelConfig);
  if (Array.isArray(s)) {
    return unknownFigures(tokens, [`the model config lacks usable ${s.join(', ')}; cannot estimate memory for this architecture`]);
  }
  const notes: string[] = [];
  const c = DTYPE_BYTES[q.compute_dtype] ?? 2;
  if (q.compute_dtype === 'auto') notes.push('compute_dtype auto counted as bfloat16 (a GPU); the CPU computes in float32');
  const linears = linearsOf(s);
  const shapes = Object.values(linears);
  const baseLinear = s.layers * shapes.reduce((sum, [a, b]) => sum + a * b, 0);
  const embed = s.vocab * s.h * (s.tied ? 1 : 2);
  const norms = s.layers * 2 * s.h + s.h;
  let weightBytes = q.bits === 4
    ? baseLinear * (0.5 + (q.double_quant ? DOUBLE_QUANT_BITS : SINGLE_QUANT_BITS) / 8)
    : baseLinear + s.layers * shapes.reduce((sum, [, out]) => sum + out, 0) * 4;
  weightBytes += (embed + norms) * c;

  let targets: string[] = [...LLAMA_LINEARS];
  if (lora.target_modules !== 'all-linear') {
    targets = lora.target_modules.filter((m) => m in linears);
    const unknown = lora.target_modules.filter((m) => !(m in linears));
    if (unknown.length) notes.push(`not counted (not a Llama-style projection name): ${unknown.join(', ')}`);
  }
  const dims = (m: string): [number, number] => linears[m] ?? [0, 0];
  const loraParams = s.layers * targets.reduce((sum, m) => sum + lora.r * (dims(m)[0] + dims(m)[1]), 0);

  const T = t.micro_batch_size * d.max_seq_len;
  // LoRA dropout adds nothing: the engine's LoRA branch draws the mask again in backward instead of
  // keeping a dropped-out copy of each module's input (python-backend train/lora_fused.py).
  const attnPart = 4 * s.h + (s.heads + 2 * s.kvHeads) * s.headDim + s.heads * s.headDim;
  const mlpPart = 3 * s.i;
  const tiled = T > 2 * MLP_TILE_TOKENS;
  const mlpTokens = tiled ? MLP_TILE_TOKENS : T;
  const grads = (6 + (tiled ? TILED_EXTRA_H : 0)) * s.h;
  let actBytes = t.gradient_checkpointing
    ? 2 * T * s.h * c + (T * (attnPart + grads) + mlpTokens * mlpPart) * c
    : s.layers * T * (attnPart + mlpPart) * c;
  actBytes += Math.max(...shapes.map(([a, b]) => a * b)) * c;
  if (!d.packing) notes.push('packing is off: sequences are padded, the figure assumes full max_seq_len batches');
  if (t.memory_budget_gib !== 0) notes.push(PLAN_NOTE);

  const parts = {
    weights_gib: weightBytes / GIB,
    lora_gib: (loraParams * 8) / GIB,
    optimizer_gib: (loraParams * (OPTIMIZER_BYTES[t.optimizer] ?? 8)) / GIB,
    activations_gib: actBytes / GIB,
    logits_gib: lossBytes(T, s, c) / GIB,
    overhead_gib: OVERHEAD_GIB,
  };
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  return { ...parts, total_gib: total, lora_params: loraParams, base_params: baseLinear + embed + norms, tokens_per_step: tokens, notes };
}
