// The widget bundle as `make` builds it (node web/build.mjs <outdir>): one minified IIFE whose
// gzipped size (level 9) stays within the 20 KiB budget including socket.io-client, a build
// that fails (exit 1) when the budget is exceeded, and no HTML-parsing sinks in the code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { REPO, tempDir } from '../integration/lib/server.mjs';

const BUDGET = 20 * 1024;

function build(outdir, extra = []) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, 'web', 'build.mjs'), outdir, ...extra], { cwd: REPO, timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('widget.js: a minified IIFE within 20 KiB gzipped, with no HTML sinks', async () => {
  const out = tempDir('parley-web-build-');
  const r = await build(out);
  assert.equal(r.code, 0, r.stderr);
  const file = path.join(out, 'widget.js');
  const js = fs.readFileSync(file, 'utf8');
  const gz = zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length;
  assert.ok(gz <= BUDGET, `widget.js is ${gz} bytes gzipped (budget ${BUDGET})`);
  assert.match(r.stdout, new RegExp(`widget\\.js ${js.length} bytes, ${gz} gzipped \\(budget ${BUDGET}\\)`));
  assert.match(js, /^\/\*! Parley chat widget[^\n]*\*\/\n"use strict";\(\(\)=>\{/, 'an IIFE after the licence banner');
  assert.match(js, /\}\)\(\);\n?$/);
  assert.equal(js.split('\n').length <= 3, true, 'minified');
  for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function']) {
    assert.ok(!js.includes(sink), `no ${sink}`);
  }
  assert.ok(js.includes('socket.io'), 'socket.io-client is bundled');
});

test('the build fails when widget.js grows past its budget', async () => {
  const out = tempDir('parley-web-build-');
  const r = await build(out, ['--max-gzip-bytes', '10000']);
  assert.equal(r.code, 1, `exit status (stdout: ${r.stdout})`);
  assert.match(r.stderr, /widget\.js is \d+ bytes gzipped, over its budget of 10000 bytes/);
  const bad = await build(out, ['--max-gzip-bytes', 'lots']);
  assert.equal(bad.code, 1);
  const usage = await build(out, ['a', 'b']);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /usage: node web\/build\.mjs <outdir>/);
});
