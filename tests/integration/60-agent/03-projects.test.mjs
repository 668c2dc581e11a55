// Projects (docs/http-api.md "Projects"): create (201, the creator is its manager, domains
// lower-cased and de-duplicated), list (only the caller's, id order, with the caller's role),
// get, rename, whitelistedDomains validation (400 naming the first invalid entry) and the
// Socket.IO Origin check following a PATCH at once, widget settings (every field's range, the
// limits accepted, unknown fields refused, a refused PATCH changes nothing) reflected by the
// public settings endpoint, members and roles (a second agent made with the CLI: it sees the
// project with role "agent" and may not change it; a long multi-byte name printed and listed
// whole; a name over the limit refused or kept whole, never a crash), 403 / 404 for non-members, unknown projects and ids that are not positive integers,
// and historyVisibility PATCHed over HTTP taking effect for the widget's next identify.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, api, ok, assertApiError, assertFieldError, assertProject, register,
  login, runCli, connectVisitor, openSocket, visitorOptions, newEmail, NOT_MEMBER, NOT_MANAGER,
  NOT_IDS, ORIGIN, WIDGET_SETTING_KEYS, visitor, sendOk, newUid,
} from './helpers.mjs';

let ctx;
let mgr; // the registered manager of the projects made here
let outsider; // a user of no project
before(async () => {
  ctx = await setup({ projects: [{ name: 'CLI project', domains: ['localhost'] }] });
  mgr = await register(ctx, { email: newEmail('mgr'), fullName: 'Project Manager' });
  outsider = await register(ctx, { email: newEmail('outsider'), fullName: 'Outsider' });
});
after(() => teardown(ctx));

async function create(body, token = mgr.accessToken) {
  return assertProject(ok(await api(ctx, 'POST', '/projects', { token, body }), 201));
}

// A second agent (role agent) of project pid made with the CLI while the server runs.
async function cliAgent(pid, role = 'agent') {
  const email = newEmail(role);
  const password = 'second agent password';
  const r = await runCli(['agent', 'create', '--email', email, '--password', password, '--project', String(pid), '--role', role, '--name', `CLI ${role}`, '--json'], { dataDir: ctx.dataDir });
  assert.equal(r.code, 0, `agent create: ${r.stderr}`);
  const a = JSON.parse(r.stdout.trim().split('\n').pop());
  return { ...a, email, password, session: await login(ctx, email, password) };
}

test('POST /projects: 201, the creator is manager, domains lower-cased and de-duplicated', { timeout: t(30000) }, async () => {
  const p = await create({ name: 'Shop', whitelistedDomains: ['Shop.Example.COM', 'shop.example.com', '*.Example.org', '10.0.0.1', 'localhost'] });
  assert.equal(p.name, 'Shop');
  assert.equal(p.role, 'manager');
  assert.deepEqual([...p.whitelistedDomains].sort(), ['*.example.org', '10.0.0.1', 'localhost', 'shop.example.com']);
  const bare = await create({ name: 'No domains yet' });
  assert.deepEqual(bare.whitelistedDomains, []);
  assert.ok(bare.id > p.id);

  assert.deepEqual(ok(await api(ctx, 'GET', `/projects/${p.id}`, { token: mgr.accessToken })), p, 'GET equals the created project');
  const members = ok(await api(ctx, 'GET', `/projects/${p.id}/members`, { token: mgr.accessToken }));
  assert.deepEqual(members, [{ id: mgr.user.id, email: mgr.user.email, fullName: 'Project Manager', role: 'manager' }]);
});

