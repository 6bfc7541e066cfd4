/**
 * The recipe schema: the single source of truth for `*.qlora.yaml` files.
 *
 * Mirror: `python-backend/src/qlora_studio/recipe/recipe.schema.json` is generated from this file
 * by `npm run gen:schemas` (scripts/genSchemas.ts); a test fails when it is stale. Python validates
 * recipes against that JSON Schema and fills defaults from it, so every default lives here.
 *
 * No `vscode` import: the language server, the unit tests and the build all load this module.
 */
import { z } from 'zod';

/** Names of the chat templates shipped with QLoRA Studio (see python `data/templates.py`). */
export const BUILTIN_CHAT_TEMPLATES = ['chatml', 'llama3', 'mistral', 'gemma', 'phi3', 'qwen'] as const;

const dtype = z.enum(['bfloat16', 'float16', 'float32']);

export const quantizationSchema = z
  .object({
    bits: z
      .union([z.literal(4), z.literal(8)])
      .default(4)
      .describe('Bits of the frozen base weights. 4 is QLoRA (NF4/FP4); 8 uses LLM.int8().'),
    quant_type: z
      .enum(['nf4', 'fp4'])
      .default('nf4')
      .describe('4-bit data type. NF4 (normal float) is information-optimal for normally distributed weights; keep it.'),
    double_quant: z
      .boolean()
      .default(true)
      .describe('Quantize the quantization constants too (saves about 0.4 bits per parameter).'),
    compute_dtype: z
      .enum(['auto', 'bfloat16', 'float16', 'float32'])
      .default('auto')
      .describe('Dtype of the matmuls. auto = bfloat16 on GPUs that support it, else float16 on CUDA, float32 on the CPU.'),
    quant_storage_dtype: z
      .enum(['uint8', 'bfloat16', 'float16', 'float32'])
      .default('uint8')
      .describe('Storage dtype of packed 4-bit weights. Set it equal to compute_dtype for FSDP+QLoRA so shards can be flattened.'),
  })
  .strict()
  .describe('How the frozen base model is quantized.');

export const loraSchema = z
  .object({
    r: z.number().int().min(1).max(1024).default(16).describe('LoRA rank: 8–16 light adaptation, 32–64 instruction tuning, 96–128 hard tasks.'),
    alpha: z.number().positive().default(32).describe('LoRA scaling numerator; the update is scaled by alpha / r.'),
    dropout: z.number().min(0).max(0.9).default(0.05).describe('Dropout on the LoRA input. 0.05 is a solid default; raise it if overfitting.'),
    target_modules: z
      .union([z.literal('all-linear'), z.array(z.string().min(1)).min(1)])
      .default('all-linear')
      .describe('Linear modules that get adapters: "all-linear" or names such as [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj].'),
    bias: z.enum(['none', 'all', 'lora_only']).default('none').describe('Which biases are trained.'),
  })
  .strict()
  .describe('The low-rank adapters.');

export const fieldMappingSchema = z
  .object({
    messages: z.string().default('messages').describe('Column holding the list of chat messages (format: chat).'),
    role: z.string().default('role').describe('Key of a message holding its role.'),
    content: z.string().default('content').describe('Key of a message holding its text.'),
    instruction: z.string().default('instruction').describe('Column holding the instruction (format: instruction).'),
    input: z.string().default('input').describe('Column holding the optional input (format: instruction).'),
    output: z.string().default('output').describe('Column holding the expected answer (format: instruction).'),
    text: z.string().default('text').describe('Column holding raw text (format: text).'),
  })
  .strict()
  .describe('Column names in your data, when they differ from the defaults.');

