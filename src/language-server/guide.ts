/**
 * Advice beyond the schema's one-line descriptions: typical range, when to change a value and
 * which fast paths it turns off. From the QLoRA hyperparameter playbook the product follows. Keys
 * are dotted recipe paths; the schema supplies what/type/default, this file only the advice.
 */

/** Advice for one recipe field. */
export interface Advice {
  /** The range most runs use. */
  typical?: string;
  /** When to move away from the default. */
  change?: string;
  /** Fast paths or memory savers this value turns off. */
  costs?: string;
}

/** Advice by dotted path. */
export const GUIDE: Readonly<Record<string, Advice>> = {
  base_model: { change: 'Start small (1–8B) to validate data and prompts, then scale up. Gated hub models need `huggingface-cli login` first.' },
  trust_remote_code: { costs: 'Runs Python shipped with the model; leave false unless the model card requires it.' },
  'quantization.bits': { typical: '4', change: '8 only when 4-bit quality is measurably worse; it roughly doubles weight memory.' },
  'quantization.quant_type': { typical: 'nf4', change: 'Keep nf4; fp4 is for comparison only.' },
  'quantization.double_quant': { typical: 'true', change: 'Turn off only to trade ~0.4 bit/param of memory for slightly faster dequantization.' },
  'quantization.compute_dtype': { typical: 'auto (bfloat16 on Ampere or newer)', costs: 'float32 doubles activation memory and disables the bf16/fp16 tensor-core matmuls.' },
  'lora.r': { typical: '8–16 light domain adaptation · 32–64 instruction tuning or multi-task · 96–128 hard tasks', change: 'Raise it when eval loss plateaus high; lower it when overfitting or short on memory.' },
  'lora.alpha': { typical: 'alpha = r to 2 × r (16 with r = 64 in the QLoRA paper)', change: 'The update is scaled by alpha / r: when you change r, keep the ratio unless you mean to change the step size.' },
  'lora.dropout': { typical: '0.05–0.1', change: 'Raise it when training loss falls but eval loss rises (overfitting).', costs: 'On a GPU no extra memory: the mask is drawn again in backward instead of kept; no fast path needs dropout 0.' },
  'lora.target_modules': { typical: 'all-linear (Llama/Mistral: q,k,v,o,gate,up,down)', change: 'Limit to attention projections (q_proj, k_proj, v_proj, o_proj) for speed or when overfitting.' },
  'lora.bias': { typical: 'none', costs: 'Training biases makes the adapter no longer mergeable as pure low-rank deltas.' },
  'data.train': { change: 'A .jsonl/.json/.csv/.parquet file next to the recipe, or a hub dataset id.' },
  'data.format': { change: 'Match your rows: chat for {"messages": [...]}, instruction for instruction/input/output, text for raw text.' },
  'data.train_on': { typical: 'assistant', change: 'completion trains only the last answer; all also trains on prompts (continued pre-training). With format: text only all is meaningful.' },
  'data.max_seq_len': { typical: 'the longest example you need, up to the model\'s max_position_embeddings', costs: 'Activation and loss memory grow linearly with it.' },
  'data.packing': { typical: 'true', costs: 'false pads every sequence to max_seq_len: slower and more memory per useful token.' },
  'data.eval_split': { typical: '0.02–0.1', change: 'Hold out data to watch eval loss and enable early stopping.' },
  'training.lr': { typical: '1e-4 to 3e-4 for adapters', change: 'Lower it (try 1e-4 → 7e-5) when loss spikes or diverges; raise it slightly when loss falls very slowly.' },
  'training.micro_batch_size': { typical: '1–4', change: 'Lower it first when out of memory and raise grad_accum to keep tokens per step.', costs: 'Memory for activations and the loss grows linearly with it.' },
  'training.grad_accum': { typical: '4–16', change: 'Raise it to keep the effective batch when lowering micro_batch_size.' },
  'training.gradient_checkpointing': { typical: 'true', costs: 'false keeps every layer\'s activations: several times the activation memory for ~30% faster steps.' },
  'training.memory_budget_gib': { typical: 'auto', change: 'Set the GiB this run may use when another process shares the GPU; 0 for the recipe\'s own (lowest) peak.', costs: 'auto lets a CUDA run fill the free GPU memory after its first step (layers out of checkpointing, joined micro-batches): faster, same loss, a higher peak than the estimate shows.' },
  'training.warmup_ratio': { typical: '0.03–0.05', change: 'Raise to 0.05–0.1 when the first steps are unstable.' },
  'training.scheduler': { typical: 'cosine', change: 'linear is as good for short runs; constant for debugging.' },
  'training.optimizer': { typical: 'paged_adamw_8bit', costs: 'The paged and 8-bit optimizers need CUDA (bitsandbytes); 32-bit AdamW keeps 4× the optimizer state.' },
  'training.max_grad_norm': { typical: '0.3–1.0', change: 'Lower it when grad norm spikes; 0 turns clipping off.' },
  'training.weight_decay': { typical: '0.0–0.1' },
  'training.epochs': { typical: '1–3', change: 'Watch eval loss and stop when it plateaus; more epochs on small data overfit.' },
  'training.early_stopping.patience': { typical: '2–5 evaluations', change: 'Needs eval data and eval_every > 0.' },
};
