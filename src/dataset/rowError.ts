/**
 * Bad-row kinds and the error that carries one. Mirrors `BAD_ROW_KINDS` and `RowError` in
 * python-backend/src/qlora_studio/data/rows.py; the dataset doctor adds the kinds that only a
 * whole-file pass can see (duplicates, EOS masked, inference mismatch).
 */

/** Why one row cannot become the training example it looks like. */
export type RowErrorKind =
  | 'malformed_json'
  | 'not_an_object'
  | 'missing_field'
  | 'unknown_role'
  | 'empty_conversation'
  | 'template_error'
  | 'template_mismatch'
  | 'no_trained_tokens';

/** Raised while turning one row into an example; the doctor reports it on the row's line. */
export class RowError extends Error {
  /** The bad-row kind, as in the Python backend. */
  readonly kind: RowErrorKind;

  constructor(kind: RowErrorKind, message: string) {
    super(message);
    this.kind = kind;
    this.name = 'RowError';
  }
}
