/**
 * Chat templates rendered as transformers renders them (trim_blocks, lstrip_blocks,
 * loop controls, raise_exception, strftime_now, a non-escaping tojson, `{% generation %}` rendering
 * its body), on `@huggingface/jinja` with the Python semantics of jinjaPython.ts.
 * Mirrors python-backend/src/qlora_studio/data/templates.py.
 */
import { Environment, parse, tokenize } from '@huggingface/jinja';
import { PythonInterpreter, patchStringBuiltins } from './jinjaPython';
import { RowError } from './rowError';
import { Skeletons, type Layout } from './skeleton';

/** One chat message after the dataset format was applied. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** The special tokens a template reads; a missing token renders as the empty string. */
export interface SpecialTokens {
  bos_token: string;
  eos_token: string;
  pad_token: string;
  unk_token: string;
}

type Program = ReturnType<typeof parse>;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `strftime_now` for the formats chat templates use (%d %b %Y and friends), at `d`. */
function strftime(d: Date, format: string): string {
  const months = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
  const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const map: Record<string, string> = {
    d: pad(d.getDate()), m: pad(d.getMonth() + 1), Y: String(d.getFullYear()), y: pad(d.getFullYear() % 100),
    B: months[d.getMonth()]!, b: months[d.getMonth()]!.slice(0, 3), A: days[d.getDay()]!, a: days[d.getDay()]!.slice(0, 3),
    H: pad(d.getHours()), M: pad(d.getMinutes()), S: pad(d.getSeconds()), '%': '%',
  };
  return format.replace(/%(.)/g, (all, c: string) => map[c] ?? all);
}

