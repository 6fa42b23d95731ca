// Builds dist/: `tsc` (ESM modules and .d.ts, the npm package) and one bundled ESM file,
// dist/clarity.js, that the server embeds and serves to the dashboard as /dashboard/clarity.js
// (so the dashboard runs this SDK, not a copy).
//
//   node scripts/build.mjs          write dist/
//   node scripts/build.mjs --check  build into a temporary folder and exit 1 when dist/
//                                   differs (dist/ is committed: the server's include_str!
//                                   reads it, and cargo does not run npm)
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join, dirname, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const out = check ? await mkdtemp(join(tmpdir(), 'clarity-dist-')) : join(pkg, 'dist');

if (!check) await rm(out, { recursive: true, force: true });
execFileSync(join(pkg, 'node_modules/.bin/tsc'), ['-p', join(pkg, 'tsconfig.json'), '--outDir', out], {
  stdio: 'inherit',
});
await build({
  // From the sources, relative to the package: the bundle's `// src/...` comments are then the
  // same wherever it is built.
  absWorkingDir: pkg,
  entryPoints: ['src/index.ts'],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'neutral',
  legalComments: 'none',
  banner: { js: '// @clarity/client, bundled by clients/js/scripts/build.mjs; do not edit: run `npm run build` in clients/js.' },
  outfile: join(out, 'clarity.js'),
  logLevel: 'warning',
});

async function files(dir) {
  const found = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) found.push(relative(dir, join(e.parentPath, e.name)));
  }
  return found.sort();
}

if (check) {
  const dist = join(pkg, 'dist');
  const want = await files(out);
  const have = await files(dist).catch(() => []);
  const differ = [];
  for (const f of new Set([...want, ...have])) {
    const a = await readFile(join(out, f), 'utf8').catch(() => null);
    const b = await readFile(join(dist, f), 'utf8').catch(() => null);
    if (a !== b) differ.push(f);
  }
  await rm(out, { recursive: true, force: true });
  if (differ.length) {
    console.error(`dist/ is not what \`npm run build\` gives (${differ.join(', ')}): run \`npm run build\` in clients/js and commit dist/`);
    process.exit(1);
  }
  console.log(`dist/ is current (${want.length} files)`);
}