test('GET /projects: only the caller\'s projects, in id order, with the caller\'s role', { timeout: t(30000) }, async () => {
  const u = await register(ctx, { email: newEmail('lister'), fullName: 'Lister' });
  const a = await create({ name: 'List A' }, u.accessToken);
  const other = await create({ name: 'Not theirs' });
  const b = await create({ name: 'List B', whitelistedDomains: ['b.test'] }, u.accessToken);
  const list = ok(await api(ctx, 'GET', '/projects', { token: u.accessToken }));
  assert.deepEqual(list.map((p) => p.id), [a.id, b.id]);
  for (const p of list) assertProject(p, { role: 'manager' });
  assert.deepEqual(list[1], b);
  assert.ok(!JSON.stringify(list).includes('Not theirs'));
  assert.ok(!ok(await api(ctx, 'GET', '/projects', { token: mgr.accessToken })).some((p) => p.id === a.id || p.id === b.id));
  // the CLI project (1) is nobody's here
  assert.ok(!list.some((p) => p.id === 1));
  assertApiError(await api(ctx, 'GET', `/projects/${other.id}`, { token: u.accessToken }), 403, NOT_MEMBER);
});

test('POST /projects: 400 names the field; the limits are accepted', { timeout: t(60000) }, async () => {
  const tok = mgr.accessToken;
  const bad = [
    ['name', { whitelistedDomains: [] }],
    ['name', { name: '' }],
    ['name', { name: 'n'.repeat(101) }],
    ['name', { name: '\u{1F680}'.repeat(101) }],
    ['name', { name: 42 }],
    ['name', { name: null }],
    ['whitelistedDomains', { name: 'x', whitelistedDomains: 'example.com' }],
    ['whitelistedDomains', { name: 'x', whitelistedDomains: null }],
    ['whitelistedDomains', { name: 'x', whitelistedDomains: {} }],
    ['whitelistedDomains', { name: 'x', whitelistedDomains: Array.from({ length: 101 }, (_, i) => `d${i}.example.com`) }],
  ];
  for (const [field, body] of bad) assertFieldError(await api(ctx, 'POST', '/projects', { token: tok, body }), field, JSON.stringify(body).slice(0, 80));
  for (const raw of ['[]', '"Shop"', '{"name":']) {
    assertApiError(await api(ctx, 'POST', '/projects', { token: tok, raw, contentType: 'application/json' }), 400);
  }
  const before = ok(await api(ctx, 'GET', '/projects', { token: tok })).length;
  await invalidDomainsRefused((domains) => api(ctx, 'POST', '/projects', { token: tok, body: { name: 'Bad domains', whitelistedDomains: domains } }));
  assert.equal(ok(await api(ctx, 'GET', '/projects', { token: tok })).length, before, 'no project was created by a refused request');

  await create({ name: 'n'.repeat(100) });
  await create({ name: '\u{1F680}'.repeat(100) }); // 100 characters
  const hundred = Array.from({ length: 100 }, (_, i) => `d${i}.example.com`);
  const p = await create({ name: 'Hundred domains', whitelistedDomains: hundred });
  assert.deepEqual([...p.whitelistedDomains].sort(), [...hundred].sort());
});

// Every invalid entry is refused with a 400 naming it (message starts with the field, and names
// the entry by its text or its index).
async function invalidDomainsRefused(send) {
  const invalid = ['http://shop.example.com', 'shop.example.com/path', 'shop.example.com:8080', 'exa mple.com', '*', '*.', '*.*.example.com',
    'a..b.example.com', '.example.com', '-bad.example.com', 'bad-.example.com', '', ' ', 'x'.repeat(64) + '.com',
    `${'a'.repeat(60)}.`.repeat(5) + 'com', 'ex<script>.com', 'exämple.com', 'https://*.example.com'];
  for (const d of invalid) {
    const r = await send(['ok.example.com', d]);
    const j = assertApiError(r, 400, /^whitelistedDomains\b/);
    assert.ok(j.message.includes(JSON.stringify(d).slice(1, -1)) || j.message.includes(d) || /\[1\]/.test(j.message), `the 400 names the invalid entry ${JSON.stringify(d)}: ${j.message}`);
  }
  for (const d of [42, null, ['a.com'], { a: 1 }]) {
    assertApiError(await send(['ok.example.com', d]), 400, /^whitelistedDomains\b/);
  }
  // a NUL byte: refused, as the field or as the whole body
  assertApiError(await send(['ok.example.com', 'ex\u0000ample.com']), 400);
  // the first invalid entry is the one named
  const j = assertApiError(await send(['ok.example.com', 'first bad', 'second bad']), 400, /^whitelistedDomains\b/);
  assert.ok(!j.message.includes('second bad'), `the first invalid entry is named: ${j.message}`);
}

