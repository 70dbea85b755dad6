/**
 * How PyYAML's `safe_load` (Patroni's reader) resolves plain scalars, where it differs from the `yaml` package's
 * YAML 1.1 schema: `y`, `Y`, `n`, `N` are strings, not booleans (`password: y` is the password "y").
 */
import type { ParseOptions, DocumentOptions, SchemaOptions, ScalarTag, Tags } from 'yaml';

const PY_BOOL_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const PY_BOOL_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;

function pyBoolTags(tags: Tags): Tags {
  return tags.map((t) => {
    if (typeof t !== 'object' || ('collection' in t && t.collection)) return t;
    const scalar: ScalarTag = t;
    if (scalar.tag !== 'tag:yaml.org,2002:bool') return t;
    const isTrue = scalar.test?.test('true') === true;
    return { ...scalar, test: isTrue ? PY_BOOL_TRUE : PY_BOOL_FALSE };
  });
}

/** Options for `parse()` of a patroni.yml or a `PATRONI_*` value, as PyYAML reads them. */
export const PYYAML_PARSE: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.1',
  customTags: pyBoolTags,
};
