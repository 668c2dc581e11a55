// Connection lifecycle: reconnection after the server restarts on the same port, heartbeat
// timeouts detected by the server and by the client, and the connect timeout for a session that
// never sends a Socket.IO CONNECT.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, client, connected, nextEvent, emitAck, once, t, sleep, waitUntil, RawSio } from './echo.mjs';

describe('lifecycle', () => {
  for (const transports of [['websocket'], ['polling']]) {
    it(`reconnects after the server restarts on the same port (${transports})`, async () => {
      const first = await startEcho();
      const s = client(first.url, {
        transports,
        reconnection: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 200,
        randomizationFactor: 0,
      });
      try {
        await connected(s);
        const firstId = s.id;
        assert.equal(await emitAck(s, 'message-with-ack', 'before'), 'before');
        const gone = once(s, 'disconnect', t(5000));
        await first.stop();
        const [reason] = await gone;
        assert.ok(['transport close', 'transport error'].includes(reason), reason);
        const second = await startEcho({ port: first.port });
        try {
          await once(s, 'connect', t(10000));
          assert.notEqual(s.id, firstId);
          assert.equal(await emitAck(s, 'message-with-ack', 'after'), 'after');
          await nextEvent(s, 'auth'); // the new server greets the new connection
        } finally {
          s.close();
          await second.stop();
        }
      } finally {
        s.close();
      }
    });
  }

  it('the server detects a client that stops answering pings', async () => {
    const srv = await startEcho({ args: ['--ping-interval', '200', '--ping-timeout', '300'] });
    try {
      const healthy = await connected(client(srv.url, { transports: ['websocket'] }));
      const r = await RawSio.open(srv.port, { autoPong: false });
      assert.equal(r.handshake.pingInterval, 200);
      assert.equal(r.handshake.pingTimeout, 300);
      await r.connect('');
      const opened = Date.now();
      assert.ok(await r.closedWithin(t(3000)), 'silent client dropped');
      const after = r.closedAt - opened;
      assert.ok(after >= 400, `closed after ${after} ms, before interval + timeout`);
      assert.ok(r.texts.includes('2'), 'pings were sent');
      // The client that answers pings is still there.
      await sleep(t(600));
      assert.equal(healthy.connected, true);
      assert.equal(await emitAck(healthy, 'message-with-ack', 'alive'), 'alive');
      healthy.close();
    } finally {
      await srv.stop();
    }
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`the client detects a server that stopped sending pings (${transports})`, async () => {
      const srv = await startEcho({ args: ['--ping-interval', '200', '--ping-timeout', '300'] });
      const s = await connected(client(srv.url, { transports }));
      try {
        const gone = once(s, 'disconnect', t(5000));
        srv.proc.kill('SIGSTOP');
        const [reason] = await gone;
        assert.equal(reason, 'ping timeout');
      } finally {
        srv.proc.kill('SIGCONT');
        s.close();
        await srv.stop();
      }
    });
  }

  it('closes a session that never sends CONNECT within --connect-timeout', async () => {
    const srv = await startEcho({ args: ['--connect-timeout', '400'] });
    try {
      const joined = await RawSio.open(srv.port);
      await joined.connect('');
      const silent = await RawSio.open(srv.port);
      const opened = Date.now();
      assert.ok(await silent.closedWithin(t(3000)), 'silent session closed');
      const after = silent.closedAt - opened;
      assert.ok(after >= 300, `closed after ${after} ms`);
      await srv.waitForStderr(/event=sio\.connect_timeout/);
      // A session that connected a namespace is not affected.
      await sleep(t(600));
      assert.equal(joined.closedAt, null);
      joined.send('42["message","ok"]');
      assert.equal(await joined.next((x) => x.startsWith('42["message-back"')), '42["message-back","ok"]');
      joined.close();

      // Over polling: the handshake alone, then nothing; the session is gone after the timeout.
      const hs = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`).then((r) => r.text());
      const sid = JSON.parse(hs.slice(1)).sid;
      await sleep(t(900));
      const res = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      const body = await res.text();
      assert.ok(res.status === 400 || body.startsWith('1'), `${res.status} ${body}`);
    } finally {
      await srv.stop();
    }
  });

  it('a session whose only CONNECT named an unknown namespace is closed at once', async () => {
    const srv = await startEcho({ args: ['--connect-timeout', '5000'] });
    try {
      const r = await RawSio.open(srv.port);
      assert.equal(await r.connect('/nope'), '44/nope,{"message":"Invalid namespace"}');
      assert.ok(await r.closedWithin(t(2000)), 'closed well before the connect timeout');
    } finally {
      await srv.stop();
    }
  });
});