test('PATCH /projects/:id: the manager renames and changes domains; validation changes nothing', { timeout: t(60000) }, async () => {
  const p = await create({ name: 'Before', whitelistedDomains: ['before.test'] });
  await sleep(5);
  const q = assertProject(ok(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body: { name: 'After' } })));
  assert.equal(q.name, 'After');
  assert.deepEqual(q.whitelistedDomains, ['before.test'], 'an absent field is unchanged');
  assert.equal(q.createdAt, p.createdAt);
  assert.ok(q.updatedAt > p.updatedAt, `updatedAt moved: ${p.updatedAt} → ${q.updatedAt}`);
  const r = assertProject(ok(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body: { whitelistedDomains: ['New.Test', 'new.test', '*.Other.Test'] } })));
  assert.equal(r.name, 'After');
  assert.deepEqual([...r.whitelistedDomains].sort(), ['*.other.test', 'new.test']);
  const e = assertProject(ok(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body: { whitelistedDomains: [] } })));
  assert.deepEqual(e.whitelistedDomains, []);
  ok(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body: { whitelistedDomains: ['new.test'] } }));

  await invalidDomainsRefused((domains) => api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body: { name: 'Should not stick', whitelistedDomains: domains } }));
  for (const body of [{ name: '' }, { name: 'n'.repeat(101) }, { name: null }, { name: 5 }]) {
    assertFieldError(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body }), 'name');
  }
  const now = ok(await api(ctx, 'GET', `/projects/${p.id}`, { token: mgr.accessToken }));
  assert.equal(now.name, 'After', 'refused PATCHes changed nothing');
  assert.deepEqual(now.whitelistedDomains, ['new.test']);
});

test('403 for non-members and agents changing a project; 404 for unknown projects and non-ids', { timeout: t(60000) }, async () => {
  const p = await create({ name: 'Guarded', whitelistedDomains: ['guarded.test'] });
  const agent = await cliAgent(p.id);
  const o = outsider.accessToken;
  const ag = agent.session.accessToken;

  for (const [method, path, body] of [
    ['GET', `/projects/${p.id}`],
    ['GET', `/projects/${p.id}/members`],
    ['PATCH', `/projects/${p.id}`, { name: 'Hijacked' }],
    ['PATCH', `/projects/${p.id}/widget-settings`, { theme: 'dark' }],
  ]) {
    const r = await api(ctx, method, path, { token: o, body });
    assertApiError(r, 403, NOT_MEMBER);
    assert.ok(!r.text.includes('Guarded') && !r.text.includes('guarded.test'), 'a 403 reveals nothing of the project');
  }
  assertApiError(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: ag, body: { name: 'Renamed by an agent' } }), 403, NOT_MANAGER);
  assertApiError(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: ag, body: { whitelistedDomains: ['evil.test'] } }), 403, NOT_MANAGER);
  assertApiError(await api(ctx, 'PATCH', `/projects/${p.id}/widget-settings`, { token: ag, body: { theme: 'dark' } }), 403, NOT_MANAGER);
  const still = ok(await api(ctx, 'GET', `/projects/${p.id}`, { token: mgr.accessToken }));
  assert.equal(still.name, 'Guarded');
  assert.deepEqual(still.whitelistedDomains, ['guarded.test']);
  assert.equal(still.widgetSettings.theme === 'dark', false, 'the refused settings change did not stick');

  for (const token of [mgr.accessToken, o]) {
    for (const id of ['999999', '9007199254740991', ...NOT_IDS]) {
      for (const [method, path, body] of [
        ['GET', `/projects/${id}`],
        ['GET', `/projects/${id}/members`],
        ['PATCH', `/projects/${id}`, { name: 'x' }],
        ['PATCH', `/projects/${id}/widget-settings`, { theme: 'dark' }],
      ]) {
        assertApiError(await api(ctx, method, path, { token, body }), 404);
      }
    }
  }
});

