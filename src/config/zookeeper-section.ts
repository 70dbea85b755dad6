/**
 * The security settings of the `zookeeper` section, read as Patroni 4.1.4 hands them to kazoo (dcs/zookeeper.py):
 * TLS (`use_ssl` with `cacert`, `cert`, `key`, `key_password`, `verify`), `auth_data` (scheme -> credential, sent
 * after every connect) and `set_acls` (principal -> permissions: one `x509` ACL entry each, put on every znode the
 * agent creates). Used by the agent and the CLI alike, so both reach a secured ensemble with the same file.
 */
import { scalarText } from '../model/text.js';
import { parseBool } from '../model/python.js';
import { UserError } from './errors.js';
import { isMapping, type ConfigTree } from './tree.js';
import type { ZooKeeperAcl, ZooKeeperTarget, ZooKeeperTls } from '../dcs/target.js';

/** ZooKeeper's permission bits by the names `set_acls` uses (kazoo's `make_acl`; `ALL` is all five). */
export const ZK_PERMISSIONS: Readonly<Record<string, number>> = {
  READ: 1,
  WRITE: 2,
  CREATE: 4,
  DELETE: 8,
  ADMIN: 16,
  ALL: 31,
};

const TLS_FILES = ['cacert', 'cert', 'key', 'key_password'] as const;

type Security = Pick<ZooKeeperTarget, 'tls' | 'acls' | 'auth'>;

function text(s: ConfigTree, key: string, where: string): string | undefined {
  const v = s[key];
  if (v === undefined || v === null) return undefined;
  const t = scalarText(v);
  if (t === undefined) throw new UserError(`zookeeper.${key} in ${where} must be a string`);
  return t;
}

function flag(s: ConfigTree, key: string, where: string, fallback: boolean): boolean {
  const v = s[key];
  if (v === undefined || v === null) return fallback;
  const b = parseBool(v);
  if (b === undefined) throw new UserError(`zookeeper.${key} in ${where} must be true or false`);
  return b;
}

/** Permission names to bits as kazoo's `make_acl` (case-insensitive; `ALL` wins). Unknown names are refused. */
export function aclPermissions(names: readonly string[], path: string): number {
  let perms = 0;
  for (const raw of names) {
    const bit = ZK_PERMISSIONS[raw.toUpperCase()];
    if (bit === undefined) {
      throw new UserError(
        `${path}: unknown permission ${JSON.stringify(raw)}; use ${Object.keys(ZK_PERMISSIONS).join(', ')}`,
      );
    }
    perms |= bit;
  }
  return perms;
}

/** `set_acls`: `{principal: [permission, ...]}`, each principal an x509 identity (the client certificate's DN). */
export function parseSetAcls(value: unknown, where: string): ZooKeeperAcl[] {
  if (value === undefined || value === null) return [];
  if (!isMapping(value)) {
    throw new UserError(
      `zookeeper.set_acls in ${where} must be a mapping of principal to a list of permissions, e.g. {'CN=patroni': [ALL]}`,
    );
  }
  return Object.entries(value).map(([principal, perms]) => {
    const path = `zookeeper.set_acls.${principal} in ${where}`;
    if (!Array.isArray(perms) || perms.some((p) => typeof p !== 'string')) {
      throw new UserError(
        `${path} must be a list of permissions (${Object.keys(ZK_PERMISSIONS).join(', ')}), e.g. [READ, WRITE]`,
      );
    }
    return { scheme: 'x509', id: principal, perms: aclPermissions(perms as string[], path) };
  });
}

/** `auth_data`: `{scheme: credential}`, e.g. `{digest: 'user:password'}`, sent in this order. */
export function parseAuthData(
  value: unknown,
  where: string,
): { readonly scheme: string; readonly credential: string }[] {
  if (value === undefined || value === null) return [];
  if (!isMapping(value)) {
    throw new UserError(
      `zookeeper.auth_data in ${where} must be a mapping of scheme to credential, e.g. {digest: 'user:password'}`,
    );
  }
  return Object.entries(value).map(([scheme, credential]) => {
    const c = scalarText(credential);
    if (c === undefined || credential === null) {
      throw new UserError(`zookeeper.auth_data.${scheme} in ${where} must be a string`);
    }
    return { scheme, credential: c };
  });
}

/**
 * `zookeeper.use_ssl` as text that reads false. Patroni hands the value to kazoo as it is, so any non-empty text turns
 * TLS on, `'false'` included, and PATRONI_ZOOKEEPER_USE_SSL is always text (its config.py does not read that variable
 * as a boolean, unlike PATRONI_ZOOKEEPER_VERIFY). Refused rather than read either way; text that reads true is TLS
 * on for both, other text is refused as unreadable.
 */
export function useSslProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || parseBool(value) !== false) return undefined;
  return (
    `zookeeper.use_ssl: ${JSON.stringify(value)} is not a boolean but text, which Patroni would take as TLS on ` +
    '(PATRONI_ZOOKEEPER_USE_SSL is read as text); set use_ssl: true or false in the configuration file, and unset ' +
    'PATRONI_ZOOKEEPER_USE_SSL'
  );
}

function parseTls(s: ConfigTree, where: string): ZooKeeperTls | undefined {
  const problem = useSslProblem(s['use_ssl']);
  if (problem !== undefined) throw new UserError(problem);
  if (!flag(s, 'use_ssl', where, false)) return undefined;
  const cert = text(s, 'cert', where);
  const key = text(s, 'key', where);
  // kazoo presents a client certificate only when it has both; one alone would silently not be used.
  if ((cert === undefined) !== (key === undefined)) {
    throw new UserError(
      `zookeeper.${cert === undefined ? 'key' : 'cert'} in ${where} needs zookeeper.${cert === undefined ? 'cert' : 'key'} too (the client certificate and its key go together)`,
    );
  }
  const cacert = text(s, 'cacert', where);
  const keyPassword = text(s, 'key_password', where);
  if (keyPassword !== undefined && key === undefined) {
    throw new UserError(
      `zookeeper.key_password in ${where} needs zookeeper.cert and zookeeper.key (it unlocks the client key)`,
    );
  }
  return {
    verify: flag(s, 'verify', where, true),
    ...(cacert !== undefined ? { cacert } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(keyPassword !== undefined ? { keyPassword } : {}),
  };
}

/** The TLS, authentication and ACL settings of a `zookeeper` section; keys that are not set are left out. */
export function zookeeperSecurity(s: ConfigTree, where: string): Security {
  const tls = parseTls(s, where);
  const acls = parseSetAcls(s['set_acls'], where);
  const auth = parseAuthData(s['auth_data'], where);
  return {
    ...(tls ? { tls } : {}),
    ...(acls.length > 0 ? { acls } : {}),
    ...(auth.length > 0 ? { auth } : {}),
  };
}

/** Settings Patroni reads but does not use in this combination (TLS files without `use_ssl: true`). */
export function zookeeperWarnings(tree: ConfigTree): string[] {
  const s = tree['zookeeper'];
  if (!isMapping(s) || parseBool(s['use_ssl'] ?? false) === true) return [];
  return [...TLS_FILES, 'verify']
    .filter((k) => s[k] !== undefined && s[k] !== null)
    .map((k) => `zookeeper.${k}: ignored without zookeeper.use_ssl: true (as in Patroni)`);
}
