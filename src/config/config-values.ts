/**
 * Value checks for the configuration loaders. Every one takes the dotted path of the key for its message, which
 * says what was found and what is allowed; `null` counts as "not set".
 */
import { textOf } from '../model/text.js';
import { parseIntLenient } from '../model/cluster.js';
import { parseBool } from '../model/python.js';
import { UserError } from './errors.js';
import type { HostPort, PgListen, ToolOptionsValue } from './agent-config-types.js';

export type Node = Readonly<Record<string, unknown>>;

export function isMapping(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return textOf(v);
}

export function invalid(path: string, found: unknown, allowed: string): UserError {
  return new UserError(`${path}: ${shown(found)} is not ${allowed}`);
}

export function missing(path: string): UserError {
  return new UserError(`${path} is missing`);
}

export const child = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

export function get(node: Node, key: string): unknown {
  const v = node[key];
  return v === null ? undefined : v;
}

export function optMapping(node: Node, key: string, path: string): Node | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  if (!isMapping(v)) throw invalid(child(path, key), v, 'a mapping');
  return v;
}

export function reqMapping(node: Node, key: string, path: string): Node {
  const v = optMapping(node, key, path);
  if (v === undefined) throw missing(child(path, key));
  return v;
}

/** A string; numbers are accepted as their text (YAML reads `scope: 1234` as a number). */
export function optStr(node: Node, key: string, path: string): string | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw invalid(child(path, key), v, 'a string');
}

export function reqStr(node: Node, key: string, path: string): string {
  const v = optStr(node, key, path);
  if (v === undefined) throw missing(child(path, key));
  if (v.trim() === '') throw new UserError(`${child(path, key)} is empty`);
  return v;
}

/** Lenient boolean as Patroni's runtime reads it: true/false, on/off, yes/no, 1/0. */
export function optBool(node: Node, key: string, path: string): boolean | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const b = parseBool(v);
  if (b === undefined) throw invalid(child(path, key), v, 'a boolean (true or false)');
  return b;
}

export interface IntRule {
  readonly min?: number;
  readonly max?: number;
  /** Numbers only (no numeric strings), like Patroni's `expected_type=int`. */
  readonly strict?: boolean;
}

export function intRuleText(rule: IntRule): string {
  if (rule.min !== undefined && rule.max !== undefined) return `an integer from ${rule.min} to ${rule.max}`;
  if (rule.min !== undefined) return `an integer >= ${rule.min}`;
  if (rule.max !== undefined) return `an integer <= ${rule.max}`;
  return 'an integer';
}

export function optInt(node: Node, key: string, path: string, rule: IntRule = {}): number | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const n =
    rule.strict === true
      ? typeof v === 'number' && Number.isInteger(v)
        ? v
        : undefined
      : typeof v === 'number' && !Number.isInteger(v)
        ? undefined
        : parseIntLenient(v);
  if (
    n === undefined ||
    (rule.min !== undefined && n < rule.min) ||
    (rule.max !== undefined && n > rule.max)
  ) {
    throw invalid(child(path, key), v, intRuleText(rule));
  }
  return n;
}

export function optEnum<T extends string>(
  node: Node,
  key: string,
  path: string,
  allowed: readonly T[],
  caseSensitive = true,
): T | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const text = typeof v === 'string' ? (caseSensitive ? v : v.toLowerCase()) : undefined;
  const hit = allowed.find((a) => a === text);
  if (hit === undefined) throw invalid(child(path, key), v, `one of ${allowed.join(', ')}`);
  return hit;
}

export function optStrList(node: Node, key: string, path: string): readonly string[] | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw invalid(child(path, key), v, 'a list of strings');
  return (v as readonly unknown[]).map((item, i) => {
    if (typeof item === 'string') return item;
    if (typeof item === 'number') return String(item);
    throw invalid(`${child(path, key)}.${i}`, item, 'a string');
  });
}

