/**
 * Recipe issues, as the language server, the CodeLens and the tests see them.
 *
 * Mirror: `RecipeIssue` in python-backend/src/qlora_studio/recipe/issues.py (same fields, same
 * meaning), so the editor and `qlora-studio run` point at the same line for the same mistake.
 */

/** How bad an issue is: errors stop a run, warnings never do. */
export type Severity = 'error' | 'warning';

/** One problem in a recipe. */
export interface RecipeIssue {
  /** Dotted path ("training.lr", list items as "lora.target_modules[0]"), "" for the whole file. */
  path: string;
  /** 1-based line (0 when the recipe did not come from text). */
  line: number;
  /** 1-based column (0 when the recipe did not come from text). */
  column: number;
  /** What is wrong and what to write instead. */
  message: string;
  severity: Severity;
  /**
   * Replacement text for a quick fix: the key an unknown key probably means, or the allowed value
   * closest to a misspelt one. Absent when there is no confident guess.
   */
  suggestion?: string;
}

/** Render as `file:line:col: path: message`, the form compilers use, so terminals link it. */
export function formatIssue(issue: RecipeIssue, source = '<recipe>'): string {
  const where = issue.line > 0 ? `${source}:${issue.line}:${issue.column}` : source;
  const prefix = issue.severity === 'warning' ? 'warning: ' : '';
  return `${where}: ${prefix}${issue.path || '(recipe)'}: ${issue.message}`;
}

/** Order issues as they appear in the file, errors before warnings on the same spot. */
export function sortIssues(issues: RecipeIssue[]): RecipeIssue[] {
  const rank = (i: RecipeIssue): number => (i.severity === 'error' ? 0 : 1);
  return [...issues].sort(
    (a, b) => a.line - b.line || a.column - b.column || rank(a) - rank(b) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );
}