test('members: roles of the manager and a CLI-made agent; the agent sees the project as "agent"', { timeout: t(60000) }, async () => {
  const p = await create({ name: 'Team' });
  const agent = await cliAgent(p.id);
  const ag = agent.session.accessToken;
  const expected = [
    { id: mgr.user.id, email: mgr.user.email, fullName: 'Project Manager', role: 'manager' },
    { id: agent.id, email: agent.email, fullName: 'CLI agent', role: 'agent' },
  ].sort((a, b) => a.id - b.id);
  for (const token of [mgr.accessToken, ag]) {
    const m = ok(await api(ctx, 'GET', `/projects/${p.id}/members`, { token }));
    for (const x of m) assert.deepEqual(Object.keys(x).sort(), ['email', 'fullName', 'id', 'role']);
    assert.deepEqual([...m].sort((a, b) => a.id - b.id), expected);
  }
  const seen = ok(await api(ctx, 'GET', '/projects', { token: ag }));
  assert.deepEqual(seen.map((x) => x.id), [p.id]);
  assertProject(seen[0], { role: 'agent', name: 'Team' });
  assertProject(ok(await api(ctx, 'GET', `/projects/${p.id}`, { token: ag })), { role: 'agent' });
  assert.equal(ok(await api(ctx, 'GET', `/projects/${p.id}`, { token: mgr.accessToken })).role, 'manager');
  // a manager made with the CLI may change it
  const m2 = await cliAgent(p.id, 'manager');
  assertProject(ok(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: m2.session.accessToken, body: { name: 'Team 2' } })), { name: 'Team 2', role: 'manager' });
});

test('a CLI-made agent with a 100-character multi-byte name: the CLI prints it and the members list has it exactly', { timeout: t(60000) }, async () => {
  const p = await create({ name: 'Long names' });
  for (const name of ['\u00d6'.repeat(60) + '\u{1F600}'.repeat(40), '\u{1F600}'.repeat(100), 'a'.repeat(99) + '\u00d6']) {
    const email = newEmail('longname');
    const r = await runCli(['agent', 'create', '--email', email, '--password', 'long enough pw', '--project', String(p.id), '--name', name, '--json'], { dataDir: ctx.dataDir });
    assert.equal(r.code, 0, `agent create --name <${Buffer.byteLength(name)} bytes>: exit ${r.code} signal ${r.signal}\n${r.stderr}`);
    const a = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(a.fullName, name, 'the CLI prints the whole name');
    const m = ok(await api(ctx, 'GET', `/projects/${p.id}/members`, { token: mgr.accessToken }));
    assert.equal(m.find((x) => x.email === email)?.fullName, name, 'the members list has the whole name');
    assert.equal((await login(ctx, email, 'long enough pw')).user.fullName, name);
  }
});

