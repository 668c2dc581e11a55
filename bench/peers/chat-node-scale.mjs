// The Node.js peer of the scale-out benchmark (bench/scale.sh, scenario `messages`): the same
// visitor/agent flow as bench/peers/chat-node.mjs (PROTOCOL.md sections 2-4), but shared by
// several processes the way a Node.js deployment scales out: PostgreSQL through node-postgres
// (`pg`, a pool of connections, named prepared statements) instead of better-sqlite3, and the
// Socket.IO rooms across processes through `@socket.io/redis-adapter` over node-redis (every
// broadcast is published on Redis and delivered by whichever process holds the sockets).
//   - CONNECT: a visitor (query projectId) needs an existing project with whitelisted domains and
//     an Origin whose hostname is one of them; an agent (auth {token}) needs an HS256 JWT with a
//     valid signature, exp in the future, an existing user `sub` and iat not before the user's
//     tokens_valid_from; anything else is refused.
//   - identify {projectId, visitorUid}: checked, visitor upserted (last_seen_at), presence counted
//     in Redis (INCR/DECR of presence:<project>:<uid>, so it is right across processes),
//     visitorStatusChanged to the room when the first socket of a visitor comes online, history
//     (newest open or pending conversation, newest 200 messages) as ack and `conversationHistory`.
//   - sendMessage {content, tempId}: checked (trimmed 1-5000 code points, tempId 1-64), then ONE
//     transaction: visitor upsert (its row lock orders concurrent messages of one visitor, also
//     across processes), conversation found (newest open/pending) or created, message inserted
//     with UNIQUE (visitor_id, temp_id) (a repeat returns the original), conversation's
//     last-message fields and unread count. Only after the COMMIT: ack {tempId, finalMessage},
//     `messageSent` to the visitor's sockets, `newMessage` to room project:<id>, both through the
//     Redis adapter. Messages of one visitor are persisted one after another in this process (a
//     promise chain per visitor), so a window of messages in flight does not hold several pool
//     connections waiting on the same row lock.
//   - joinProjectRoom {projectId} (agents): membership checked in the store, ack {status, roomName}.
// Schema: the chat-node.mjs tables in PostgreSQL types, created if missing and seeded (project,
// domain, agent user 1) under an advisory lock, so two processes may start on one database.
//
//   node bench/peers/chat-node-scale.mjs --port N --pg postgres://... --redis redis://...
//        --jwt-secret S [--pool 10] [--project-name B --domain localhost --agent-email E]
// Once listening it writes `event=http.listen port=N` on stderr. SIGINT/SIGTERM close and exit.
import { createServer } from 'node:http';
import {
    UID_RE, agentMessage, checkSendMessage, originRefusal, refuse, verifyJwt, widgetMessage,
} from './flow.mjs';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import pg from 'pg';

function parseArgs(argv) {
    const o = { port: 3000, pg: '', redis: '', jwtSecret: '', pool: 10, projectName: 'B',
        domain: 'localhost', agentEmail: 'agent@bench.test' };
    const flags = { '--port': 'port', '--pg': 'pg', '--redis': 'redis', '--jwt-secret': 'jwtSecret',
        '--pool': 'pool', '--project-name': 'projectName', '--domain': 'domain',
        '--agent-email': 'agentEmail' };
    for (let i = 2; i < argv.length; i += 2) {
        const k = flags[argv[i]];
        if (!k || argv[i + 1] === undefined) {
            process.stderr.write(`chat-node-scale: bad argument ${argv[i]}\n`);
            process.exit(2);
        }
        o[k] = k === 'port' || k === 'pool' ? Number(argv[i + 1]) : argv[i + 1];
    }
    if (o.jwtSecret.length < 32 || !o.pg || !o.redis || !(o.pool >= 1 && o.pool <= 100)) {
        process.stderr.write('chat-node-scale: --pg URL, --redis URL, --jwt-secret (32+ characters) '
            + 'are required; --pool 1..100\n');
        process.exit(2);
    }
    return o;
}

