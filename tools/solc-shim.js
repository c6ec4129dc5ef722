#!/usr/bin/env node
// A tiny `solc` command-line stand-in over solcjs (the official compiler built to
// WebAssembly), so that ape-solidity (through py-solc-x) and forge compile offline.
// It answers the two calls those tools make: `--version` and `--standard-json`.
'use strict';
const fs = require('fs');
const path = require('path');

let solc;
try {
  solc = require('solc');
} catch (err) {
  process.stderr.write(
    'ascendnet solc shim: the npm package "solc" is missing. Run `make setup` (npm ci) first.\n');
  process.exit(2);
}

const args = process.argv.slice(2);
const version = solc.version(); // e.g. 0.8.28+commit.7893614a.Emscripten.clang

if (args.includes('--version') || args.includes('-v')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + version + '\n');
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write('ascendnet solc shim supports only --version and --standard-json (got: ' + args.join(' ') + ')\n');
  process.exit(2);
}

// Roots that imports may be read from: --base-path, every --include-path and
// --allow-paths entry, and the working directory.
const roots = [process.cwd()];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const take = (v) => v.split(',').filter(Boolean).forEach((p) => roots.push(path.resolve(p)));
  if (a === '--base-path' || a === '--include-path' || a === '--allow-paths') {
    if (args[i + 1]) take(args[++i]);
  } else if (a.startsWith('--base-path=') || a.startsWith('--include-path=') || a.startsWith('--allow-paths=')) {
    take(a.slice(a.indexOf('=') + 1));
  }
}

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.join(r, importPath));
  for (const c of candidates) {
    try {
      return { contents: fs.readFileSync(c, 'utf8') };
    } catch (_) { /* try the next root */ }
  }
  return { error: 'File not found: ' + importPath + ' (searched ' + roots.join(', ') + ')' };
}

const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
