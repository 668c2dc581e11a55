// Who connects (PROTOCOL.md section 2): every refusal reason of a visitor connection in the
// order of the table (unknown project, no whitelisted domains, no Origin, `Origin: null` and
// other unparsable Origins, a hostname not whitelisted), the matches that must pass (a port-only
// difference, upper-case hosts, a `*.` wildcard entry), a connection that is neither a visitor
// nor an agent ("Unauthorized"); on both transports. A refusal is `connect_error` with exactly
// the table's message, on the wire `44{"message":...}` followed by the close, and the client
// does not reconnect by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, waitUntil, ORIGIN, openSocket, visitorOptions, createProject, identify, newUid,
  RawSio, agentToken,
} from './helpers.mjs';

let ctx;
before(async () => {
  ctx = await setup({
    projects: [
      { name: 'Local', domains: ['localhost'] }, // 1
      { name: 'Wild', domains: ['*.example.com'] }, // 2
      { name: 'Empty', domains: [] }, // 3
      { name: 'Upper', domains: ['Shop.Example.ORG'] }, // 4 (stored lower-cased)
    ],
    agents: [{ email: 'agent@local.test', project: 0 }],
  });
  assert.deepEqual(ctx.projects.map((p) => p.id), [1, 2, 3, 4]);
});
after(() => teardown(ctx));

// [what, projectId, Origin (null: no header), message]
const REFUSED = [
  ['unknown project', 999, ORIGIN, 'Project not found'],
  ['unknown project, no Origin (the project is checked first)', 999, null, 'Project not found'],
  ['unknown project, Origin null', 999, 'null', 'Project not found'],
  ['project without domains', 3, ORIGIN, 'No whitelisted domains'],
  ['project without domains, no Origin (domains before Origin)', 3, null, 'No whitelisted domains'],
  ['project without domains, Origin null', 3, 'null', 'No whitelisted domains'],
  ['no Origin header', 1, null, 'Missing origin'],
  ['Origin: null', 1, 'null', 'Invalid origin'],
  ['Origin without a scheme', 1, 'localhost', 'Invalid origin'],
  ['Origin "http://"', 1, 'http://', 'Invalid origin'],
  ['Origin that is not a URL', 1, 'not a url', 'Invalid origin'],
  ['Origin with a path', 1, 'http://localhost/path', 'Invalid origin'],
  ['Origin: null on the wildcard project', 2, 'null', 'Invalid origin'],
  ['another host', 1, 'http://evil.com', 'Origin not whitelisted'],
  ['the whitelisted name as a prefix', 1, 'http://localhost.evil.com:3000', 'Origin not whitelisted'],
  ['a subdomain of an exact entry', 1, 'https://sub.localhost', 'Origin not whitelisted'],
  ['a wildcard entry does not match its apex', 2, 'https://example.com', 'Origin not whitelisted'],
  ['a wildcard entry does not match a suffix without a dot', 2, 'https://badexample.com', 'Origin not whitelisted'],
  ['a wildcard entry does not match a longer domain', 2, 'https://a.example.com.evil.org', 'Origin not whitelisted'],
  ['an exact entry of another project', 4, 'http://localhost:3000', 'Origin not whitelisted'],
];

// [what, projectId, Origin]
const ACCEPTED = [
  ['the whitelisted host', 1, 'http://localhost:3000'],
  ['a port-only difference', 1, 'http://localhost:4000'],
  ['no port', 1, 'http://localhost'],
  ['https', 1, 'https://localhost:8443'],
  ['an upper-case host', 1, 'http://LOCALHOST:3000'],
  ['a mixed-case host', 1, 'http://LocalHost'],
  ['a trailing slash', 1, 'http://localhost:3000/'],
  ['a subdomain under a wildcard entry', 2, 'https://a.example.com'],
  ['a deeper subdomain, upper case, with a port', 2, 'http://A.B.Example.COM:8443'],
  ['an entry created in upper case', 4, 'http://shop.example.org'],
  ['an upper-case host against it', 4, 'https://SHOP.example.Org:9443'],
];

const TRANSPORTS = [['websocket'], ['polling']];

// Opens every case at once, then checks each: connect_error with exactly the message, not
// connected, not active (will not reconnect), and after a pause still no reconnect attempt.
async function expectRefusals(cases) {
  await sleep(t(200));
  const fdsBefore = ctx.srv.fdCount();
  const clients = cases.map((c) => ({ ...c, client: openSocket(ctx.url, c.opts, c.what) }));
  try {
    for (const c of clients) {
      const msg = await c.client.waitConnectError();
      assert.equal(msg, c.message, `${c.what}: connect_error message`);
    }
    await sleep(t(1200));
    for (const c of clients) {
      assert.equal(c.client.connects, 0, `${c.what}: never connected`);
      assert.equal(c.client.connected, false, `${c.what}: not connected`);
      assert.equal(c.client.socket.active, false, `${c.what}: socket.active is false (no automatic retry)`);
      assert.equal(c.client.reconnectAttempts, 0, `${c.what}: no reconnect attempt`);
      assert.equal(c.client.connectErrors.length, 1, `${c.what}: exactly one connect_error`);
    }
  } finally {
    for (const c of clients) c.client.close();
  }
  // every refused connection was torn down: no descriptor left behind
  await waitUntil(() => ctx.srv.fdCount() <= fdsBefore, { timeoutMs: t(5000), label: `server descriptors back to ${fdsBefore}` });
}

