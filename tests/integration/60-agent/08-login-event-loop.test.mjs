// Logins must not stall the event loop (docs/http-api.md: Argon2id runs on libuv's work queue,
// never on the loop): while 10 logins run at once (twice), a visitor keeps exchanging messages
// and an agent keeps asking /health; no sendMessage ack and no /health answer waits more than
// 1 s (scaled for the sanitizer build). A behaviour check, not a benchmark: the bound is far
// above the normal latency and far below ten hashes done one after another on the loop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, api, login, visitor, sendOk, agentSocket, newTempId,
} from './helpers.mjs';

const N = 10;
let ctx;
before(async () => {
  const agents = [];
  for (let i = 0; i < N; i++) agents.push({ email: `agent${i}@loop.test`, name: `Loop Agent ${i}` });
  ctx = await setup({
    projects: [{ name: 'Loop', domains: ['localhost'] }],
    agents,
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
});
after(() => teardown(ctx));

test('10 concurrent logins do not delay a visitor\'s acks or /health by more than 1 s', { timeout: t(120000) }, async (tc) => {
  const bound = t(1000);
  const first = await login(ctx, ctx.agents[0].email);
  const room = await agentSocket(ctx, first.accessToken, [1], 'room');
  const v = await visitor(ctx);
  await sendOk(v, 'warm-up');

  let loggingIn = true;
  const acks = []; // {ms, during}
  const health = [];
  const messages = (async () => {
    let i = 0;
    while (loggingIn || acks.length < 5) {
      const during = loggingIn;
      const started = performance.now();
      const fm = await sendOk(v, `ping ${i++}`, { tempId: newTempId('loop'), timeoutMs: t(10000) });
      acks.push({ ms: performance.now() - started, during, id: fm.id });
    }
  })();
  const probes = (async () => {
    while (loggingIn) {
      const started = performance.now();
      const r = await fetch(`${ctx.url}/health`, { signal: AbortSignal.timeout(t(10000)) });
      await r.text();
      health.push(performance.now() - started);
    }
  })();

  const loginStarted = performance.now();
  const times = [];
  for (let round = 0; round < 2; round++) {
    const rs = await Promise.all(ctx.agents.map(async (a) => {
      const started = performance.now();
      const s = await login(ctx, a.email, a.password);
      times.push(performance.now() - started);
      return s;
    }));
    rs.forEach((s, i) => assert.equal(s.user.id, ctx.agents[i].id));
  }
  const loginMs = performance.now() - loginStarted;
  loggingIn = false;
  await Promise.all([messages, probes]);

  const during = acks.filter((a) => a.during);
  const worstAck = Math.max(...acks.map((a) => a.ms));
  const worstHealth = Math.max(...health);
  const summary = `${2 * N} logins took ${loginMs.toFixed(0)} ms (each ${Math.min(...times).toFixed(0)}-${Math.max(...times).toFixed(0)} ms); `
    + `${during.length} acks during them, worst ack ${worstAck.toFixed(0)} ms; ${health.length} /health, worst ${worstHealth.toFixed(0)} ms`;
  tc.diagnostic(summary);
  assert.ok(during.length >= 3, `the visitor exchanged messages while the logins ran: ${summary}`);
  assert.ok(worstAck <= bound, `no ack waited more than ${bound} ms: ${summary}`);
  assert.ok(worstHealth <= bound, `no /health answer waited more than ${bound} ms: ${summary}`);
  // every message reached the room too
  for (const a of acks) await room.next('newMessage', { pred: (p) => p?.id === a.id, timeoutMs: t(5000) });
  // the tokens work
  const s = await login(ctx, ctx.agents[N - 1].email);
  assert.equal((await api(ctx, 'GET', '/user/me', { token: s.accessToken })).json.id, ctx.agents[N - 1].id);
  v.close();
  room.close();
});
