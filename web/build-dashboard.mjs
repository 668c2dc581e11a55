#!/usr/bin/env node
// Builds the agent dashboard the server serves at /app/:
//   node web/build-dashboard.mjs <outdir>
// writes <outdir>/app/app.js (web/dashboard/main.ts bundled with socket.io-client into one
// minified IIFE for ES2020 browsers), <outdir>/app/app.css (minified) and
// <outdir>/app/index.html (with ?v=<content hash> on both, so a new build is never mixed with a
// cached old one: the server caches assets for 5 minutes, HTML not at all). Fails when app.js
// gzipped is over its budget (100 KiB). web/build.mjs calls buildDashboard(outdir).
import * as esbuild from 'esbuild';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const WEB = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.join(WEB, 'dashboard');
export const DASHBOARD_MAX_GZIP = 100 * 1024;

const gzip = (buf) => zlib.gzipSync(buf, { level: 9 }).length;

// → {dir, js: {bytes, gzip}, css: {bytes, gzip}}; throws on a build error or over budget.
export async function buildDashboard(outdir, { maxGzip = DASHBOARD_MAX_GZIP } = {}) {
  const dir = path.join(outdir, 'app');
  fs.mkdirSync(dir, { recursive: true });
  const js = await esbuild.build({
    entryPoints: [path.join(SRC, 'main.ts')],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2020',
    platform: 'browser',
    write: false,
    legalComments: 'none',
    banner: { js: '/*! Parley dashboard. Includes socket.io-client (MIT License). */' },
    logLevel: 'warning',
  });
  const jsCode = Buffer.from(js.outputFiles[0].contents);
  const css = await esbuild.transform(fs.readFileSync(path.join(SRC, 'app.css'), 'utf8'), {
    loader: 'css',
    minify: true,
    target: 'chrome111',
  });
  const cssCode = Buffer.from(css.code);
  const version = crypto.createHash('sha256').update(jsCode).update(cssCode).digest('hex').slice(0, 12);
  const html = fs.readFileSync(path.join(SRC, 'index.html'), 'utf8').replaceAll('__VERSION__', version);

  const jsGzip = gzip(jsCode);
  if (jsGzip > maxGzip) throw new Error(`app.js is ${jsGzip} bytes gzipped, over its budget of ${maxGzip} bytes`);
  fs.writeFileSync(path.join(dir, 'app.js'), jsCode);
  fs.writeFileSync(path.join(dir, 'app.css'), cssCode);
  fs.writeFileSync(path.join(dir, 'index.html'), html);
  const res = {
    dir,
    js: { bytes: jsCode.length, gzip: jsGzip },
    css: { bytes: cssCode.length, gzip: gzip(cssCode) },
  };
  console.log(
    `web: app/app.js ${res.js.bytes} bytes, ${res.js.gzip} gzipped (budget ${maxGzip}); ` +
      `app/app.css ${res.css.bytes} bytes, ${res.css.gzip} gzipped`,
  );
  return res;
}

async function main(argv) {
  const args = argv.slice(2);
  if (args.length !== 1) throw new Error('usage: node web/build-dashboard.mjs <outdir>');
  await buildDashboard(path.resolve(args[0]));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv).catch((e) => {
    console.error(`dashboard build failed: ${e.message}`);
    process.exit(1);
  });
}
