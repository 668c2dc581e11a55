// The parley command line: --version, --help, unknown commands, migrate, the project
// commands (create, list, domains) with their validation and exit codes, and settings from
// flags and environment variables (the flag wins; a bad value exits 2 naming the setting).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, tempDir, stopAll } from '../lib/server.mjs';

after(stopAll);

const freshDir = () => path.join(tempDir(), 'data');

function jsonLines(stdout) {
  const lines = stdout.split('\n');
  assert.equal(lines.pop(), '', 'output ends with a newline');
  return lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      assert.fail(`not one JSON object per line: ${JSON.stringify(l)}`);
    }
    return null;
  });
}

test('--version prints "parley <x.y.z>" and exits 0', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^parley \d+\.\d+\.\d+\n$/);
});

test('--help lists the subcommands and the settings, exit 0', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  for (const word of ['serve', 'migrate', 'project create', 'project list', 'project domains']) {
    assert.ok(r.stdout.includes(word), `--help mentions ${word}`);
  }
  const settings = [
    ['--host', 'PARLEY_HOST'], ['--port', 'PARLEY_PORT'], ['--data-dir', 'PARLEY_DATA_DIR'],
    ['--database', 'PARLEY_DATABASE'], ['--web-root', 'PARLEY_WEB_ROOT'],
    ['--max-body-bytes', 'PARLEY_MAX_BODY_BYTES'], ['--header-timeout', 'PARLEY_HEADER_TIMEOUT_MS'],
    ['--shutdown-timeout', 'PARLEY_SHUTDOWN_TIMEOUT_MS'], ['--demo', 'PARLEY_DEMO'],
  ];
  for (const [flag, env] of settings) {
    assert.ok(r.stdout.includes(flag), `--help lists ${flag}`);
    assert.ok(r.stdout.includes(env), `--help lists ${env}`);
  }
});