const opts = parseArgs(process.argv);
// BIGINT (int8) columns as numbers: every id and ms time here is far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
const pool = new pg.Pool({ connectionString: opts.pg, max: opts.pool });
pool.on('error', (e) => process.stderr.write(`chat-node-scale: idle pg client: ${e.message}\n`));

const SCHEMA = `
CREATE TABLE IF NOT EXISTS projects (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS project_domains (id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE, domain TEXT NOT NULL,
  UNIQUE (project_id, domain));
CREATE TABLE IF NOT EXISTS users (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE,
  full_name TEXT NOT NULL DEFAULT '', tokens_valid_from BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS project_members (project_id BIGINT NOT NULL REFERENCES projects(id),
  user_id BIGINT NOT NULL REFERENCES users(id), role TEXT NOT NULL,
  PRIMARY KEY (project_id, user_id));
CREATE TABLE IF NOT EXISTS visitors (id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id), uid TEXT NOT NULL,
  last_seen_at BIGINT NOT NULL, created_at BIGINT NOT NULL, UNIQUE (project_id, uid));
CREATE TABLE IF NOT EXISTS conversations (id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id), visitor_id BIGINT NOT NULL REFERENCES visitors(id),
  status TEXT NOT NULL DEFAULT 'open', last_message_snippet TEXT NOT NULL DEFAULT '',
  last_message_timestamp BIGINT NOT NULL, unread_count BIGINT NOT NULL DEFAULT 0,
  metadata JSON, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_inbox ON conversations (project_id, status, last_message_timestamp, id);
CREATE INDEX IF NOT EXISTS conversations_by_visitor ON conversations (visitor_id, id);
CREATE TABLE IF NOT EXISTS messages (id BIGSERIAL PRIMARY KEY,
  conversation_id BIGINT NOT NULL REFERENCES conversations(id),
  project_id BIGINT NOT NULL REFERENCES projects(id), visitor_id BIGINT NOT NULL REFERENCES visitors(id),
  content TEXT NOT NULL, sender_id TEXT NOT NULL, from_customer BOOLEAN NOT NULL,
  user_id BIGINT, status TEXT NOT NULL DEFAULT 'sent', temp_id TEXT, created_at BIGINT NOT NULL,
  UNIQUE (visitor_id, temp_id));
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
`;

async function migrate() {
    const c = await pool.connect();
    try {
        await c.query('SELECT pg_advisory_lock(74310)');
        await c.query(SCHEMA);
        const { rows } = await c.query('SELECT count(*)::int AS n FROM projects');
        if (rows[0].n === 0) {
            const now = Date.now();
            await c.query('BEGIN');
            const pid = (await c.query('INSERT INTO projects (name, created_at) VALUES ($1, $2) RETURNING id',
                [opts.projectName, now])).rows[0].id;
            await c.query('INSERT INTO project_domains (project_id, domain) VALUES ($1, $2)', [pid, opts.domain]);
            const uid = (await c.query('INSERT INTO users (email) VALUES ($1) RETURNING id',
                [opts.agentEmail])).rows[0].id;
            await c.query('INSERT INTO project_members VALUES ($1, $2, $3)', [pid, uid, 'agent']);
            await c.query('COMMIT');
        }
    } finally {
        await c.query('SELECT pg_advisory_unlock(74310)').catch(() => {});
        c.release();
    }
}