for (const transports of TRANSPORTS) {
  test(`visitor refusals, in the order of section 2, over ${transports[0]}`, { timeout: t(60000) }, async () => {
    await expectRefusals(REFUSED.map(([what, projectId, origin, message]) => ({
      what: `${what} (${transports[0]})`,
      message,
      // reconnection left on (the default): the client must still not retry
      opts: visitorOptions({ projectId, origin, transports, reconnection: true, reconnectionDelay: 100 }),
    })));
  });

  test(`visitor Origins that must pass, over ${transports[0]}`, { timeout: t(60000) }, async () => {
    for (const [what, projectId, origin] of ACCEPTED) {
      const c = openSocket(ctx.url, visitorOptions({ projectId, origin, transports }), `${what} (${origin})`);
      try {
        await c.waitConnected();
        assert.equal(typeof c.id, 'string', 'a socket id');
        // the socket is a working visitor of that project
        const messages = await identify(c, { projectId, uid: newUid() });
        assert.deepEqual(messages, []);
      } finally {
        c.close();
      }
    }
  });

  test(`neither a visitor nor an agent: "Unauthorized", over ${transports[0]}`, { timeout: t(30000) }, async () => {
    await expectRefusals([
      { what: 'no projectId, no token, with an Origin', opts: { extraHeaders: { Origin: ORIGIN } } },
      { what: 'no projectId, no token, no Origin', opts: {} },
      { what: 'an empty auth object', opts: { auth: {}, extraHeaders: { Origin: ORIGIN } } },
      { what: 'auth without a token', opts: { auth: { user: 'x' } } },
      { what: 'other query parameters only', opts: { query: { visitorUid: newUid() }, extraHeaders: { Origin: ORIGIN } } },
    ].map((c) => ({
      ...c,
      what: `${c.what} (${transports[0]})`,
      message: 'Unauthorized',
      opts: { transports, reconnection: true, reconnectionDelay: 100, ...c.opts },
    })));
  });
}

test('on the wire: CONNECT_ERROR 44{"message":...} and then the connection closes', { timeout: t(30000) }, async () => {
  const cases = [
    [{ projectId: '999' }, { Origin: ORIGIN }, 'Project not found'],
    [{ projectId: '3' }, { Origin: ORIGIN }, 'No whitelisted domains'],
    [{ projectId: '1' }, {}, 'Missing origin'],
    [{ projectId: '1' }, { Origin: 'null' }, 'Invalid origin'],
    [{ projectId: '1' }, { Origin: 'http://evil.com' }, 'Origin not whitelisted'],
    [{}, { Origin: ORIGIN }, 'Unauthorized'],
  ];
  for (const [query, headers, message] of cases) {
    const r = await RawSio.open(ctx.port, { query, headers, label: message });
    try {
      r.send('40');
      const p = await r.nextPacket(() => true, { label: 'answer to CONNECT' });
      assert.equal(p, `44${JSON.stringify({ message })}`, `the refusal packet for ${JSON.stringify(query)} ${JSON.stringify(headers)}`);
      await r.waitClose(t(5000));
      // nothing after the CONNECT_ERROR but, possibly, the Engine.IO close packet "1"
      assert.deepEqual(r.packets.filter((x) => !x.used && x.text !== '1').map((x) => x.text), [], 'nothing after the CONNECT_ERROR');
    } finally {
      r.close();
    }
  }
});

test('on the wire: an accepted visitor gets 40{"sid":...} and stays connected', { timeout: t(20000) }, async () => {
  const r = await RawSio.visitor(ctx.port, { projectId: 1 });
  try {
    await sleep(t(300));
    assert.equal(r.closed, null, 'still open');
    r.sendEventRaw('identify', JSON.stringify({ projectId: 1, visitorUid: newUid() }), 1);
    assert.deepEqual(await r.nextAck(1), { messages: [] });
  } finally {
    r.close();
  }
});

test('an agent with a valid token connects (the agent path of section 2)', { timeout: t(20000) }, async () => {
  const token = await agentToken(ctx.dataDir, 'agent@local.test');
  for (const transports of TRANSPORTS) {
    const c = openSocket(ctx.url, { auth: { token }, transports }, `agent (${transports[0]})`);
    try {
      await c.waitConnected();
      assert.equal(typeof c.id, 'string');
    } finally {
      c.close();
    }
  }
});

test('a project created while the server runs is accepted at the next connect', { timeout: t(20000) }, async () => {
  const p = await createProject(ctx.dataDir, { name: 'Later', domains: ['later.test'] });
  const c = openSocket(ctx.url, visitorOptions({ projectId: p.id, origin: 'https://later.test' }), 'later');
  try {
    await c.waitConnected();
    assert.deepEqual(await identify(c, { projectId: p.id, uid: newUid() }), []);
  } finally {
    c.close();
  }
  const bad = openSocket(ctx.url, visitorOptions({ projectId: p.id, origin: 'http://localhost:3000' }), 'later, wrong origin');
  try {
    assert.equal(await bad.waitConnectError(), 'Origin not whitelisted');
  } finally {
    bad.close();
  }
});