test('a CLI name over 100 characters: refused, or kept whole, never a crash or a cut character', { timeout: t(60000) }, async () => {
  const p = await create({ name: 'Too long names' });
  for (const name of ['\u{1F600}'.repeat(101), '\u{1F600}'.repeat(300), '\u00d6'.repeat(1000) + 'x', 'a'.repeat(600) + '\u00d6']) {
    const email = newEmail('toolong');
    const r = await runCli(['agent', 'create', '--email', email, '--password', 'long enough pw', '--project', String(p.id), '--name', name, '--json'], { dataDir: ctx.dataDir });
    const what = `agent create --name <${[...name].length} characters, ${Buffer.byteLength(name)} bytes>`;
    assert.equal(r.signal, null, `${what}: killed by ${r.signal}\n${r.stderr}`);
    if (r.code === 0) {
      assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()).fullName, name, `${what}: accepted, so printed whole`);
      assert.equal((await login(ctx, email, 'long enough pw')).user.fullName, name, `${what}: accepted, so stored whole`);
    } else {
      assert.match(r.stderr, /name/i, `${what}: the refusal names the option: ${r.stderr}`);
      assertApiError(await api(ctx, 'POST', '/auth/login', { body: { email, password: 'long enough pw' } }), 401);
    }
  }
});

// ---- whitelistedDomains and the Socket.IO Origin check -----------------------------------

async function visitorConnects(pid, origin) {
  const c = await connectVisitor(ctx, { projectId: pid, origin, label: `visitor from ${origin}` });
  c.close();
}

async function visitorRefused(pid, origin, message) {
  const c = openSocket(ctx.url, visitorOptions({ projectId: pid, origin }), `visitor from ${origin}`);
  try {
    assert.equal(await c.waitConnectError(), message, `Origin ${origin}`);
  } finally {
    c.close();
  }
}

test('the Socket.IO Origin check follows PATCHed whitelistedDomains at once', { timeout: t(60000) }, async () => {
  const p = await create({ name: 'Origins' });
  await visitorRefused(p.id, ORIGIN, 'No whitelisted domains');
  ok(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body: { whitelistedDomains: ['shop.test'] } }));
  await visitorRefused(p.id, ORIGIN, 'Origin not whitelisted');
  await visitorConnects(p.id, 'https://shop.test');
  ok(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body: { whitelistedDomains: ['shop.test', 'LOCALHOST', '*.brand.test'] } }));
  await visitorConnects(p.id, ORIGIN);
  await visitorConnects(p.id, 'https://www.brand.test');
  await visitorRefused(p.id, 'https://brand.test', 'Origin not whitelisted');
  ok(await api(ctx, 'PATCH', `/projects/${p.id}`, { token: mgr.accessToken, body: { whitelistedDomains: ['brand.test'] } }));
  await visitorRefused(p.id, ORIGIN, 'Origin not whitelisted');
  await visitorRefused(p.id, 'https://shop.test', 'Origin not whitelisted');
  await visitorConnects(p.id, 'https://brand.test');
  // and the public settings endpoint follows too
  const get = (origin) => api(ctx, 'GET', `/public/projects/${p.id}/settings`, { headers: { Origin: origin } });
  assert.equal((await get('https://brand.test')).status, 200);
  assertApiError(await get(ORIGIN), 403);
});

// ---- widget settings ----------------------------------------------------------------------

const url2048 = (scheme) => {
  const head = `${scheme}://cdn.example.com/`;
  return head + 'l'.repeat(2048 - head.length);
};

const GOOD = {
  theme: ['light', 'dark'],
  headerText: ['H', 'h'.repeat(60), '\u{1F4AC}'.repeat(60), 'Talk to "us" <b>now</b>'],
  position: ['bottom-left', 'bottom-right'],
  primaryColor: ['#000000', '#ffffff', '#a1b2c3'],
  welcomeMessage: ['', 'w'.repeat(500), '\u{1F44B}'.repeat(500)],
  agentDisplayName: ['A', 'a'.repeat(60), '\u00c9quipe'],
  offlineMessage: ['', 'o'.repeat(500)],
  autoOpenDelay: [0, 1, 600],
  historyVisibility: ['forever', 'limit_to_active'],
  companyLogoUrl: ['https://cdn.example.com/logo.png', 'http://cdn.example.com/logo.svg', url2048('https'), null],
};

