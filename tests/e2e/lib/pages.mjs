// Customer sites for the browser tests: a tiny static HTTP server on its own loopback origin
// that serves the host pages in tests/e2e/fixtures/, with `{{WIDGET}}` replaced by the embed
// snippet (<script src=".../widget.js" data-project-id="ID" async>) pointing at the Parley
// server under test. Query parameters: `nowidget=1` leaves the snippet out (for comparing the
// page with and without the widget), `pid=N` embeds another project id, `uid=U` and `hash=H`
// add data-visitor-uid and data-user-hash (identity verification). Any path under /app/
// without a file extension serves fixtures/spa.html (a single-page app's deep links).
//
//   const site = await startSite({ host: '127.0.0.1', name: 'localhost' });
//   site.widgetSrc = `${parley.url}/widget.js`; site.projectId = 1;   (may be set later)
//   site.url('/host.html')  → http://localhost:<port>/host.html
//   await site.close();
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

const attr = (v) => String(v).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml' };

// host: the address to listen on (127.0.0.1, 127.0.0.2, ...); name: the host name pages are
// addressed by (default: the address; 'localhost' for the whitelisted site).
export function startSite({ host = '127.0.0.1', name = host, widgetSrc, projectId = 1 } = {}) {
  const site = { widgetSrc, projectId };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    let rel = decodeURIComponent(u.pathname);
    if (rel === '/') rel = '/host.html';
    if (rel.startsWith('/app/') && !path.extname(rel)) rel = '/spa.html';
    const file = path.join(FIXTURES, path.normalize(rel));
    if (!file.startsWith(FIXTURES + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    let body = fs.readFileSync(file);
    const ext = path.extname(file);
    if (ext === '.html') {
      const pid = u.searchParams.get('pid') ?? String(site.projectId);
      let extra = '';
      if (u.searchParams.get('uid')) extra += ` data-visitor-uid="${attr(u.searchParams.get('uid'))}"`;
      if (u.searchParams.get('hash')) extra += ` data-user-hash="${attr(u.searchParams.get('hash'))}"`;
      const tag = u.searchParams.get('nowidget')
        ? ''
        : `<script src="${site.widgetSrc}" data-project-id="${attr(pid)}"${extra} async></script>`;
      body = body.toString('utf8').replaceAll('{{WIDGET}}', tag);
    }
    res.writeHead(200, { 'content-type': TYPES[ext] || 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      resolve(Object.assign(site, {
        port,
        origin: `http://${name}:${port}`,
        url: (p = '/host.html') => `http://${name}:${port}${p}`,
        close: () => new Promise((r) => {
          server.closeAllConnections?.();
          server.close(() => r());
        }),
      }));
    });
  });
}
