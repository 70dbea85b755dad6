/**
 * Machine-readable outputs shaped like patronictl's: YAML as PyYAML's `safe_dump` writes it (sorted keys, block
 * style, YAML 1.1 quoting), JSON as Python's `json.dumps`, and TSV.
 */
import { Document, visit, type ScalarTag, type Tags } from 'yaml';
import { pyJson } from '../model/pyjson.js';

// PyYAML's implicit resolvers, where they differ from the `yaml` package's 1.1 schema: `y`/`n` are plain
// strings, and a float needs digits around its dot and a signed exponent.
const PY_BOOL_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const PY_BOOL_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
const PY_FLOAT = /^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?)$/;

function pyYamlTags(tags: Tags): Tags {
  return tags.map((t) => {
    if (typeof t !== 'object' || ('collection' in t && t.collection)) return t;
    const scalar: ScalarTag = t;
    if (scalar.tag === 'tag:yaml.org,2002:bool') {
      const isTrue = scalar.test?.test('true') === true;
      return { ...scalar, test: isTrue ? PY_BOOL_TRUE : PY_BOOL_FALSE };
    }
    if (scalar.tag === 'tag:yaml.org,2002:float' && scalar.test && !scalar.test.test('.inf')) {
      return { ...scalar, test: PY_FLOAT };
    }
    return t;
  });
}

/** `yaml.safe_dump(value, default_flow_style=False, allow_unicode=True, width=200)` (PyYAML's default width: 80). */
export function pyYaml(value: unknown, options: { readonly width?: number } = {}): string {
  const doc = new Document(value, { version: '1.1', customTags: pyYamlTags, sortMapEntries: true });
  visit(doc, {
    Scalar(_key, node) {
      // PyYAML folds multi-line strings into single quotes rather than using a block literal.
      if (typeof node.value === 'string' && node.value.includes('\n')) node.type = 'QUOTE_SINGLE';
    },
  });
  return doc.toString({
    indentSeq: false,
    singleQuote: true,
    lineWidth: options.width ?? 200,
    minContentWidth: 0,
  });
}

/** The same in flow style on one line (`{mytag: hello}`), as patronictl prints tags in tsv and topology. */
export function pyYamlFlow(value: unknown): string {
  const doc = new Document(value, { version: '1.1', customTags: pyYamlTags, sortMapEntries: true });
  visit(doc, {
    Map(_k, node) {
      node.flow = true;
    },
    Seq(_k, node) {
      node.flow = true;
    },
  });
  return doc.toString({ singleQuote: true, lineWidth: 0, flowCollectionPadding: false }).trimEnd();
}

export type Cell = string | number | bigint | boolean | null | undefined | Readonly<Record<string, unknown>>;
export type Row = Readonly<Record<string, Cell>>;

/**
 * patronictl's json/yaml: a list of `{column: value}` objects, keys in column order. Tables with a title (the
 * member list) leave empty cells out; others (history) keep them.
 */
function rowsAsObjects(
  columns: readonly string[],
  rows: readonly Row[],
  keepEmpty: boolean,
): Record<string, unknown>[] {
  return rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const c of columns) {
      const v = row[c] ?? '';
      if (v === '' && !keepEmpty) continue;
      out[c] = v;
    }
    return out;
  });
}

export function renderJsonRows(columns: readonly string[], rows: readonly Row[], keepEmpty = false): string {
  return pyJson(rowsAsObjects(columns, rows, keepEmpty));
}

export function renderYamlRows(columns: readonly string[], rows: readonly Row[], keepEmpty = false): string {
  return pyYaml(rowsAsObjects(columns, rows, keepEmpty).map((r) => bigintsToNumbers(r)));
}

/** A header line (left out when `columns` is undefined) and one line per row, cells joined by `delimiter`. */
export function renderTsvRows(
  columns: readonly string[] | undefined,
  rows: readonly (readonly string[])[],
  delimiter = '\t',
): string {
  return [...(columns ? [columns] : []), ...rows].map((r) => r.join(delimiter)).join('\n');
}

function bigintsToNumbers(v: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'bigint' ? Number(x) : x]));
}
