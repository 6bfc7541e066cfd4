/**
 * One dataset row -> a conversation (or raw text), with the bad-row kinds of the trainer.
 * Mirrors python-backend/src/qlora_studio/data/formats.py (the authority); the doctor's parity
 * test holds both to test/fixtures/data/.
 */
import type { z } from 'zod';
import type { dataSchema } from '../recipe/schema';
import { pyStrip } from './pyString';
import { RowError } from './rowError';
import type { ChatMessage } from './template';

/** The recipe's `data` section, with defaults applied. */
export type DataConfig = z.output<typeof dataSchema>;

/** Roles the trainer accepts. */
export const ALLOWED_ROLES = ['system', 'user', 'assistant', 'tool'] as const;

type Row = Record<string, unknown>;

function typeName(v: unknown): string {
  if (v === null) return 'NoneType';
  if (Array.isArray(v)) return 'list';
  switch (typeof v) {
    case 'string': return 'str';
    case 'number': return Number.isInteger(v) ? 'int' : 'float';
    case 'boolean': return 'bool';
    case 'object': return 'dict';
    default: return typeof v;
  }
}

function field(row: Row, name: string, what: string): unknown {
  if (!(name in row) || row[name] === null) {
    const present = Object.keys(row).sort().join(', ') || 'none';
    throw new RowError('missing_field', `no '${name}' field (${what}); fields present: ${present}. Map your column name under data.fields in the recipe`);
  }
  return row[name];
}

function chatMessages(row: Row, f: DataConfig['fields']): ChatMessage[] {
  const raw = field(row, f.messages, 'the list of chat messages');
  if (!Array.isArray(raw)) throw new RowError('missing_field', `'${f.messages}' must be a list of messages, got ${typeName(raw)}`);
  if (raw.length === 0) throw new RowError('empty_conversation', `'${f.messages}' is an empty list`);
  const messages = raw.map((msg: unknown, index): ChatMessage => {
    const where = `message ${index + 1}`;
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new RowError('not_an_object', `${where} is a ${typeName(msg)}, not an object`);
    const m = msg as Row;
    if (!(f.role in m)) throw new RowError('missing_field', `${where} has no '${f.role}' key`);
    const role = m[f.role];
    if (typeof role !== 'string' || !(ALLOWED_ROLES as readonly string[]).includes(role)) {
      throw new RowError('unknown_role', `${where} has role ${JSON.stringify(role)}; allowed roles: ${ALLOWED_ROLES.join(', ')}`);
    }
    const content = m[f.content];
    if (typeof content !== 'string') {
      throw new RowError('missing_field', `${where} (${role}) has no text '${f.content}' (got ${f.content in m ? typeName(content) : 'nothing'})`);
    }
    return { role, content };
  });
  if (!messages.some((m) => m.role !== 'system')) throw new RowError('empty_conversation', 'the conversation has only system messages');
  return messages;
}

function instructionMessages(row: Row, f: DataConfig['fields']): ChatMessage[] {
  const instruction = field(row, f.instruction, 'the instruction');
  const output = field(row, f.output, 'the expected answer');
  const extra = row[f.input];
  for (const [name, value] of [[f.instruction, instruction], [f.output, output]] as const) {
    if (typeof value !== 'string') throw new RowError('missing_field', `'${name}' must be text, got ${typeName(value)}`);
  }
  if (extra !== undefined && extra !== null && typeof extra !== 'string') throw new RowError('missing_field', `'${f.input}' must be text, got ${typeName(extra)}`);
  if (!pyStrip(instruction as string)) throw new RowError('empty_conversation', `'${f.instruction}' is empty`);
  const user = extra ? `${instruction as string}\n\n${extra}` : (instruction as string);
  return [{ role: 'user', content: user }, { role: 'assistant', content: output as string }];
}

function textOf(row: Row, f: DataConfig['fields']): string {
  const value = field(row, f.text, 'the raw text');
  if (typeof value !== 'string') throw new RowError('missing_field', `'${f.text}' must be text, got ${typeName(value)}`);
  if (!pyStrip(value)) throw new RowError('empty_conversation', `'${f.text}' is empty`);
  return value;
}

/** Applies `data.format` to one parsed row: messages for chat/instruction, a string for text. */
export function rowToConversation(value: unknown, data: DataConfig): ChatMessage[] | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RowError('not_an_object', `the row is a ${typeName(value)}, not an object`);
  const row = value as Row;
  let messages: ChatMessage[];
  switch (data.format) {
    case 'text': return textOf(row, data.fields);
    case 'instruction': messages = instructionMessages(row, data.fields); break;
    case 'chat': messages = chatMessages(row, data.fields); break;
    default: { const never: never = data.format; throw new Error(`unknown data.format ${String(never)}`); }
  }
  if (!data.system_prompt || messages.some((m) => m.role === 'system')) return messages;
  return [{ role: 'system', content: data.system_prompt }, ...messages];
}

/** Parses one JSONL line; a syntax error is a `malformed_json` bad row naming the column. */
export function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const where = pos ? ` (column ${Number(pos[1]) + 1})` : '';
    throw new RowError('malformed_json', `the line is not valid JSON${where}: ${msg}. Fix the line or delete it`);
  }
}