// Named statements: node-postgres prepares each once per connection.
const Q = {
    project: 'SELECT id FROM projects WHERE id = $1',
    domains: 'SELECT domain FROM project_domains WHERE project_id = $1',
    user: 'SELECT id, tokens_valid_from FROM users WHERE id = $1',
    member: 'SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2',
    visitorUpsert: `INSERT INTO visitors (project_id, uid, last_seen_at, created_at)
        VALUES ($1, $2, $3, $3) ON CONFLICT (project_id, uid) DO UPDATE SET last_seen_at = excluded.last_seen_at
        RETURNING id`,
    activeConv: `SELECT id FROM conversations WHERE visitor_id = $1
        AND status IN ('open', 'pending') ORDER BY id DESC LIMIT 1`,
    newConv: `INSERT INTO conversations (project_id, visitor_id, last_message_snippet,
        last_message_timestamp, unread_count, created_at, updated_at) VALUES ($1, $2, '', $3, 0, $3, $3)
        RETURNING id`,
    history: `SELECT * FROM (SELECT * FROM messages WHERE conversation_id = $1
        ORDER BY id DESC LIMIT 200) h ORDER BY id`,
    insertMsg: `INSERT INTO messages (conversation_id, project_id, visitor_id, content,
        sender_id, from_customer, status, temp_id, created_at) VALUES ($1, $2, $3, $4, $5, TRUE, 'sent', $6, $7)
        ON CONFLICT (visitor_id, temp_id) DO NOTHING RETURNING *`,
    existingMsg: 'SELECT * FROM messages WHERE visitor_id = $1 AND temp_id = $2',
    touchConv: `UPDATE conversations SET last_message_snippet = $1, last_message_timestamp = $2,
        unread_count = unread_count + 1, updated_at = $2 WHERE id = $3`,
};
function q(client, name, values) {
    return client.query({ name, text: Q[name], values });
}
async function one(name, values) {
    return (await q(pool, name, values)).rows[0];
}


async function persist(projectId, uid, content, tempId) {
    const c = await pool.connect();
    try {
        await c.query('BEGIN');
        const now = Date.now();
        const vid = (await q(c, 'visitorUpsert', [projectId, uid, now])).rows[0].id;
        const conv = (await q(c, 'activeConv', [vid])).rows[0];
        const convId = conv ? conv.id : (await q(c, 'newConv', [projectId, vid, now])).rows[0].id;
        let row = (await q(c, 'insertMsg', [convId, projectId, vid, content, uid, tempId, now])).rows[0];
        if (row) {
            await q(c, 'touchConv', [content.slice(0, 100), now, convId]);
        } else {
            row = (await q(c, 'existingMsg', [vid, tempId])).rows[0];
        }
        await c.query('COMMIT');
        return row;
    } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
    } finally {
        c.release();
    }
}

// One promise chain per visitor: its messages are persisted in the order they arrived.
const chains = new Map();
function serialized(key, fn) {
    const prev = chains.get(key) || Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    chains.set(key, tail);
    tail.then(() => {
        if (chains.get(key) === tail) chains.delete(key);
    });
    return run;
}



