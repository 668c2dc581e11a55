#!/usr/bin/env node
// Builds the web clients the server serves from its web root:
//   node web/build.mjs <outdir> [--max-gzip-bytes N]
// writes <outdir>/widget.js: web/widget/index.ts bundled with socket.io-client (its ESM build,
// so unused parts are dropped) into one minified IIFE for ES2019 browsers. *.css imports become
// minified text. Fails (exit 1) when widget.js gzipped at level 9 is over its budget (20 KiB,
// the limit; --max-gzip-bytes overrides it, for the test of this check).
// Each bundle is one small function below, so another client can be added beside it.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const WEB = path.dirname(fileURLToPath(import.meta.url));
export const WIDGET_MAX_GZIP = 20 * 1024;

// `import css from './x.css'` → the stylesheet, minified, as a string.
const cssAsText = {
  name: 'css-as-text',
  setup(build) {
    build.onLoad({ filter: /\.css$/ }, async (args) => {
      const source = await fs.promises.readFile(args.path, 'utf8');
      const { code } = await esbuild.transform(source, { loader: 'css', minify: true });
      return { contents: code.trim(), loader: 'text' };
    });
  },
};

// socket.io-client's engine offers HTTP long-polling over XMLHttpRequest, WebSocket and
// WebTransport by default. The server speaks polling and WebSocket; the widget bundles the
// client's own fetch()-based polling transport (same protocol, a third of the code) and its
// WebSocket transport, and leaves out the rest: about 1.5 KB gzipped of the 20 KiB budget.
const leanTransports = {
  name: 'socket.io-lean-transports',
  setup(build) {
    build.onResolve({ filter: /^\.\/transports\/index\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}engine.io-client${path.sep}`)
        ? { path: path.join(path.dirname(args.importer), 'transports', 'index.js'), namespace: 'eio-transports' }
        : undefined);
    // Its modules have no side effects: let esbuild drop the ones nothing uses.
    build.onResolve({ filter: /^\./ }, async (args) => {
      if (args.pluginData === 'lean' || !args.importer.includes(`${path.sep}engine.io-client${path.sep}`)) return undefined;
      const r = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'lean' });
      return r.errors.length ? undefined : { path: r.path, sideEffects: false };
    });
    build.onLoad({ filter: /.*/, namespace: 'eio-transports' }, (args) => ({
      contents: "import { Fetch } from './polling-fetch.js';\n" +
        "import { WS } from './websocket.js';\n" +
        'export const transports = { websocket: WS, polling: Fetch };\n',
      resolveDir: path.dirname(args.path),
      loader: 'js',
    }));
  },
};

export function gzipSize(file) {
  return zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length;
}

// esbuild options for the widget bundle written to file.
export function widgetOptions(file) {
  return {
    entryPoints: [path.join(WEB, 'widget/index.ts')],
    outfile: file,
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2019',
    platform: 'browser',
    banner: { js: '/*! Parley chat widget. Includes socket.io-client (MIT License). */' },
    plugins: [cssAsText, leanTransports],
    logLevel: 'warning',
  };
}

// The embeddable widget → <outdir>/widget.js. Returns {file, bytes, gzip}; throws when the
// gzipped size is over maxGzip.
export async function buildWidget(outdir, { maxGzip = WIDGET_MAX_GZIP } = {}) {
  const file = path.join(outdir, 'widget.js');
  await esbuild.build(widgetOptions(file));
  const bytes = fs.statSync(file).size;
  const gzip = gzipSize(file);
  console.log(`web: widget.js ${bytes} bytes, ${gzip} gzipped (budget ${maxGzip})`);
  if (gzip > maxGzip) {
    throw new Error(`widget.js is ${gzip} bytes gzipped, over its budget of ${maxGzip} bytes`);
  }
  return { file, bytes, gzip };
}

async function main(argv) {
  const args = argv.slice(2);
  let maxGzip = WIDGET_MAX_GZIP;
  const i = args.indexOf('--max-gzip-bytes');
  if (i >= 0) {
    maxGzip = Number(args[i + 1]);
    args.splice(i, 2);
    if (!Number.isSafeInteger(maxGzip) || maxGzip <= 0) throw new Error('--max-gzip-bytes needs a positive integer');
  }
  if (args.length !== 1) throw new Error('usage: node web/build.mjs <outdir> [--max-gzip-bytes N]');
  const outdir = path.resolve(args[0]);
  fs.mkdirSync(outdir, { recursive: true });
  await buildWidget(outdir, { maxGzip });
  // The demo page that `make run` points visitors at (/demo/).
  const demo = path.join(path.dirname(fileURLToPath(import.meta.url)), 'demo', 'index.html');
  if (fs.existsSync(demo)) {
    fs.mkdirSync(path.join(outdir, 'demo'), { recursive: true });
    fs.copyFileSync(demo, path.join(outdir, 'demo', 'index.html'));
  }
  // The agent dashboard (/app/), when its sources are there.
  const dashboard = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build-dashboard.mjs');
  if (fs.existsSync(dashboard)) {
    const { buildDashboard } = await import(dashboard);
    await buildDashboard(outdir);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv).catch((e) => {
    console.error(`web build failed: ${e.message}`);
    process.exit(1);
  });
}
