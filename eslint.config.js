// Type-aware linting: a dropped promise in a daemon is a split-brain bug.
import { join } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers from './eslint-rules/layers.js';

const SRC = join(import.meta.dirname, 'src');

/**
 * The layers of docs/architecture.md: the folders (or single modules) of src/ each may import besides its own.
 * commands -> ctl -> render / dcs / api client -> model; agent -> ha / api / postgres / dcs -> model; config for
 * commands, ctl and agent. A key naming a module adds to its folder's list.
 */
const LAYERS = {
  cli: ['commands'],
  commands: ['ctl', 'render', 'prompts', 'config', 'dcs', 'model', 'agent/main'],
  ctl: ['render', 'prompts', 'dcs', 'api/client', 'config', 'model'],
  render: ['model'],
  prompts: ['config/errors'],
  agent: ['ha', 'api', 'postgres', 'dcs', 'config', 'model'],
  ha: ['model'],
  // The loop executes decisions through the Dcs interface (an interface and its error class, no I/O of its own).
  // and reads refused dynamic settings the safe way through the key registry (pure classification, no I/O).
  'ha/loop': ['dcs/dcs', 'config/config-check'],
  // The loop split in three: its ports name the Dcs interface, its action executor calls it and tells its error
  // class apart (loop.ts extends the executor).
  'ha/loop-ports': ['dcs/dcs'],
  'ha/loop-actions': ['dcs/dcs'],
  // The cycle's DCS time budget wraps the same interface.
  'ha/dcs-budget': ['dcs/dcs'],
  api: ['model'],
  // PostgreSQL control reads its own sections of the configuration (types and parsed values, no I/O).
  postgres: ['config', 'model'],
  dcs: ['model'],
  config: ['model', 'dcs/target'],
  model: [],
};

/** Modules that do I/O (or load a driver that does): the functional core imports none of them. */
const NODE_IO = [
  'fs',
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'dns',
  'child_process',
  'cluster',
  'worker_threads',
];
const IO_MODULES = [
  ...NODE_IO,
  ...NODE_IO.map((m) => `node:${m}`),
  'pg',
  'node-zookeeper-client',
  '@inquirer/prompts',
  'koffi',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.scratch/**', '.bench/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Interface methods are async so that a failure always rejects instead of throwing synchronously.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A new Action (or any union member) must be handled wherever the union is switched on; a `default` does
      // not count as handling it.
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: false },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { layers },
    rules: {
      'layers/allowed-imports': [
        'error',
        { srcDir: SRC, layers: LAYERS, forbiddenModules: { ha: IO_MODULES, model: IO_MODULES } },
      ],
      'layers/no-cycles': ['error', { srcDir: SRC }],
      // Small enough to read whole (docs/architecture.md): a function of more than 120 lines of code, or a module of
      // more than 700, is split by concern. Comments and blank lines do not count: explaining why is never the
      // reason to split.
      'max-lines-per-function': ['error', { max: 120, skipBlankLines: true, skipComments: true }],
      'max-lines': ['error', { max: 700, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: ['bin/**/*.js', 'scripts/**/*.mjs', 'eslint.config.js', 'eslint-rules/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly' },
    },
  },
);
