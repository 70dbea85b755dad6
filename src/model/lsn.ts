/** A WAL position in bytes since 0/0. Patroni exchanges LSNs as integers; PostgreSQL prints them as X/Y. */
export type Lsn = bigint;

/** `0/4000060` style, upper-case hex, no zero padding (as PostgreSQL and Patroni 4.1 print it). */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Parses `X/Y` text; undefined when it is not an LSN. */
export function parseLsnText(text: string): Lsn | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) return undefined;
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

/**
 * Reads an integer LSN the way Patroni's readers do: JSON numbers and numeric strings count, anything else does
 * not. Large LSNs exceed 2^53 only after 8 PiB of WAL, but a string form keeps full precision when given.
 */
export function lsnFromJson(value: unknown): Lsn | undefined {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return BigInt(Math.trunc(value));
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return BigInt(value.trim());
  return undefined;
}
