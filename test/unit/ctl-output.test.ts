/**
 * Golden tests: rebuild patronictl 3.0.2's outputs from the DCS snapshot captured at the same moment, and
 * compare byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { clusterFromNodes } from '../../src/dcs/codec.js';
import { buildMembersTable } from '../../src/ctl/list.js';
import { renderMembersTable, type ListFormat } from '../../src/render/members.js';
import { renderHistory, renderShowConfig } from '../../src/ctl/read-commands.js';
import { loadDcsSnapshot, readFixture } from '../helpers/fixtures.js';

const CAPTURES = ['etcd', 'etcd-bootstrap', 'etcd-sync', 'zookeeper', 'zookeeper-after-failovers'];

/** The captured command output without its `$ command` line and `# exit status` trailer. */
function expectedOutput(capture: string, name: string): string {
  const lines = readFixture('ctl', capture, `${name}.txt`).split('\n');
  expect(lines[0]).toMatch(/^\$ patronictl/);
  const end = lines.findIndex((l) => l.startsWith('# exit status:'));
  return lines.slice(1, end).join('\n');
}

function clusterOf(capture: string) {
  const snap = loadDcsSnapshot(`${capture}.txt`);
  return { cluster: clusterFromNodes(snap.scope, snap.nodes), scope: snap.scope };
}

function list(capture: string, format: ListFormat, extended = false): string {
  const { cluster, scope } = clusterOf(capture);
  return `${renderMembersTable(buildMembersTable(cluster, scope, { extended, format }), format)}\n`;
}

describe.each(CAPTURES)('patronictl 3.0.2 outputs rebuilt from the %s capture', (capture) => {
  it('list (pretty)', () => {
    expect(list(capture, 'pretty')).toBe(expectedOutput(capture, 'list') + '\n');
  });
  it('list -e', () => {
    expect(list(capture, 'pretty', true)).toBe(expectedOutput(capture, 'list-extended') + '\n');
  });
  it('list -f json', () => {
    expect(list(capture, 'json')).toBe(expectedOutput(capture, 'list-json') + '\n');
  });
  it('list -f yaml', () => {
    expect(list(capture, 'yaml')).toBe(expectedOutput(capture, 'list-yaml') + '\n');
  });
  it('topology', () => {
    expect(list(capture, 'topology')).toBe(expectedOutput(capture, 'topology') + '\n');
  });
  it('history', () => {
    const { cluster } = clusterOf(capture);
    expect(`${renderHistory(cluster, 'pretty')}\n`).toBe(expectedOutput(capture, 'history') + '\n');
  });
  it('show-config', () => {
    const { cluster } = clusterOf(capture);
    expect(`${renderShowConfig(cluster)}\n`).toBe(expectedOutput(capture, 'show-config') + '\n');
  });
});
