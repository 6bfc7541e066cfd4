/**
 * The backend's methods: for each, the params a client sends, the result the server answers and,
 * for streamed methods, the partial frames sent before the result.
 *
 * Mirror: `python-backend/src/qlora_studio/server/handlers.py` implements every method listed in
 * {@link methods}; the server validates params against the generated
 * `server/protocol.schema.json`, and a Python test checks both sides list the same methods.
 */
import { z } from 'zod';
import { generationSchema } from '../recipe/schema';
import { runStateSchema } from './events';

const nonEmpty = z.string().min(1);
const runIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);
const anyRecord = z.record(z.string(), z.unknown());

/** A device the backend can train on. */
export const deviceSchema = z
  .object({
    index: z.number().int().min(0),
    type: z.enum(['cuda', 'cpu', 'mps', 'xpu']),
    name: z.string(),
    memory_total_mb: z.number().nullable(),
  })
  .strict();

/** What the backend can do: sent in the hello result so the UI can warn before a run starts. */
export const capabilitiesSchema = z
  .object({
    devices: z.array(deviceSchema),
    python: z.string(),
    torch: z.string().nullable(),
    cuda: z.string().nullable(),
    bitsandbytes: z.string().nullable(),
    transformers: z.string().nullable(),
    peft: z.string().nullable(),
  })
  .strict();

/** One run as `run.list` and `run.start` report it (the extension's runs tree item). */
export const runInfoSchema = z
  .object({
    run_id: nonEmpty,
    state: runStateSchema,
    step: z.number().int().min(0),
    total_steps: z.number().int().min(0).nullable(),
    last_loss: z.number().nullable(),
    recipe_path: z.string().nullable(),
    /** The copy of the recipe frozen in the run folder when it started (null when it is gone). */
    frozen_recipe_path: z.string().nullable(),
    created: z.number().nullable(),
    run_dir: z.string(),
    adapter_path: z.string().optional(),
    last_seq: z.number().int().min(0),
    pid: z.number().int().nullable(),
    reason: z.string().optional(),
    /** The backend's verdict, the only one: a resume of this run would be accepted now. */
    resumable: z.boolean(),
  })
  .strict();

/** One checkpoint of a run, as `adapter.info` lists them (oldest first). */
export const checkpointInfoSchema = z
  .object({
    /** `step-N`, `best` or `adapter` (the final adapter). */
    name: nonEmpty,
    /** The optimizer step it holds; null when the backend cannot tell (a loose `best` copy). */
    step: z.number().int().min(0).nullable(),
    path: nonEmpty,
  })
  .strict();

/**
 * What the backend knows about an adapter folder: every fact the playground and the merge need,
 * so the extension never reads the backend's files (which may be on another machine).
 */
export const adapterInfoSchema = z
  .object({
    /** The adapter folder on the backend host (absolute). */
    adapter_dir: nonEmpty,
    /** The base model to load under it, resolved (a relative local folder is made absolute). */
    base_model: nonEmpty,
    /** The run that trained it and its folder, when it came from a run. */
    run_id: z.string().nullable(),
    run_dir: z.string().nullable(),
    /** The recipe it was trained with, on the backend host (the frozen copy when there is one). */
    recipe_path: z.string().nullable(),
    /** The recipe's `generation:` section with defaults filled (schema defaults without a recipe). */
    generation: generationSchema,
    /** The recipe's `data.format`, and `data.chat_template` (a built-in name, `tokenizer`, a path or inline Jinja). */
    data_format: z.enum(['chat', 'instruction', 'text']).nullable(),
    chat_template: z.string().nullable(),
    /** The run's checkpoints: `step-N` oldest first, then `best`, then `adapter` (empty for a loose adapter). */
    checkpoints: z.array(checkpointInfoSchema),
    /** Where a merge of this adapter goes unless the user picks another folder (does not exist yet). */
    merge_out_dir: nonEmpty,
  })
  .strict();

/** A recipe problem with its position (mirror of python `RecipeIssue`). */
export const recipeIssueSchema = z
  .object({
    path: z.string(),
    line: z.number().int(),
    column: z.number().int(),
    message: z.string(),
    severity: z.enum(['error', 'warning']).default('error'),
    /** The likely intended key or value, for a quick fix. */
    suggestion: z.string().optional(),
  })
  .strict();