const BAD = {
  theme: ['blue', '', 'Light', 'DARK', null, 1, true, ['dark']],
  headerText: ['', 'h'.repeat(61), '\u{1F4AC}'.repeat(61), null, 5, {}],
  position: ['top-left', 'bottom', '', 'Bottom-Right', null, 0],
  primaryColor: ['red', '#fff', '#ggg000', '4f46e5', '#4f46e5ff', '#4f46e', '', 'rgb(0,0,0)', null, 0x4f46e5],
  welcomeMessage: ['w'.repeat(501), '\u{1F44B}'.repeat(501), null, 1, []],
  agentDisplayName: ['', 'a'.repeat(61), null, 3],
  offlineMessage: ['o'.repeat(501), null, false],
  autoOpenDelay: [-1, 601, 1.5, '10', null, true, 1e20],
  historyVisibility: ['always', '', 'FOREVER', null, 1],
  companyLogoUrl: ['javascript:alert(1)', 'ftp://cdn.example.com/logo.png', 'data:image/png;base64,AAAA', '//cdn.example.com/logo.png',
    'cdn.example.com/logo.png', '', url2048('https') + 'x', 5, true, {}, 'HTTPS://cdn.example.com/logo.png',
    // not URLs: no host, control characters, characters a URL never holds
    'https://', 'http://', 'https://cdn.example.com/a\nb.png', 'https://cdn.example.com/\t.png', 'https://cdn.example.com/\u0001.png',
    'https://cdn.example.com/\u007f.png', 'https://cdn.example.com/"onerror="alert(1)', 'https://cdn.example.com/<x>'],
};

test('widget settings: every field\'s values and limits accepted and stored', { timeout: t(60000) }, async () => {
  const p = await create({ name: 'Widget', whitelistedDomains: ['localhost'] });
  for (const [field, values] of Object.entries(GOOD)) {
    for (const v of values) {
      const r = assertProject(ok(await api(ctx, 'PATCH', `/projects/${p.id}/widget-settings`, { token: mgr.accessToken, body: { [field]: v } })));
      assert.deepEqual(r.widgetSettings[field], v, `${field} = ${JSON.stringify(v).slice(0, 60)} stored`);
      assert.equal(r.name, 'Widget');
    }
  }
});

test('widget settings: 400 naming the field for every value out of range and every unknown field; nothing changes', { timeout: t(120000) }, async () => {
  const p = await create({ name: 'Widget validation', whitelistedDomains: ['localhost'] });
  const path = `/projects/${p.id}/widget-settings`;
  const before = ok(await api(ctx, 'GET', `/projects/${p.id}`, { token: mgr.accessToken })).widgetSettings;
  // every row is tried; the failures are reported together
  const failures = [];
  for (const [field, values] of Object.entries(BAD)) {
    for (const v of values) {
      const what = `${field} = ${JSON.stringify(v).slice(0, 60)}`;
      for (const [body, how] of [[{ [field]: v }, ''], [{ theme: 'dark', [field]: v }, ' (with a valid theme: the whole PATCH is refused)']]) {
        const r = await api(ctx, 'PATCH', path, { token: mgr.accessToken, body });
        try {
          assertFieldError(r, field, what + how);
        } catch (e) {
          failures.push(`${what}${how} → ${r.status}`);
          // undo what an accepted value changed, for the rows after it
          ok(await api(ctx, 'PATCH', path, { token: mgr.accessToken, body: before }));
        }
      }
    }
  }
  assert.deepEqual(failures, [], `values out of range that were not refused with a 400 naming the field:\n${failures.join('\n')}`);
  for (const unknown of ['color', 'Theme', '__proto__', 'constructor', 'toString', 'widgetSettings', '']) {
    const raw = `{${JSON.stringify(unknown)}:"dark"}`;
    const r = await api(ctx, 'PATCH', path, { token: mgr.accessToken, raw, contentType: 'application/json' });
    const j = assertApiError(r, 400);
    if (unknown) assert.ok(j.message.includes(unknown), `the 400 names the unknown field ${unknown}: ${j.message}`);
  }
  for (const raw of ['[]', '"dark"', 'null', '{"theme":"dark",}']) {
    assertApiError(await api(ctx, 'PATCH', path, { token: mgr.accessToken, raw, contentType: 'application/json' }), 400);
  }
  const after = ok(await api(ctx, 'GET', `/projects/${p.id}`, { token: mgr.accessToken })).widgetSettings;
  assert.deepEqual(after, before, 'no refused PATCH changed the settings');
});

