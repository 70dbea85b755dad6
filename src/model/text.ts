/** Text of a value read from YAML or JSON: scalars as written, structures as JSON, nothing as ''. */
export function textOf(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

/** A scalar as text, `undefined` when absent; a mapping or list where a scalar belongs is a mistake to report. */
export function scalarText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return undefined;
  return textOf(v);
}

/** The message of something thrown: an Error's message, anything else as text. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