function rangeFn(...args: number[]): number[] {
  const [start, stop, step] = args.length === 1 ? [0, args[0]!, 1] : [args[0]!, args[1]!, args[2] ?? 1];
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/** Noncharacters marking where a `{% generation %}` body starts and ends in the raw render. */
const GEN_OPEN = '\ufdd0';
const GEN_CLOSE = '\ufdd1';
const GEN_MARK = /[\ufdd0\ufdd1]/;
/** Characters message contents may not hold: the masking rule's markers and probes. */
export const RESERVED = /[\ufdd0-\ufdef]/;

/** A render and the `[start, end)` spans of its `{% generation %}` bodies, in order of start. */
export interface Rendered {
  text: string;
  generationSpans: Array<[number, number]>;
}

/**
 * The engine drops `{% generation %}` tags; we need the spans their bodies produce. Apply the
 * block whitespace rules first (as jinja2 does for every block tag), then turn each tag into a
 * marker output next to an equivalent `{% if true %}`…`{% endif %}`, keeping its `-` controls.
 */
function markGenerationTags(source: string): string {
  const blocks = source.replace(/^[ \t]*({[#%-])/gm, '$1').replace(/([#%-]})\n/g, '$1');
  return blocks
    .replace(/{%(-?)\s*generation\s*(-?)%}/g, `{{$1 '${GEN_OPEN}' }}{%$1 if true $2%}`)
    .replace(/{%(-?)\s*endgeneration\s*(-?)%}/g, `{{$1 '${GEN_CLOSE}' }}{%$1 endif $2%}`);
}

function stripGenerationMarks(raw: string): Rendered {
  if (!GEN_MARK.test(raw)) return { text: raw, generationSpans: [] };
  let text = '';
  const spans: Array<[number, number]> = [];
  const starts: number[] = [];
  for (const ch of raw) {
    if (ch === GEN_OPEN) starts.push(text.length);
    else if (ch === GEN_CLOSE) spans.push([starts.pop() ?? 0, text.length]);
    else text += ch;
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return { text, generationSpans: spans };
}

/** A compiled chat template: compile once, render many conversations. */
export class ChatTemplate {
  private readonly program: Program;
  /** True when the template marks trained text with `{% generation %}` tags. */
  readonly hasGenerationTags: boolean;
  /** Per-shape skeletons (see skeleton.ts); undefined when the source itself holds placeholder characters. */
  private readonly skeletons: Skeletons | undefined;

  /**
   * Compiles `source`; a syntax error names the template. `now` gives the instant
   * `strftime_now` formats (tests fix it; every render of one call uses one instant).
   * `specialise: false` renders every conversation through the interpreter (the reference).
   */
  constructor(readonly source: string, readonly name = '(inline)', private readonly now: () => Date = () => new Date(), specialise = true) {
    patchStringBuiltins();
    this.hasGenerationTags = /\{%-?\s*generation\s*-?%\}/.test(source);
    try {
      // markGenerationTags applies the block whitespace rules itself; applying them twice would
      // eat a second newline after a tag.
      this.program = this.hasGenerationTags
        ? parse(tokenize(markGenerationTags(source), { lstrip_blocks: false, trim_blocks: false }))
        : parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
    } catch (err) {
      throw new Error(`chat template ${name}: ${(err as Error).message}`);
    }
    this.skeletons = specialise && Skeletons.usable(source) ? new Skeletons(this.program) : undefined;
  }

  /** Renders `messages` to text; a template that raises becomes a `template_error` bad row. */
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): string {
    return this.renderSpans(messages, addGenerationPrompt, tokens).text;
  }

  /**
   * Renders `messages` and reports the `{% generation %}` spans (UTF-16 offsets). A shape whose
   * skeleton is known renders by writing the contents into it (equal to the full render by
   * construction; see skeleton.ts); any other renders through the interpreter.
   */
  renderSpans(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): Rendered {
    const fast = this.skeletons?.render(messages, addGenerationPrompt, tokens, () => this.globals(messages, addGenerationPrompt, tokens));
    return stripGenerationMarks(fast ?? this.renderRaw(messages, addGenerationPrompt, tokens));
  }

  /** `renderSpans` through the interpreter only (no skeleton): the reference the skeletons are tested against. */
  renderSpansFull(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): Rendered {
    return stripGenerationMarks(this.renderRaw(messages, addGenerationPrompt, tokens));
  }

  /** Each message's region in the render of `messages` from its skeleton (see Skeletons.regions; no content may hold a reserved character), or undefined (locate by rendering; per message or for all). */
  regions(messages: readonly ChatMessage[], tokens: SpecialTokens): Array<{ start: number; end: number } | string | undefined> | undefined {
    return this.skeletons?.regions(messages, tokens, () => this.globals(messages, false, tokens));
  }

  /** The skeleton layout of a render (see Skeletons.layout); callers ensure no content holds a reserved character. */
  layout(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): Layout | undefined {
    return this.skeletons?.layout(messages, addGenerationPrompt, tokens, () => this.globals(messages, addGenerationPrompt, tokens));
  }

  /** Why `messages`' shape renders through the interpreter ('' when it has a skeleton, undefined when not seen yet). */
  skeletonVerdict(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): string | undefined {
    return this.skeletons ? this.skeletons.explain(messages, addGenerationPrompt, tokens) : 'the template source holds a placeholder character';
  }

  private globals(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): Record<string, unknown> {
    return {
      false: false, true: true, none: null, False: false, True: true, None: null,
      raise_exception: (message: unknown) => {
        throw new RowError('template_error', `chat template ${this.name} raised: ${String(message)}`);
      },
      range: rangeFn,
      strftime_now: (format: string) => strftime(this.now(), format),
      messages, add_generation_prompt: addGenerationPrompt,
      bos_token: tokens.bos_token, eos_token: tokens.eos_token, pad_token: tokens.pad_token, unk_token: tokens.unk_token,
    };
  }

  private renderRaw(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): string {
    const env = new Environment();
    for (const [key, value] of Object.entries(this.globals(messages, addGenerationPrompt, tokens))) env.set(key, value);
    try {
      return (new PythonInterpreter(env).run(this.program) as { value: string }).value;
    } catch (err) {
      if (err instanceof RowError) throw err;
      throw new RowError('template_error', `chat template ${this.name} failed: ${(err as Error).message}`);
    }
  }
}
