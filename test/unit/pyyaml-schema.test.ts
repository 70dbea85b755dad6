/** patroni.yml is read as PyYAML's safe_load reads it (src/config/pyyaml-schema.ts). */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { PYYAML_PARSE } from '../../src/config/pyyaml-schema.js';

describe('PYYAML_PARSE', () => {
  it('reads y/n as strings and the YAML 1.1 words as booleans, as PyYAML', () => {
    expect(parse('a: y\nb: yes\nc: off\nd: n\ne: True\nf: Y\ng: ON\nh: 017', PYYAML_PARSE)).toEqual({
      a: 'y',
      b: true,
      c: false,
      d: 'n',
      e: true,
      f: 'Y',
      g: true,
      h: 15,
    });
  });
});
