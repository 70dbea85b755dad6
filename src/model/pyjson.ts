/**
 * JSON text as Python's `json.dumps` writes it, which is what Patroni puts on the wire: spaced separators
 * (`", "`, `": "`) for REST bodies and patronictl output, compact ones for DCS values; non-ASCII escaped as
 * `\uXXXX` (ensure_ascii); bigint written as a plain integer.
 */
export function pyJson(value: unknown, compact = false): string {
  const comma = compact ? ',' : ', ';
  const colon = compact ? ':' : ': ';
  const write = (v: unknown): string => {
    if (v === null || v === undefined) return 'null';
    switch (typeof v) {
      case 'boolean':
        return v ? 'true' : 'false';
      case 'bigint':
        return v.toString();
      case 'number':
        return Number.isFinite(v) ? String(v) : v > 0 ? 'Infinity' : Number.isNaN(v) ? 'NaN' : '-Infinity';
      case 'string':
        return asciiString(v);
      case 'object':
        if (Array.isArray(v)) return `[${v.map(write).join(comma)}]`;
        return `{${Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => x !== undefined)
          .map(([k, x]) => `${asciiString(k)}${colon}${write(x)}`)
          .join(comma)}}`;
      case 'undefined':
      case 'function':
      case 'symbol':
        break;
    }
    // No JSON value: written as null, as JSON.stringify does inside a list.
    return 'null';
  };
  return write(value);
}

function asciiString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