let stopping = false;
// While stopping, handlers still running may publish on the closed Redis clients: ignore that.
process.on('unhandledRejection', (e) => {
    if (stopping) return;
    process.stderr.write(`chat-node-scale: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});

await migrate();
const pub = createClient({ url: opts.redis });
const sub = pub.duplicate();
pub.on('error', (e) => process.stderr.write(`chat-node-scale: redis: ${e.message}\n`));
sub.on('error', (e) => process.stderr.write(`chat-node-scale: redis (sub): ${e.message}\n`));
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const io = new Server(http, { serveClient: false, adapter: createAdapter(pub, sub) });

io.use(async (socket, next) => {
    try {
        const hs = socket.handshake;
        if (hs.auth && typeof hs.auth.token === 'string') {
            const claims = verifyJwt(hs.auth.token, opts.jwtSecret);
            if (!claims) return next(new Error('Invalid JWT'));
            const user = await one('user', [Number(claims.sub)]);
            if (!user) return next(new Error('User not found'));
            if (typeof claims.iat !== 'number' || claims.iat * 1000 < user.tokens_valid_from) {
                return next(new Error('Token revoked'));
            }
            socket.data = { role: 'agent', userId: user.id };
            return next();
        }
        const pid = Number(hs.query.projectId);
        if (hs.query.projectId !== undefined) {
            if (!Number.isSafeInteger(pid) || pid <= 0 || !(await one('project', [pid]))) {
                return next(new Error('Project not found'));
            }
            const domains = (await q(pool, 'domains', [pid])).rows.map((r) => r.domain.toLowerCase());
            const refusal = originRefusal(hs.headers.origin, domains);
            if (refusal) return next(new Error(refusal));
            socket.data = { role: 'visitor', projectId: pid, uid: null, visitorId: null };
            return next();
        }
        return next(new Error('Unauthorized'));
    } catch (e) {
        return next(new Error('Service unavailable'));
    }
});

io.on('connection', (socket) => {
    const d = socket.data;
    if (d.role === 'agent') {
        socket.on('joinProjectRoom', async (p, ack) => {
            const pid = p && Number.isSafeInteger(p.projectId) ? p.projectId : 0;
            try {
                if (!pid || !(await one('member', [pid, d.userId]))) {
                    return refuse(ack, 'joinProjectRoom', 'forbidden',
                        'Forbidden: You are not a member of this project.');
                }
            } catch {
                return refuse(ack, 'joinProjectRoom', 'unavailable', 'Service unavailable');
            }
            socket.join(`project:${pid}`);
            if (typeof ack === 'function') ack({ status: 'ok', roomName: `project:${pid}` });
        });
        return;
    }
    socket.on('identify', async (p, ack) => {
        if (!p || typeof p !== 'object' || p.projectId !== d.projectId || typeof p.visitorUid !== 'string' ||
            !UID_RE.test(p.visitorUid)) {
            return refuse(ack, 'identify', 'invalid_payload', 'Invalid payload');
        }
        if (d.uid && d.uid !== p.visitorUid) return refuse(ack, 'identify', 'forbidden', 'Forbidden');
        let history;
        try {
            d.visitorId = (await one('visitorUpsert', [d.projectId, p.visitorUid, Date.now()])).id;
            const key = `${d.projectId}:${p.visitorUid}`;
            if (!d.uid) {
                d.uid = p.visitorUid;
                socket.join(`visitor:${key}`);
                if (await pub.incr(`presence:${key}`) === 1) {
                    io.to(`project:${d.projectId}`).emit('visitorStatusChanged',
                        { visitorUid: d.uid, projectId: d.projectId, isOnline: true });
                }
                if (!socket.connected) return; // left while we waited: the disconnect ran already
            }
            const conv = await one('activeConv', [d.visitorId]);
            history = { messages: conv ? (await q(pool, 'history', [conv.id])).rows.map(widgetMessage) : [] };
        } catch {
            return refuse(ack, 'identify', 'unavailable', 'Service unavailable');
        }
        if (typeof ack === 'function') ack(history);
        socket.emit('conversationHistory', history);
    });
    socket.on('sendMessage', async (p, ack) => {
        if (!d.uid) return refuse(ack, 'sendMessage', 'not_identified', 'Not identified');
        const checked = checkSendMessage(p);
        if (checked.code) return refuse(ack, 'sendMessage', checked.code, 'Invalid payload');
        const content = checked.content;
        const projectId = d.projectId, uid = d.uid;
        let row;
        try {
            row = await serialized(`${projectId}:${uid}`, () => persist(projectId, uid, content, p.tempId));
        } catch (e) {
            return refuse(ack, 'sendMessage', 'unavailable', 'Service unavailable');
        }
        const sent = { tempId: p.tempId, finalMessage: widgetMessage(row) };
        if (typeof ack === 'function') ack(sent);
        io.to(`visitor:${projectId}:${uid}`).emit('messageSent', sent);
        io.to(`project:${projectId}`).emit('newMessage', agentMessage(row));
    });
    socket.on('disconnect', async () => {
        if (!d.uid || stopping) return;
        const key = `${d.projectId}:${d.uid}`;
        try {
            if (await pub.decr(`presence:${key}`) > 0) return;
        } catch {
            return;
        }
        io.to(`project:${d.projectId}`).emit('visitorStatusChanged',
            { visitorUid: d.uid, projectId: d.projectId, isOnline: false });
    });
});

http.listen(opts.port, '127.0.0.1', () => {
    process.stderr.write(`event=http.listen port=${http.address().port}\n`);
});
async function stop() {
    if (stopping) return;
    stopping = true;
    io.close();
    http.close();
    await Promise.allSettled([pub.quit(), sub.quit(), pool.end()]);
    process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