export function optStrMap(
  node: Node,
  key: string,
  path: string,
): Readonly<Record<string, string>> | undefined {
  const m = optMapping(node, key, path);
  if (m === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const k of Object.keys(m)) {
    const v = optStr(m, k, child(path, key));
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** A list of `flag` / single-key `{name: value}` entries, or a plain mapping (initdb, pg_basebackup options). */
export function optToolOptions(node: Node, key: string, path: string): ToolOptionsValue | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const p = child(path, key);
  if (isMapping(v)) return v;
  if (!Array.isArray(v)) throw invalid(p, v, 'a list of options (e.g. - data-checksums, - encoding: UTF8)');
  const allowed = 'an option name or a single-key mapping with a string value (e.g. encoding: UTF8)';
  return (v as readonly unknown[]).map((item, i) => {
    if (typeof item === 'string') return item;
    if (isMapping(item)) {
      const entries = Object.entries(item);
      const first = entries[0];
      if (entries.length === 1 && first !== undefined) {
        const value = first[1];
        if (typeof value === 'string' || typeof value === 'number') return { [first[0]]: value };
      }
    }
    throw invalid(`${p}.${i}`, item, allowed);
  });
}

export function hostPortText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** Patroni's host:port split: the text after the last colon is the port; IPv6 hosts lose their brackets. */
export function splitHostPort(text: string): HostPort | undefined {
  const idx = text.lastIndexOf(':');
  if (idx < 0) return undefined;
  let host = text.slice(0, idx).trim();
  if (host.includes(':')) {
    host = host
      .split(',')
      .map((h) => h.trim().replace(/^\[+|\]+$/g, ''))
      .join(',');
  }
  const portText = text.slice(idx + 1).trim();
  if (!/^\+?\d+$/.test(portText)) return undefined;
  const port = Number.parseInt(portText, 10);
  if (port < 1 || port > 65535) return undefined;
  return { host, port };
}

export function listenAddress(node: Node, key: string, path: string, example: string): HostPort {
  const v = get(node, key);
  const p = child(path, key);
  if (v === undefined) throw missing(p);
  const text = hostPortText(v);
  const hp = text === undefined ? undefined : splitHostPort(text);
  if (hp === undefined || hp.host.includes(',')) throw invalid(p, v, `host:port (e.g. ${example})`);
  return hp;
}

export const WILDCARDS = new Set(['', '*', '0.0.0.0', '::']);

export function connectAddress(node: Node, key: string, path: string, example: string): HostPort | undefined {
  const v = get(node, key);
  if (v === undefined) return undefined;
  const text = hostPortText(v);
  const hp = text === undefined ? undefined : splitHostPort(text);
  if (hp === undefined || hp.host.includes(',') || WILDCARDS.has(hp.host)) {
    throw invalid(child(path, key), v, `host:port of an address other nodes can reach (e.g. ${example})`);
  }
  return hp;
}

export function pgListen(node: Node, path: string): PgListen {
  const v = get(node, 'listen');
  const p = child(path, 'listen');
  if (v === undefined) throw missing(p);
  const text = hostPortText(v);
  const hp = text === undefined ? undefined : splitHostPort(text);
  const hosts = hp?.host.split(',').map((h) => h.trim());
  if (hp === undefined || hosts === undefined || hosts.some((h) => h === '')) {
    throw invalid(p, v, 'host:port (e.g. 127.0.0.1:5432)');
  }
  if (hosts.includes('*') && hosts.length > 1) throw invalid(p, v, "host:port with '*' alone (e.g. *:5432)");
  return { hosts, port: hp.port, listenAddresses: hp.host };
}

/** Host part of a URL: IPv6 addresses in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** A value in a refusal message: strings quoted as in YAML (`'required'`), scalars as written. */
export function pyShown(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 60 ? `${v.slice(0, 57)}...` : v}'`;
  return shown(v);
}
