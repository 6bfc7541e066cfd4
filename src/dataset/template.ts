/**
 * Chat templates rendered as transformers renders them (trim_blocks, lstrip_blocks,
 * loop controls, raise_exception, strftime_now, a non-escaping tojson, `{% generation %}` rendering
 * its body), on `@huggingface/jinja` with the Python semantics of jinjaPython.ts.
 * Mirrors python-backend/src/qlora_studio/data/templates.py.
 */
import { Environment, parse, tokenize } from '@huggingface/jinja';
import { PythonInterpreter, patchStringBuiltins } from './jinjaPython';
import { RowError } from './rowError';

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

/** `strftime_now` for the formats chat templates use (%d %b %Y and friends). */
function strftimeNow(format: string): string {
  const d = new Date();
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

/** A compiled chat template: compile once, render many conversations. */
export class ChatTemplate {
  private readonly program: Program;

  /** Compiles `source`; a syntax error names the template. */
  constructor(readonly source: string, readonly name = '(inline)') {
    patchStringBuiltins();
    try {
      this.program = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
    } catch (err) {
      throw new Error(`chat template ${name}: ${(err as Error).message}`);
    }
  }

  /** Renders `messages`; a template that raises becomes a `template_error` bad row. */
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): string {
    const env = new Environment();
    const globals: Record<string, unknown> = {
      false: false, true: true, none: null, False: false, True: true, None: null,
      raise_exception: (message: unknown) => {
        throw new RowError('template_error', `chat template ${this.name} raised: ${String(message)}`);
      },
      range: rangeFn,
      strftime_now: strftimeNow,
      messages, add_generation_prompt: addGenerationPrompt,
      bos_token: tokens.bos_token, eos_token: tokens.eos_token, pad_token: tokens.pad_token, unk_token: tokens.unk_token,
    };
    for (const [key, value] of Object.entries(globals)) env.set(key, value);
    try {
      const result = new PythonInterpreter(env).run(this.program) as { value: string };
      return result.value;
    } catch (err) {
      if (err instanceof RowError) throw err;
      throw new RowError('template_error', `chat template ${this.name} failed: ${(err as Error).message}`);
    }
  }
}