const generateParams = z
  .object({
    base_model: nonEmpty,
    adapter: z.string().nullable().optional(),
    messages: z
      .array(z.object({ role: nonEmpty, content: z.string() }).strict())
      .min(1)
      .optional(),
    prompt: z.string().optional(),
    max_new_tokens: z.number().int().min(1).max(32768).default(256),
    temperature: z.number().min(0).max(10).default(0.7),
    top_p: z.number().gt(0).max(1).default(0.9),
    top_k: z.number().int().min(0).default(50),
    repetition_penalty: z.number().gt(0).max(10).default(1.0),
  })
  .strict();

/**
 * Every method: `params` (client -> server), `result` (server -> client, the final response) and
 * `partial` (server -> client, zero or more frames tied to the request id before the result).
 */
export const methods = {
  /** Client, first frame on every connection: checks the protocol version, returns capabilities. */
  hello: {
    params: z.object({ protocol: z.number().int(), client: z.string(), client_version: z.string().optional() }).strict(),
    result: z
      .object({ protocol: z.number().int(), backend_version: z.string(), server_pid: z.number().int(), runs_dir: z.string(), capabilities: capabilitiesSchema })
      .strict(),
    partial: z.never(),
  },
  /** Client, while editing a recipe: validates its text (or a file on the backend host). */
  'recipe.validate': {
    params: z.object({ text: z.string().optional(), path: z.string().optional(), source: z.string().optional() }).strict(),
    result: z.object({ issues: z.array(recipeIssueSchema) }).strict(),
    partial: z.never(),
  },
  /** Client, for the dataset preview panel: examples as the trainer sees them, bad rows, stats. */
  'dataset.preview': {
    params: z.object({ recipe_path: nonEmpty, limit: z.number().int().min(1).max(1000).default(50), offset: z.number().int().min(0).default(0) }).strict(),
    result: z.object({ examples: z.array(anyRecord), bad_rows: z.array(anyRecord), stats: anyRecord }).loose(),
    partial: z.never(),
  },
  /**
   * Client, "Start QLoRA Run" / "Resume Run": the backend names the run and its folder (from the
   * recipe's `output.run_name` and `output.dir`, or under `runs_dir` when the user set one) and
   * spawns the run's own process. `resume` with `run_id` continues that run from its frozen
   * recipe (`recipe_path` may be left out); a resume of a run that is not resumable is refused
   * with `not_resumable`, a start or resume of a live run with `run_live`.
   */
  'run.start': {
    params: z
      .object({
        recipe_path: nonEmpty.optional(),
        run_id: runIdSchema.optional(),
        resume: z.boolean().default(false),
        /** The user's `qloraStudio.runsDir` (absolute): overrides the recipe's `output.dir`. */
        runs_dir: nonEmpty.optional(),
        max_steps: z.number().int().min(1).optional(),
        // Caps the run process's data memory (RLIMIT_DATA) so it fails cleanly instead of swapping a shared host.
        memory_limit_mb: z.number().int().min(64).optional(),
      })
      .strict(),
    result: runInfoSchema,
    partial: z.never(),
  },
  /** Client: first call asks the run to checkpoint and stop; a second call (or `force`) kills it. */
  'run.stop': {
    params: z.object({ run_id: nonEmpty, force: z.boolean().default(false) }).strict(),
    result: z.object({ run_id: nonEmpty, action: z.enum(['signalled', 'killed', 'not_running']) }).strict(),
    partial: z.never(),
  },
  /**
   * Client, for the runs tree: every run on disk with its reconciled state, including the runs in
   * the runs folder (`output.dir`) of each of `recipe_paths` (runs the CLI made next to a recipe).
   */
  'run.list': {
    params: z.object({ recipe_paths: z.array(nonEmpty).max(10_000).optional() }).strict(),
    result: z.object({ runs: z.array(runInfoSchema) }).strict(),
    partial: z.never(),
  },
  /** Client: replay the run's events with seq > after_seq, then stream new ones live. */
  'run.attach': {
    params: z.object({ run_id: nonEmpty, after_seq: z.number().int().min(0).default(0) }).strict(),
    result: z.object({ run_id: nonEmpty, last_seq: z.number().int().min(0), state: runStateSchema }).strict(),
    partial: z.never(),
  },
  /** Client: stop streaming a run's events to this connection. */
  'run.detach': {
    params: z.object({ run_id: nonEmpty }).strict(),
    result: z.object({ run_id: nonEmpty, detached: z.boolean() }).strict(),
    partial: z.never(),
  },
  /** Client, playground: streams generated text pieces as partials; cancel with `generate.cancel`. */
  generate: {
    params: generateParams,
    result: z.object({ text: z.string(), cancelled: z.boolean(), pieces: z.number().int().min(0) }).strict(),
    partial: z.object({ text: z.string() }).strict(),
  },
  /** Client: cancels a running `generate` request by its request id. */
  'generate.cancel': {
    params: z.object({ request_id: z.union([z.string(), z.number().int()]) }).strict(),
    result: z.object({ cancelled: z.boolean() }).strict(),
    partial: z.never(),
  },
  /**
   * Client, playground and merge: the facts of one adapter, by its folder or by the run that
   * trained it (exactly one of the two). `not_found`: no such folder or run; `invalid_params`:
   * the folder holds no adapter (the message says what to pick).
   */
  'adapter.info': {
    params: z.object({ adapter_dir: nonEmpty.optional(), run_id: runIdSchema.optional() }).strict(),
    result: adapterInfoSchema,
    partial: z.never(),
  },
  /** Client, "Merge adapter": merges into a bf16/fp16 checkpoint, with progress partials. */
  'adapter.merge': {
    params: z.object({ adapter_dir: nonEmpty, out_dir: nonEmpty, dtype: z.enum(['bfloat16', 'float16']).default('bfloat16') }).strict(),
    result: z
      .object({
        out_dir: z.string(),
        max_abs_logit_diff: z.number().nullable(),
        /** Largest |logit| seen in the check, so the difference can be read against it. */
        max_abs_logit: z.number().nullable().optional(),
        /** The largest difference the backend accepts for this dtype, and whether the merge is within it. */
        tolerance: z.number().nullable().optional(),
        verified: z.boolean().nullable().optional(),
      })
      .loose(),
    partial: z.object({ fraction: z.number().min(0).max(1), message: z.string() }).strict(),
  },
  /** Client, recipe completion: the base model's config and linear module names. */
  'model.introspect': {
    params: z.object({ base_model: nonEmpty }).strict(),
    result: z.object({ config: anyRecord, linear_modules: z.array(z.string()) }).loose(),
    partial: z.never(),
  },
  /** Client, recipe CodeLens: estimated peak GPU memory and tokens per step. */
  'memory.estimate': {
    params: z
      .object({
        recipe_path: z.string().optional(),
        text: z.string().optional(),
        /** Folder that relative paths in `text` are resolved against (the unsaved recipe's folder). */
        recipe_dir: z.string().optional(),
        model_config: anyRecord.optional(),
      })
      .strict(),
    /** Figures are null when no model config could be found (e.g. a hub id not in the local cache); notes say why. */
    result: z
      .object({
        total_gib: z.number().nullable(),
        weights_gib: z.number().nullable(),
        lora_gib: z.number().nullable(),
        optimizer_gib: z.number().nullable(),
        activations_gib: z.number().nullable(),
        tokens_per_step: z.number().nullable(),
        notes: z.array(z.string()),
      })
      .loose(),
    partial: z.never(),
  },
} as const;

export type Methods = typeof methods;
/** Name of a backend method. */
export type MethodName = keyof Methods;
/** Params a caller passes (defaults may be left out). */
export type ParamsOf<M extends MethodName> = z.input<Methods[M]['params']>;
/** The parsed result of a method. */
export type ResultOf<M extends MethodName> = z.output<Methods[M]['result']>;
/** The parsed partial frame payload of a streamed method. */
export type PartialOf<M extends MethodName> = z.output<Methods[M]['partial']>;
export type RunInfo = z.infer<typeof runInfoSchema>;
export type Capabilities = z.infer<typeof capabilitiesSchema>;
export type RecipeIssue = z.infer<typeof recipeIssueSchema>;
export type AdapterInfo = z.infer<typeof adapterInfoSchema>;

/** All method names, in the order they are documented. */
export const METHOD_NAMES = Object.keys(methods) as MethodName[];

/** True when `name` is a method this protocol version knows. */
export function isMethodName(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(methods, name);
}
