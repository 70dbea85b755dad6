/**
 * test/fixtures/patroni-4.1.4-config-keys.json is what scripts/patroni-config-keys.py reads from the real Patroni
 * 4.1.4 (its validator's schema and the PATRONI_* variables its Config reads), so that the unit tests that walk it
 * (test/unit/config-registry.test.ts) walk Patroni's own keys. Regenerate it with:
 *   /usr/bin/python3 scripts/patroni-config-keys.py ../shared/reference/patroni-4.1.4 > test/fixtures/patroni-4.1.4-config-keys.json
 * Needs /usr/bin/python3 with Debian's patroni package (its dependencies) and ../shared/reference/patroni-4.1.4.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/fixtures.js';

const PATRONI_414 = resolve(REPO_ROOT, '..', 'shared', 'reference', 'patroni-4.1.4');

describe('the Patroni 4.1.4 configuration keys fixture', () => {
  it('is what the extraction script reads from the real Patroni 4.1.4', async () => {
    const { stdout } = await promisify(execFile)(
      '/usr/bin/python3',
      [join(REPO_ROOT, 'scripts', 'patroni-config-keys.py'), PATRONI_414],
      { timeout: 60_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } },
    );
    const fresh = JSON.parse(stdout) as Record<string, unknown>;
    expect(fresh['source']).toBe('patroni 4.1.4');
    const fixture = JSON.parse(
      readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'patroni-4.1.4-config-keys.json'), 'utf8'),
    ) as unknown;
    expect(fixture, 'the fixture is stale: regenerate it (see the header of this file)').toEqual(fresh);
  });
});