export const dataSchema = z
  .object({
    train: z
      .string()
      .min(1)
      .describe('Training data: a .jsonl, .json, .csv or .parquet file (relative to the recipe), or a Hugging Face dataset id.'),
    eval: z.string().min(1).optional().describe('Evaluation data, in the same formats as train.'),
    eval_split: z
      .number()
      .min(0)
      .max(0.5)
      .default(0)
      .describe('Fraction of train held out for evaluation when no eval file is given (0 = none).'),
    split: z.string().default('train').describe('Split to read when train is a Hugging Face dataset id.'),
    format: z
      .enum(['chat', 'instruction', 'text'])
      .default('chat')
      .describe('chat: OpenAI-style messages; instruction: instruction/input/output; text: raw text.'),
    fields: fieldMappingSchema.default(() => fieldMappingSchema.parse({})),
    chat_template: z
      .string()
      .min(1)
      .default('tokenizer')
      .describe(
        'Chat template: "tokenizer" (the tokenizer\'s own), a built-in name (chatml, llama3, mistral, gemma, phi3, qwen), a path to a .jinja file, or inline Jinja.',
      ),
    system_prompt: z.string().optional().describe('System message prepended to conversations that have none.'),
    train_on: z
      .enum(['assistant', 'completion', 'all'])
      .default('assistant')
      .describe(
        'Which tokens carry loss. assistant: every assistant message plus the end-of-turn/EOS that closes it; completion: only the last assistant message; all: every token.',
      ),
    max_seq_len: z.number().int().min(16).max(1_048_576).default(2048).describe('Examples longer than this are truncated.'),
    packing: z
      .boolean()
      .default(true)
      .describe('Pack several examples into one sequence without padding; attention and labels never cross examples.'),
    skip_bad_rows: z
      .boolean()
      .default(false)
      .describe('false: stop before training and list bad rows with their line numbers; true: skip them and report the count.'),
  })
  .strict()
  .describe('Where the data comes from and how it becomes tokens.');

export const earlyStoppingSchema = z
  .object({
    patience: z.number().int().min(0).default(0).describe('Evaluations without improvement before stopping (0 = off).'),
    min_delta: z.number().min(0).default(0).describe('Smallest eval-loss decrease that counts as an improvement.'),
  })
  .strict()
  .describe('Stop when eval loss stops improving.');

export const trainingSchema = z
  .object({
    epochs: z.number().positive().default(1).describe('Passes over the training data (ignored when max_steps is set).'),
    max_steps: z.number().int().min(1).optional().describe('Optimizer steps to run; overrides epochs.'),
    micro_batch_size: z.number().int().min(1).default(1).describe('Sequences per forward pass per device.'),
    grad_accum: z.number().int().min(1).default(8).describe('Micro batches accumulated per optimizer step.'),
    lr: z.number().positive().max(1).default(2e-4).describe('Peak learning rate; 1e-4 to 3e-4 is common for adapters.'),
    scheduler: z.enum(['cosine', 'linear', 'constant']).default('cosine').describe('Learning-rate schedule after warmup.'),
    warmup_ratio: z.number().min(0).max(0.5).default(0.03).describe('Fraction of steps spent warming up (3–5% is typical).'),
    warmup_steps: z.number().int().min(0).optional().describe('Warmup in steps; overrides warmup_ratio.'),
    optimizer: z
      .enum(['paged_adamw_8bit', 'adamw_8bit', 'paged_adamw_32bit', 'adamw'])
      .default('paged_adamw_8bit')
      .describe('paged_adamw_8bit pages optimizer state to survive memory spikes (CUDA); the CPU uses adamw.'),
    weight_decay: z.number().min(0).max(1).default(0).describe('Decoupled weight decay (0.0–0.1).'),
    max_grad_norm: z.number().min(0).default(1).describe('Gradient clipping norm (0 = off).'),
    gradient_checkpointing: z.boolean().default(true).describe('Recompute activations in backward: far less memory, about 30% more compute.'),
    memory_budget_gib: z
      .union([z.literal('auto'), z.number().min(0)])
      .default('auto')
      .describe(
        'GPU memory (GiB) a CUDA run may fill to go faster. After the first step the engine measures its peak and, where the budget allows, keeps some layers out of gradient checkpointing (no recompute) and joins packed micro-batches into fewer, larger ones: the same rows per optimizer step and the same loss. auto = the memory the GPU has free when training starts; 0 = off (micro_batch_size as written, every layer checkpointed, the lowest peak).',
      ),
    seed: z.number().int().min(0).default(42).describe('Seed for initialisation, data order and dropout.'),
    log_every: z.number().int().min(1).default(1).describe('Emit a metrics event every N optimizer steps.'),
    eval_every: z.number().int().min(0).default(0).describe('Evaluate every N steps (0 = only at the end, when eval data exists).'),
    save_every: z.number().int().min(0).default(100).describe('Write a checkpoint every N steps (0 = only at the end).'),
    keep_checkpoints: z.number().int().min(1).default(2).describe('Checkpoints kept on disk (the best by eval loss is always kept).'),
    early_stopping: earlyStoppingSchema.default(() => earlyStoppingSchema.parse({})),
  })
  .strict()
  .describe('The optimisation loop.');

