import { Parser } from '@oclif/core';
import { describe, expect, it } from 'vitest';
import EditConfig from '../../src/commands/edit-config.js';

describe('edit-config option parsing (patronictl: one value per -s/-p occurrence)', () => {
  it('leaves the cluster name after a repeatable option as the CLUSTER argument', async () => {
    const { args, flags } = await Parser.parse(
      ['-s', 'ttl=10', '-p', 'max_connections=101', '--force', 'batman'],
      { flags: EditConfig.flags, args: EditConfig.args, strict: true },
    );
    expect(args['cluster']).toBe('batman');
    expect(flags['set']).toEqual(['ttl=10']);
    expect(flags['pg']).toEqual(['max_connections=101']);
  });

  it('collects every occurrence of a repeated option', async () => {
    const { args, flags } = await Parser.parse(['batman', '-p', 'a=1', '-p', 'b=2'], {
      flags: EditConfig.flags,
      args: EditConfig.args,
      strict: true,
    });
    expect(args['cluster']).toBe('batman');
    expect(flags['pg']).toEqual(['a=1', 'b=2']);
  });
});
