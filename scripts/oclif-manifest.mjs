// Writes oclif.manifest.json beside package.json: the command table (ids, flags, arguments, help texts) that oclif
// otherwise builds from the command classes at every start. Made from the built bundle, after each build, so it
// always describes dist/cli.cjs; oclif reads it only when its version is package.json's.
import { writeFileSync } from 'node:fs';
import { loadCli } from '../bin/load-cli.js';

const { Config } = loadCli({ cache: false }).exports;
const config = await Config.load({ root: process.cwd() });
const plugin = config.plugins.get(config.pjson.name);
if (!plugin || plugin.hasManifest) throw new Error('oclif-manifest: delete oclif.manifest.json first');
// The bundle's oclif sorts command ids by code unit instead of localeCompare (build.mjs): the same order here?
const ids = Object.keys(plugin.manifest.commands);
const byCodeUnit = [...ids].sort().join(' ');
if ([...ids].sort((a, b) => a.localeCompare(b)).join(' ') !== byCodeUnit)
  throw new Error(`oclif-manifest: command ids sort differently by code unit and by locale: ${byCodeUnit}`);
writeFileSync('oclif.manifest.json', `${JSON.stringify(plugin.manifest)}\n`);