/** Training on several GPUs of one host: one process per GPU, launched through torch.distributed.run. */
export const distributedSchema = z
  .object({
    strategy: z
      .enum(['ddp', 'fsdp'])
      .default('ddp')
      .describe('ddp: every GPU holds the whole 4-bit base, gradients are averaged each step. fsdp: the base is sharded across GPUs (needs quantization.quant_storage_dtype equal to the compute dtype).'),
    gpus: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe('Processes (GPUs) to train on; the optimizer step sees micro_batch_size x grad_accum x gpus rows. On a machine without CUDA they run on the CPU (gloo).'),
  })
  .strict()
  .describe('Data-parallel training on several GPUs of one host (also: qlora-studio run --gpus N).');

export const outputSchema = z
  .object({
    dir: z.string().min(1).default('runs').describe('Folder (relative to the recipe) that holds runs/<run_id>/.'),
    run_name: z.string().regex(/^[A-Za-z0-9._-]+$/).optional().describe('Prefix of the run id; letters, digits, ".", "_" and "-".'),
  })
  .strict()
  .describe('Where runs are written.');

export const generationSchema = z
  .object({
    max_new_tokens: z.number().int().min(1).default(256).describe('Tokens generated at most.'),
    temperature: z.number().min(0).default(0.7).describe('Sampling temperature (0 = greedy).'),
    top_p: z.number().gt(0).max(1).default(0.9).describe('Nucleus sampling threshold.'),
    top_k: z.number().int().min(0).default(50).describe('Sample from the k most likely tokens (0 = off).'),
    repetition_penalty: z.number().positive().default(1).describe('Penalty for repeated tokens (1 = off).'),
  })
  .strict()
  .describe('Defaults for the playground and `qlora-studio generate`.');

export const wandbSchema = z
  .object({
    project: z.string().min(1).describe('Weights & Biases project the run is logged to.'),
    entity: z.string().min(1).optional().describe('Team or user that owns the project (default: your W&B default entity).'),
    name: z.string().min(1).optional().describe('Name of the W&B run (default: the run id).'),
  })
  .strict()
  .describe('Log metrics to Weights & Biases (needs the wandb package and a login on the backend host).');

export const loggingSchema = z
  .object({
    tensorboard: z.boolean().default(false).describe('Also write TensorBoard event files into the run folder (needs the tensorboard package).'),
    wandb: wandbSchema.optional(),
  })
  .strict()
  .describe('Optional experiment trackers, besides the run\'s own events.jsonl; all off by default.');

export const recipeSchema = z
  .object({
    base_model: z.string().min(1).describe('Hugging Face model id or local folder of the base model (relative paths are relative to the recipe).'),
    revision: z.string().optional().describe('Branch, tag or commit of base_model on the hub.'),
    tokenizer: z.string().optional().describe('Tokenizer id or folder when it differs from base_model.'),
    trust_remote_code: z
      .boolean()
      .default(false)
      .describe('Run Python code shipped with the model. Only for models you trust; never enabled silently.'),
    quantization: quantizationSchema.default(() => quantizationSchema.parse({})),
    lora: loraSchema.default(() => loraSchema.parse({})),
    data: dataSchema,
    training: trainingSchema.default(() => trainingSchema.parse({})),
    distributed: distributedSchema.optional(),
    output: outputSchema.default(() => outputSchema.parse({})),
    generation: generationSchema.default(() => generationSchema.parse({})),
    logging: loggingSchema.default(() => loggingSchema.parse({})),
  })
  .strict()
  .describe('A QLoRA Studio recipe (*.qlora.yaml).');

/** A recipe as written by the user (defaults not applied). */
export type RecipeInput = z.input<typeof recipeSchema>;
/** A recipe with every default filled in. */
export type Recipe = z.output<typeof recipeSchema>;
