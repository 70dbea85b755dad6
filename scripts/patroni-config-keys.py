#!/usr/bin/python3
"""Lists the configuration keys a Patroni source tree knows, as JSON, for test/fixtures/patroni-4.1.4-config-keys.json.

Usage: /usr/bin/python3 scripts/patroni-config-keys.py PATRONI_SOURCE_DIR > test/fixtures/patroni-4.1.4-config-keys.json

- "schema": every dotted path of patroni/validator.py's `schema` (the keys of `patroni --validate-config`), lists
  of mappings as `path.*.key`.
- "env": the PATRONI_* variables `Config._build_environment_configuration` reads by name (found by running it on an
  environment that records every lookup), each with the dotted paths it sets when it is alone and set to '1'.
- "envDcsSuffixes": the suffixes it accepts in PATRONI_<SECTION>_<SUFFIX> for any section (read from its source);
  "envDcs": the same mapping for each of them under the DCS sections and citus.
"""
import ast
import inspect
import json
import os
import sys
import textwrap


def schema_paths(validator_module):
    Optional, Or, AtMostOne, Case = (validator_module.Optional, validator_module.Or,
                                     validator_module.AtMostOne, validator_module.Case)
    paths = set()

    def walk(node, prefix):
        if isinstance(node, validator_module.Schema):
            node = node.validator
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, Optional):
                    names, per_name = [key.name], None
                elif isinstance(key, (Or, AtMostOne)):
                    names = list(key.args)
                    per_name = value._schema if isinstance(value, Case) else None
                else:
                    names, per_name = [key], None
                for name in names:
                    path = prefix + [name]
                    paths.add('.'.join(path))
                    walk(per_name[name] if per_name is not None else value, path)
        elif isinstance(node, list) and node and isinstance(node[0], dict):
            walk(node[0], prefix + ['*'])

    walk(validator_module.schema, [])
    return sorted(paths)


class RecordingEnviron(dict):
    """os.environ stand-in: remembers every name looked up."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def pop(self, key, *default):
        self.seen.add(key)
        return super().pop(key, *default)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)


def env_names(config_module):
    recorder = RecordingEnviron()
    saved = os.environ
    os.environ = recorder
    try:
        config_module.Config._build_environment_configuration()
    finally:
        os.environ = saved
    return sorted(n for n in recorder.seen if n.startswith('PATRONI_'))


def leaf_paths(tree, prefix=''):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaf_paths(value, prefix + str(key) + '.')
    else:
        yield prefix[:-1]


def env_paths(config_module, names):
    """Where Patroni puts each variable, set alone to '1' (a value every parser accepts)."""
    saved = os.environ
    out = {}
    try:
        for name in names:
            os.environ = {name: '1'}
            out[name] = sorted(p for p in leaf_paths(config_module.Config._build_environment_configuration()) if p)
    finally:
        os.environ = saved
    return out


def dcs_suffixes(config_module):
    source = inspect.getsource(config_module.Config._build_environment_configuration)
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == 'suffix'
                and isinstance(node.comparators[0], ast.Tuple)):
            return sorted(e.value for e in node.comparators[0].elts if isinstance(e, ast.Constant))
    raise SystemExit('the DCS suffix list was not found in _build_environment_configuration')


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    sys.path.insert(0, os.path.abspath(sys.argv[1]))
    import patroni.validator as validator_module
    import patroni.config as config_module
    suffixes = dcs_suffixes(config_module)
    names = env_names(config_module)
    sections = ('ETCD3', 'ZOOKEEPER', 'ETCD', 'CONSUL', 'KUBERNETES', 'EXHIBITOR', 'CITUS')
    dcs_names = ['PATRONI_{0}_{1}'.format(s, x) for s in sections for x in suffixes]
    out = {
        'source': 'patroni ' + __import__('patroni.version').version.__version__,
        'schema': schema_paths(validator_module),
        'env': env_paths(config_module, names),
        'envDcsSuffixes': suffixes,
        'envDcs': env_paths(config_module, dcs_names),
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
