/**
 * The Python trainer is the authority: when a backend is connected, its `dataset.preview` answer
 * (bad rows of the whole file, the first examples token by token) is compared with the
 * TypeScript preview, and every line where the two disagree becomes a problem of its own
 * ("preview differs from trainer"), so a divergence between the two can never hide.
 */
import type { DoctorIssue } from './doctor';
import type { LinePreview } from './session';

/** The parts of a `dataset.preview` result the comparison reads. */
export interface TrainerPreview {
  examples: Array<{ line?: unknown; tokens?: Array<{ id?: unknown; trained?: unknown }> }>;
  bad_rows: Array<{ line?: unknown; kind?: unknown }>;
}

/** Kind of the problem a disagreement is reported as. */
export const DIFFERS = 'preview_differs';

/**
 * Compares the trainer's answer with ours; `tsBad` maps line -> our bad-row kind for the whole
 * file, `previewLine` previews one line (1-based) on demand.
 */
export function compareWithTrainer(py: TrainerPreview, tsBad: ReadonlyMap<number, string>, previewLine: (line: number) => LinePreview | undefined): DoctorIssue[] {
  const out: DoctorIssue[] = [];
  const pyBad = new Map<number, string>();
  for (const b of py.bad_rows) if (typeof b.line === 'number' && typeof b.kind === 'string') pyBad.set(b.line, b.kind);
  const lines = new Set([...pyBad.keys(), ...tsBad.keys()]);
  for (const line of [...lines].sort((a, b) => a - b)) {
    const p = pyBad.get(line);
    const t = tsBad.get(line);
    if (p !== t) out.push(differs(line, `the trainer calls this row ${p ?? 'good'}, the preview ${t ?? 'good'}`));
  }
  for (const ex of py.examples) {
    if (typeof ex.line !== 'number' || !Array.isArray(ex.tokens)) continue;
    const ts = previewLine(ex.line);
    if (!ts || !ts.ok) continue; // already reported above as a bad-row disagreement
    const ids = ex.tokens.map((t) => t.id);
    const trained = ex.tokens.map((t) => t.trained === true);
    const k = firstDifference(ids, ts.encoded.inputIds, trained, ts.encoded.labels.map((l) => l !== -100));
    if (k !== undefined) out.push(differs(ex.line, `token ${k + 1} differs (trainer id ${String(ids[k] ?? 'none')} ${trained[k] ? 'trained' : 'masked'}, preview id ${String(ts.encoded.inputIds[k] ?? 'none')} ${ts.encoded.labels[k] !== undefined && ts.encoded.labels[k] !== -100 ? 'trained' : 'masked'})`));
  }
  return out;
}

function firstDifference(a: unknown[], b: number[], ta: boolean[], tb: boolean[]): number | undefined {
  const n = Math.max(a.length, b.length);
  for (let k = 0; k < n; k += 1) if (a[k] !== b[k] || ta[k] !== tb[k]) return k;
  return undefined;
}

function differs(line: number, detail: string): DoctorIssue {
  return { line, kind: DIFFERS, severity: 'error', message: `preview differs from trainer: ${detail}. The trainer's view is what trains; please report this with the line and the recipe` };
}
