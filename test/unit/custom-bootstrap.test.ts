/**
 * A custom bootstrap method (Patroni's `_custom_bootstrap`): the argv, the recovery settings written for the replay,
 * hot_standby during it, the trust pg_hba lines, the signal files and `_post_restore`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  customBootstrapArgv,
  customRecoveryLines,
  hotStandbyOff,
  postRestore,
  trustHbaLines,
  writeRecoverySignals,
} from '../../src/postgres/custom-bootstrap.js';

const dir = mkdtempSync(join(tmpdir(), 'pgwarden-cb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('custom bootstrap: argv', () => {
  it('splits the command, adds --scope and --datadir, then the other keys as --key=value', () => {
    expect(
      customBootstrapArgv(
        {
          command: 'python3 restore.py --sourcedir="/b a/k"',
          'test-argument': 'test-value',
          keep_existing_recovery_conf: true,
          recovery_conf: { restore_command: 'cp x y' },
          flag: false,
          n: 3,
        },
        { scope: 'batman2', dataDir: '/data/pg' },
      ),
    ).toEqual([
      'python3',
      'restore.py',
      '--sourcedir=/b a/k',
      '--scope=batman2',
      '--datadir=/data/pg',
      '--test-argument=test-value',
      '--flag=False',
      '--n=3',
    ]);
  });

  it('no_params leaves out scope and datadir; scope/datadir keys of the section are never passed twice', () => {
    expect(
      customBootstrapArgv(
        { command: 'restore', no_params: true, scope: 'x', datadir: 'y', extra: 'z' },
        { scope: 's', dataDir: '/d' },
      ),
    ).toEqual(['restore', '--extra=z']);
  });
});

describe('custom bootstrap: the replay', () => {
  it('writes the recovery_conf sorted, pause_at_recovery_target as the action it means, no standby_mode', () => {
    expect(
      customRecoveryLines({
        restore_command: 'cp /a/%f %p',
        standby_mode: 'off',
        pause_at_recovery_target: false,
        recovery_target_timeline: 'latest',
        recovery_target_name: null,
      }),
    ).toEqual([
      ['recovery_target_action', 'promote'],
      ['recovery_target_timeline', 'latest'],
      ['restore_command', 'cp /a/%f %p'],
    ]);
  });

  it('turns hot_standby off when the recovery ends in a promotion or the restore settings are kept', () => {
    const start = (recoveryParams: Record<string, unknown> | undefined, keep = false) => ({
      recoveryParams,
      keepExistingRecovery: keep,
      trustHba: [],
    });
    expect(hotStandbyOff(start({ recovery_target_action: 'promote' }))).toBe(true);
    expect(hotStandbyOff(start({ pause_at_recovery_target: 'false' }))).toBe(true);
    expect(hotStandbyOff(start({ restore_command: 'x' }))).toBe(false); // PostgreSQL's default action: pause
    expect(hotStandbyOff(start(undefined))).toBe(false);
    expect(hotStandbyOff(start(undefined, true))).toBe(true);
  });

  it('trusts only the superuser and the replication user, from the socket and the resolved address', async () => {
    expect(await trustHbaLines({ host: '127.0.0.1', superuser: 'postgres', replication: 'rep' })).toEqual([
      'local\treplication\trep\t\ttrust',
      'local\tall\tpostgres\t\ttrust',
      'host\treplication\trep\t127.0.0.1/32\ttrust',
      'host\tall\tpostgres\t127.0.0.1/32\ttrust',
    ]);
    expect(await trustHbaLines({ host: '/run/pg', superuser: undefined, replication: 'rep' })).toEqual([
      'local\treplication\trep\t\ttrust',
      'local\tall\tall\t\ttrust',
    ]);
  });

  it('recovery_conf: recovery.signal, or standby.signal with standby_mode; without it the restore signals go', () => {
    const data = join(dir, 'signals');
    mkdirSync(data);
    writeFileSync(join(data, 'standby.signal'), '');
    writeRecoverySignals(data, { command: 'x', recovery_conf: { restore_command: 'y' } });
    expect([existsSync(join(data, 'recovery.signal')), existsSync(join(data, 'standby.signal'))]).toEqual([
      true,
      false,
    ]);
    writeRecoverySignals(data, { command: 'x', recovery_conf: { standby_mode: 'on' } });
    expect([existsSync(join(data, 'recovery.signal')), existsSync(join(data, 'standby.signal'))]).toEqual([
      false,
      true,
    ]);
    writeRecoverySignals(data, { command: 'x', keep_existing_recovery_conf: true });
    expect(existsSync(join(data, 'standby.signal'))).toBe(true);
    writeFileSync(join(data, 'recovery.conf'), '');
    writeRecoverySignals(data, { command: 'x' });
    expect(
      ['recovery.conf', 'standby.signal', 'recovery.signal'].map((f) => existsSync(join(data, f))),
    ).toEqual([false, false, false]);
  });

  it('post-restore: missing configuration files come back from .backup copies; the promote trigger goes', () => {
    const data = join(dir, 'restore');
    const conf = join(dir, 'restore-conf');
    mkdirSync(data);
    mkdirSync(conf);
    writeFileSync(join(data, 'pg_hba.conf.backup'), 'host all all 0.0.0.0/0 md5\n');
    writeFileSync(join(data, 'postgresql.conf.backup'), 'backup\n');
    writeFileSync(join(conf, 'postgresql.conf'), 'present\n');
    writeFileSync(join(data, 'promote'), '');
    postRestore({
      dataDir: data,
      configDir: conf,
      files: ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf'],
      triggerFile: undefined,
    });
    expect(readFileSync(join(conf, 'pg_hba.conf'), 'utf8')).toBe('host all all 0.0.0.0/0 md5\n');
    expect(readFileSync(join(conf, 'postgresql.conf'), 'utf8')).toBe('present\n');
    expect(readFileSync(join(conf, 'pg_ident.conf'), 'utf8')).toBe('');
    expect(existsSync(join(data, 'promote'))).toBe(false);
  });
});
