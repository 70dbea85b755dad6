// What the published package carries besides the bundle, so that it installs with no dependencies at all:
// - dist/vendor/koffi: koffi's prebuilt Node-API binary for glibc Linux on x64 and arm64 (the watchdog's ioctl,
//   src/agent/watchdog/linux.ts). npm installs only the host's platform package, so the other one comes from the
//   registry (`npm pack`, npm's cache first), checked against package-lock.json's integrity, kept in .cache/.
// - dist/THIRD_PARTY_LICENSES: the licence of every package whose code is in the bundle (esbuild's metafile) or
//   in dist/vendor.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

/** The platforms whose koffi binary the package carries: `dist/vendor/koffi/<dir>/koffi.node`. */
export const KOFFI_TARGETS = [
  { pkg: '@koromix/koffi-linux-x64', dir: 'linux_x64' },
  { pkg: '@koromix/koffi-linux-arm64', dir: 'linux_arm64' },
];

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/** The package tarball of `name@version` from the registry (or npm's cache), checked against the lockfile. */
function fetchVerified(root, name, version, into) {
  const lock = readJson(join(root, 'package-lock.json')).packages?.[`node_modules/${name}`];
  if (lock?.version !== version || !lock.integrity?.startsWith('sha512-')) {
    throw new Error(`package-lock.json has no sha512 integrity for ${name}@${version}`);
  }
  mkdirSync(into, { recursive: true });
  const out = execFileSync(
    'npm',
    [
      'pack',
      `${name}@${version}`,
      '--prefer-offline',
      '--ignore-scripts',
      // Under `npm pack --dry-run` (whose prepack runs this) npm_config_dry_run is set in the environment.
      '--dry-run=false',
      '--json',
      '--pack-destination',
      into,
    ],
    { cwd: into, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const tgz = join(into, JSON.parse(out)[0].filename);
  const digest = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
  if (digest !== lock.integrity) throw new Error(`${tgz}: integrity ${digest} is not the lockfile's`);
  execFileSync('tar', ['-xzf', tgz, '-C', into]);
  rmSync(tgz);
  return join(into, 'package');
}

/**
 * Copies koffi's binaries into `dist/vendor/koffi`. A missing one is an error when `strict` (the package's build),
 * else a warning: a development build offline still runs on the host.
 */
export function vendorKoffi(root, dist, { strict }) {
  const koffi = readJson(join(root, 'node_modules', 'koffi', 'package.json'));
  const out = join(dist, 'vendor', 'koffi');
  const shipped = [];
  for (const { pkg, dir } of KOFFI_TARGETS) {
    let from = join(root, 'node_modules', pkg);
    try {
      if (!existsSync(join(from, 'package.json'))) {
        const cached = join(root, '.cache', 'vendor', `${pkg.replace('/', '+')}@${koffi.version}`);
        from = existsSync(join(cached, 'package', 'package.json'))
          ? join(cached, 'package')
          : fetchVerified(root, pkg, koffi.version, cached);
      }
      const version = readJson(join(from, 'package.json')).version;
      if (version !== koffi.version) throw new Error(`${pkg} is ${version}, koffi is ${koffi.version}`);
      mkdirSync(join(out, dir), { recursive: true });
      copyFileSync(join(from, dir, 'koffi.node'), join(out, dir, 'koffi.node'));
      shipped.push(dir);
    } catch (e) {
      const line = `koffi binary ${dir} (${pkg}@${koffi.version}) not vendored: ${e.message}`;
      if (strict) throw new Error(line);
      process.stderr.write(`build: WARNING ${line}\n`);
    }
  }
  return { name: 'koffi', version: koffi.version, shipped };
}

const LICENCE_FILE = /^(licen[cs]e|copying)([-.][\w.-]+)?$/i;

/** The README's licence section (some packages, e.g. pg-types and pgpass, have no licence file). */
function readmeLicence(dir) {
  const readme = readdirSync(dir).find((f) => /^readme(\.md)?$/i.test(f));
  if (!readme) return undefined;
  const lines = readFileSync(join(dir, readme), 'utf8').split('\n');
  const at = lines.findIndex((l) => /^#+\s*licen[cs]e\b/i.test(l));
  if (at < 0) return undefined;
  const level = /^#+/.exec(lines[at])[0].length;
  const end = lines.findIndex((l, i) => i > at && /^#+\s/.test(l) && /^#+/.exec(l)[0].length <= level);
  const text = lines
    .slice(at + 1, end < 0 ? undefined : end)
    .join('\n')
    .trim();
  return text ? `(from the package's ${readme})\n${text}` : undefined;
}

function licenceOf(dir) {
  const pkg = readJson(join(dir, 'package.json'));
  const file = readdirSync(dir).find((f) => LICENCE_FILE.test(f));
  const text = file ? readFileSync(join(dir, file), 'utf8').trim() : readmeLicence(dir);
  const license = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type;
  if (!license && !text) throw new Error(`${dir}: no licence (package.json or file)`);
  return { name: pkg.name, version: pkg.version, license: license ?? 'see text', text };
}

/** The package directories (`.../node_modules/name` or `@scope/name`) of the bundle's inputs. */
export function bundledPackageDirs(root, metafile) {
  const dirs = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const parts = input.split(/[\\/]/);
    const at = parts.lastIndexOf('node_modules');
    if (at < 0) continue;
    const len = parts[at + 1]?.startsWith('@') ? 3 : 2;
    dirs.add(join(root, ...parts.slice(0, at + len)));
  }
  return [...dirs];
}

/** Writes dist/THIRD_PARTY_LICENSES for the bundle's packages and koffi (with node-addon-api, compiled into it). */
export function writeLicences(root, dist, metafile, vendored) {
  const entries = bundledPackageDirs(root, metafile).map(licenceOf);
  const koffiDir = join(root, 'node_modules', 'koffi');
  const koffi = licenceOf(koffiDir);
  entries.push({ ...koffi, note: `dist/vendor/koffi: ${vendored.shipped.join(', ')}` });
  const addon = join(koffiDir, 'vendor', 'node-addon-api');
  entries.push({
    name: 'node-addon-api',
    version: '',
    note: 'compiled into koffi.node',
    license: 'MIT',
    text: readFileSync(join(addon, 'LICENSE.md'), 'utf8').trim(),
  });
  const seen = new Set();
  const unique = entries
    .filter((e) => {
      const key = `${e.name}@${e.version}`;
      return seen.has(key) ? false : (seen.add(key), true);
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const blocks = unique.map(({ name, version, license, text, note }) =>
    [
      `${name}${version ? `@${version}` : ''}  (${license})${note ? `  [${note}]` : ''}`,
      '',
      text ?? `(the package ships no licence text; its package.json says ${license})`,
    ].join('\n'),
  );
  const head =
    'pgwarden bundles code of the following packages (dist/*.js, dist/chunks) and ships koffi’s prebuilt binaries ' +
    '(dist/vendor/koffi).\nTheir licences follow.';
  writeFileSync(
    join(dist, 'THIRD_PARTY_LICENSES'),
    `${head}\n\n${blocks.join(`\n\n${'-'.repeat(78)}\n\n`)}\n`,
  );
  return unique.map((e) => e.name);
}

/** Whether this build is for the package itself: `npm pack` and `npm publish` run `prepack`, which says so. */
export const packing = () => process.argv.includes('--package');