test('an unknown subcommand exits 2 with a message on stderr', async () => {
  for (const args of [['frobnicate'], ['project', 'explode'], ['--no-such-flag']]) {
    const r = await runCli(args, { dataDir: freshDir() });
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}`);
    assert.ok(r.stderr.trim().length > 0, 'a message on stderr');
    assert.equal(r.stdout, '', 'nothing on stdout');
  }
  const r = await runCli(['frobnicate']);
  assert.match(r.stderr, /frobnicate/);
});

test('migrate creates the database and says how many migrations it applied', async () => {
  const dir = freshDir();
  const countOf = (r) => {
    const m = /(?:applied\D{0,20}(\d+)|(\d+)\s+migrations?\b)/i.exec(r.stdout + r.stderr);
    assert.ok(m, `no count of migrations in ${JSON.stringify(r.stdout)}`);
    return Number(m[1] ?? m[2]);
  };
  const first = await runCli(['migrate'], { dataDir: dir });
  assert.equal(first.code, 0, first.stderr);
  assert.ok(countOf(first) >= 1, first.stdout);
  assert.ok(fs.existsSync(path.join(dir, 'parley.db')), 'database file created in the data dir');
  const second = await runCli(['migrate'], { dataDir: dir });
  assert.equal(second.code, 0, second.stderr);
  assert.equal(countOf(second), 0, second.stdout);
});

test('project create --json prints exactly one line with the record', async () => {
  const dir = freshDir();
  const r = await runCli(['project', 'create', '--name', 'Shop', '--domain', 'shop.example', '--domain', '*.shop.example', '--json'], { dataDir: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '{"id":1,"name":"Shop","whitelistedDomains":["shop.example","*.shop.example"]}\n');
  const second = await runCli(['project', 'create', '--name', 'Other', '--domain', 'other.example', '--json'], { dataDir: dir });
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(JSON.parse(second.stdout), { id: 2, name: 'Other', whitelistedDomains: ['other.example'] });
});

test('domains are lower-cased and de-duplicated', async () => {
  const dir = freshDir();
  const r = await runCli(['project', 'create', '--name', 'Mixed', '--domain', 'Shop.Example', '--domain', 'shop.example',
    '--domain', '*.Shop.EXAMPLE', '--domain', 'SHOP.example', '--domain', '127.0.0.1', '--json'], { dataDir: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).whitelistedDomains, ['shop.example', '*.shop.example', '127.0.0.1']);
});

test('an invalid domain exits 2 with a message, and creates nothing', async () => {
  const dir = freshDir();
  for (const bad of ['exa mple.com', 'http://x.com', '*.', 'a..b', '', 'x.com/path', 'x.com:80', '-x.com', '*.*.x.com', 'a.*.x.com']) {
    const r = await runCli(['project', 'create', '--name', 'Bad', '--domain', 'ok.example', '--domain', bad, '--json'], { dataDir: dir });
    assert.equal(r.code, 2, `${JSON.stringify(bad)}: exit ${r.code}`);
    assert.ok(r.stderr.trim().length > 0, `${JSON.stringify(bad)}: message`);
    assert.equal(r.stdout, '');
  }
  const list = await runCli(['project', 'list', '--json'], { dataDir: dir });
  assert.equal(list.code, 0, list.stderr);
  assert.equal(list.stdout, '', 'no project was created');
});

test('project list --json prints one JSON object per line', async () => {
  const dir = freshDir();
  const empty = await runCli(['project', 'list', '--json'], { dataDir: dir });
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(empty.stdout, '');
  const made = [];
  for (const [name, doms] of [['A', ['a.example']], ['B', []], ['C', ['c.example', '*.c.example']]]) {
    const r = await runCli(['project', 'create', '--name', name, ...doms.flatMap((d) => ['--domain', d]), '--json'], { dataDir: dir });
    assert.equal(r.code, 0, r.stderr);
    made.push(JSON.parse(r.stdout));
  }
  const list = await runCli(['project', 'list', '--json'], { dataDir: dir });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(jsonLines(list.stdout), made);
  assert.deepEqual(made.map((p) => p.id), [1, 2, 3]);
  // Without --json: something human-readable naming each project.
  const text = await runCli(['project', 'list'], { dataDir: dir });
  assert.equal(text.code, 0);
  for (const p of made) assert.ok(text.stdout.includes(p.name), text.stdout);
});

test('project domains adds and removes, and prints the updated record', async () => {
  const dir = freshDir();
  await runCli(['project', 'create', '--name', 'Shop', '--domain', 'shop.example', '--domain', '*.shop.example', '--json'], { dataDir: dir });
  const r = await runCli(['project', 'domains', '1', '--add', 'a.example', '--remove', 'shop.example', '--json'], { dataDir: dir });
  assert.equal(r.code, 0, r.stderr);
  const lines = jsonLines(r.stdout);
  assert.equal(lines.length, 1);
  assert.equal(lines[0].id, 1);
  assert.equal(lines[0].name, 'Shop');
  assert.deepEqual([...lines[0].whitelistedDomains].sort(), ['*.shop.example', 'a.example']);
  // Stored: list shows the same.
  const list = jsonLines((await runCli(['project', 'list', '--json'], { dataDir: dir })).stdout);
  assert.deepEqual(list, lines);
  // Adding an existing domain (in another case) does not duplicate it.
  const again = await runCli(['project', 'domains', '1', '--add', 'A.Example', '--json'], { dataDir: dir });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual([...JSON.parse(again.stdout).whitelistedDomains].sort(), ['*.shop.example', 'a.example']);
  // An invalid domain to add: exit 2, nothing changed.
  const bad = await runCli(['project', 'domains', '1', '--add', 'exa mple.com', '--json'], { dataDir: dir });
  assert.equal(bad.code, 2);
  assert.ok(bad.stderr.trim().length > 0);
  const after = jsonLines((await runCli(['project', 'list', '--json'], { dataDir: dir })).stdout);
  assert.deepEqual(after, lines);
});

test('an unknown project id exits 1 with "not found" on stderr', async () => {
  const dir = freshDir();
  await runCli(['project', 'create', '--name', 'Only', '--json'], { dataDir: dir });
  const r = await runCli(['project', 'domains', '9', '--add', 'a.example', '--json'], { dataDir: dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /project 9 not found|not found/i);
  assert.equal(r.stdout, '');
});

test('a bad project id in `project domains` exits 2', async () => {
  const dir = freshDir();
  for (const id of ['abc', '-1', '0', '1e3', '99999999999999999999']) {
    const r = await runCli(['project', 'domains', id, '--add', 'a.example'], { dataDir: dir });
    assert.equal(r.code, 2, `${id}: exit ${r.code} ${r.stderr}`);
    assert.ok(r.stderr.trim().length > 0);
  }
});

test('PARLEY_DATA_DIR selects the data directory; --data-dir wins over it', async () => {
  const d1 = freshDir();
  const d2 = freshDir();
  await runCli(['project', 'create', '--name', 'InOne', '--json'], { dataDir: d1 });
  await runCli(['project', 'create', '--name', 'InTwo', '--json'], { dataDir: d2 });
  const byEnv = await runCli(['project', 'list', '--json'], { env: { PARLEY_DATA_DIR: d1 } });
  assert.equal(byEnv.code, 0, byEnv.stderr);
  assert.deepEqual(jsonLines(byEnv.stdout).map((p) => p.name), ['InOne']);
  const flagWins = await runCli(['project', 'list', '--json'], { env: { PARLEY_DATA_DIR: d1 }, dataDir: d2 });
  assert.equal(flagWins.code, 0, flagWins.stderr);
  assert.deepEqual(jsonLines(flagWins.stdout).map((p) => p.name), ['InTwo']);
  // --x=v works as well as --x v.
  const eqForm = await runCli(['project', 'list', '--json', `--data-dir=${d1}`]);
  assert.deepEqual(jsonLines(eqForm.stdout).map((p) => p.name), ['InOne']);
});

test('a bad setting value exits 2 naming the setting', async () => {
  const rows = [
    [['serve', '--port', '70000'], {}, /port/],
    [['serve', '--port', 'abc'], {}, /port/],
    [['serve'], { PARLEY_PORT: '70000' }, /port/],
    [['serve', '--max-body-bytes', '10'], {}, /max-body-bytes/],
    [['serve', '--log-level', 'loud'], {}, /log-level/],
    [['serve', '--demo=maybe'], {}, /demo/],
    [['migrate', '--database', 'mysql://x'], {}, /database/],
    [['project', 'list', '--header-timeout', '-5'], {}, /header-timeout/],
  ];
  for (const [args, env, re] of rows) {
    const dir = freshDir();
    const r = await runCli(args, { dataDir: dir, env, timeoutMs: 5000 });
    assert.equal(r.code, 2, `${args.join(' ')} ${JSON.stringify(env)}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, re);
    assert.ok(!fs.existsSync(path.join(dir, 'parley.db')), 'nothing created on a bad setting');
  }
});