test('GET /public/projects/:id/settings reflects the PATCHed settings; unrelated fields keep theirs', { timeout: t(30000) }, async () => {
  const p = await create({ name: 'Public', whitelistedDomains: ['localhost'] });
  const pub = async () => {
    const r = await api(ctx, 'GET', `/public/projects/${p.id}/settings`, { headers: { Origin: ORIGIN } });
    return ok(r);
  };
  const defaults = await pub();
  assert.deepEqual(Object.keys(defaults).sort(), WIDGET_SETTING_KEYS);
  const all = {
    theme: 'dark', headerText: 'Need a hand?', position: 'bottom-left', primaryColor: '#10b981',
    welcomeMessage: 'Welcome!', agentDisplayName: 'Helpdesk', offlineMessage: '', autoOpenDelay: 30,
    historyVisibility: 'forever', companyLogoUrl: 'https://cdn.example.com/logo.png',
  };
  const r = assertProject(ok(await api(ctx, 'PATCH', `/projects/${p.id}/widget-settings`, { token: mgr.accessToken, body: all })));
  for (const [k, v] of Object.entries(all)) assert.deepEqual(r.widgetSettings[k], v, `widgetSettings.${k}`);
  assert.deepEqual(await pub(), all, 'the public settings are the PATCHed ones');
  // a subset changes only itself
  ok(await api(ctx, 'PATCH', `/projects/${p.id}/widget-settings`, { token: mgr.accessToken, body: { theme: 'light', companyLogoUrl: null } }));
  assert.deepEqual(await pub(), { ...all, theme: 'light', companyLogoUrl: null });
  // an empty PATCH changes nothing
  ok(await api(ctx, 'PATCH', `/projects/${p.id}/widget-settings`, { token: mgr.accessToken, body: {} }));
  assert.deepEqual(await pub(), { ...all, theme: 'light', companyLogoUrl: null });
  // other projects keep the defaults
  const other = await create({ name: 'Defaults', whitelistedDomains: ['localhost'] });
  const d = ok(await api(ctx, 'GET', `/public/projects/${other.id}/settings`, { headers: { Origin: ORIGIN } }));
  assert.deepEqual(d, defaults);
});

test('historyVisibility PATCHed over HTTP takes effect for the next identify', { timeout: t(60000) }, async () => {
  const p = await create({ name: 'History', whitelistedDomains: ['localhost'] });
  const uid = newUid();
  const v = await visitor(ctx, { projectId: p.id, uid });
  const fm = await sendOk(v, 'remember me');
  v.close();
  ok(await api(ctx, 'PATCH', `/projects/${p.id}/inbox/conversations/${fm.conversationId}`, { token: mgr.accessToken, body: { status: 'solved' } }));
  const a = await visitor(ctx, { projectId: p.id, uid, label: 'limit_to_active' });
  assert.deepEqual(a.history, [], 'limit_to_active (the default): a solved conversation is not shown');
  a.close();
  ok(await api(ctx, 'PATCH', `/projects/${p.id}/widget-settings`, { token: mgr.accessToken, body: { historyVisibility: 'forever' } }));
  const b = await visitor(ctx, { projectId: p.id, uid, label: 'forever' });
  assert.deepEqual(b.history.map((m) => m.id), [fm.id], 'forever: the solved conversation is shown');
  b.close();
});
