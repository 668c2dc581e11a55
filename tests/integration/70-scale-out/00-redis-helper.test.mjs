// The scale-out tests' Redis helper (redis.mjs) works: a server starts on a free loopback port,
// answers commands (the RESP2 reply kinds the tests read), goes away on kill (an outage),
// comes back empty on the same port, and stops for good leaving nothing behind.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startRedis, redisCommand, parseReply } from './redis.mjs';

test('parseReply reads every RESP2 kind and waits for incomplete input', () => {
  assert.deepEqual(parseReply(Buffer.from('+OK\r\n')).value, 'OK');
  assert.deepEqual(parseReply(Buffer.from('-ERR bad\r\n')).value, { error: 'ERR bad' });
  assert.equal(parseReply(Buffer.from(':42\r\n')).value, 42);
  assert.equal(parseReply(Buffer.from('$-1\r\n')).value, null);
  assert.equal(parseReply(Buffer.from('$3\r\nabc\r\n')).value, 'abc');
  assert.deepEqual(parseReply(Buffer.from('*2\r\n:1\r\n$1\r\nx\r\n')).value, [1, 'x']);
  assert.equal(parseReply(Buffer.from('$3\r\nab')), null);
  assert.equal(parseReply(Buffer.from('*2\r\n:1\r\n')), null);
});

test('a throwaway Redis: commands, outage, restart on the same port, stop', async () => {
  const redis = await startRedis();
  assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(await redis.command('SET', 'k', 'v', 'EX', 60), 'OK');
  assert.equal(await redis.command('GET', 'k'), 'v');
  const ttl = await redis.command('TTL', 'k');
  assert.ok(ttl > 50 && ttl <= 60);
  assert.deepEqual(await redis.command('INCR', 'k'), { error: 'ERR value is not an integer or out of range' });

  await redis.kill();
  await assert.rejects(redisCommand(redis.port, 'PING'));

  await redis.restart();
  assert.equal(await redis.command('PING'), 'PONG');
  assert.equal(await redis.command('GET', 'k'), null); // no persistence: empty after a restart

  const dir = redis.dir;
  await redis.stop();
  await assert.rejects(redisCommand(redis.port, 'PING'));
  assert.equal(fs.existsSync(dir), false);
  await redis.stop(); // idempotent
});
