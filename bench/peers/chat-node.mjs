// The Node.js peer of the chat benchmark (bench/chat.sh, scenario `messages`): the official
// `socket.io` v4 server plus better-sqlite3, implementing the same visitor/agent flow as Parley
// (PROTOCOL.md sections 2-4) minimally but honestly:
//   - CONNECT: a visitor (query projectId) needs an existing project with whitelisted domains and
//     an Origin whose hostname is one of them; an agent (auth {token}) needs an HS256 JWT with a
//     valid signature (crypto.createHmac, constant-time compare), exp in the future, an existing
//     user `sub` and iat not before the user's tokens_valid_from; anything else is refused.
//   - identify {projectId, visitorUid}: checked, visitor upserted (last_seen_at), presence kept
//     in memory, visitorStatusChanged to the room on the first socket, history (newest open or
//     pending conversation, newest 200 messages) as ack and `conversationHistory`.
//   - sendMessage {content, tempId}: checked (trimmed 1-5000 code points, tempId 1-64), then ONE
//     transaction: visitor upsert, conversation found (newest open/pending) or created, message
//     inserted with UNIQUE (visitor_id, temp_id) (a repeat returns the original), conversation's
//     last-message fields and unread count. Only after the commit: ack {tempId, finalMessage},
//     `messageSent` to the visitor's sockets, `newMessage` to room project:<id>.
//   - joinProjectRoom {projectId} (agents): membership checked in the store, ack {status, roomName}.
// SQLite in WAL mode with synchronous=NORMAL, as Parley's default.
//
//   node bench/peers/chat-node.mjs --port N --db PATH --jwt-secret S
//        [--project-name B --domain localhost --agent-email E]   (seeds an empty database)
// Once listening it writes `event=http.listen port=N` on stderr. SIGINT/SIGTERM close and exit.
import { createServer } from 'node:http';
import {
    UID_RE, agentMessage, checkSendMessage, originRefusal, refuse, verifyJwt, widgetMessage,
} from './flow.mjs';
import { Server } from 'socket.io';
import Database from 'better-sqlite3';

function parseArgs(argv) {
    const o = { port: 3000, db: 'chat-node.db', jwtSecret: '', projectName: 'B', domain: 'localhost',
        agentEmail: 'agent@bench.test' };
    const flags = { '--port': 'port', '--db': 'db', '--jwt-secret': 'jwtSecret',
        '--project-name': 'projectName', '--domain': 'domain', '--agent-email': 'agentEmail' };
    for (let i = 2; i < argv.length; i += 2) {
        const k = flags[argv[i]];
        if (!k || argv[i + 1] === undefined) {
            process.stderr.write(`chat-node: bad argument ${argv[i]}\n`);
            process.exit(2);
        }
        o[k] = k === 'port' ? Number(argv[i + 1]) : argv[i + 1];
    }
    if (o.jwtSecret.length < 32) {
        process.stderr.write('chat-node: --jwt-secret of 32 or more characters is required\n');
        process.exit(2);
    }
    return o;
}

const opts = parseArgs(process.argv);
const db = new Database(opts.db);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('foreign_keys = ON');
db.exec(`
CREATE TABLE IF NOT EXISTS projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS project_domains (id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE, domain TEXT NOT NULL,
  UNIQUE (project_id, domain));
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE,
  full_name TEXT NOT NULL DEFAULT '', tokens_valid_from INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS project_members (project_id INTEGER NOT NULL REFERENCES projects(id),
  user_id INTEGER NOT NULL REFERENCES users(id), role TEXT NOT NULL,
  PRIMARY KEY (project_id, user_id));
CREATE TABLE IF NOT EXISTS visitors (id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id), uid TEXT NOT NULL,
  last_seen_at INTEGER NOT NULL, created_at INTEGER NOT NULL, UNIQUE (project_id, uid));
CREATE TABLE IF NOT EXISTS conversations (id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id), visitor_id INTEGER NOT NULL REFERENCES visitors(id),
  status TEXT NOT NULL DEFAULT 'open', last_message_snippet TEXT NOT NULL DEFAULT '',
  last_message_timestamp INTEGER NOT NULL, unread_count INTEGER NOT NULL DEFAULT 0,
  metadata TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_inbox ON conversations (project_id, status, last_message_timestamp, id);
CREATE INDEX IF NOT EXISTS conversations_by_visitor ON conversations (visitor_id, id);
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  project_id INTEGER NOT NULL REFERENCES projects(id), visitor_id INTEGER NOT NULL REFERENCES visitors(id),
  content TEXT NOT NULL, sender_id TEXT NOT NULL, from_customer INTEGER NOT NULL,
  user_id INTEGER, status TEXT NOT NULL DEFAULT 'sent', temp_id TEXT, created_at INTEGER NOT NULL,
  UNIQUE (visitor_id, temp_id));
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
`);
if (db.prepare('SELECT count(*) AS n FROM projects').get().n === 0) {
    db.transaction(() => {
        const now = Date.now();
        const pid = db.prepare('INSERT INTO projects (name, created_at) VALUES (?, ?)')
            .run(opts.projectName, now).lastInsertRowid;
        db.prepare('INSERT INTO project_domains (project_id, domain) VALUES (?, ?)').run(pid, opts.domain);
        const uid = db.prepare('INSERT INTO users (email) VALUES (?)').run(opts.agentEmail).lastInsertRowid;
        db.prepare('INSERT INTO project_members VALUES (?, ?, ?)').run(pid, uid, 'agent');
    })();
}

const q = {
    project: db.prepare('SELECT id FROM projects WHERE id = ?'),
    domains: db.prepare('SELECT domain FROM project_domains WHERE project_id = ?'),
    user: db.prepare('SELECT id, tokens_valid_from FROM users WHERE id = ?'),
    member: db.prepare('SELECT role FROM project_members WHERE project_id = ? AND user_id = ?'),
    visitorUpsert: db.prepare(`INSERT INTO visitors (project_id, uid, last_seen_at, created_at)
        VALUES (?, ?, ?, ?) ON CONFLICT (project_id, uid) DO UPDATE SET last_seen_at = excluded.last_seen_at
        RETURNING id`),
    activeConv: db.prepare(`SELECT id FROM conversations WHERE visitor_id = ?
        AND status IN ('open', 'pending') ORDER BY id DESC LIMIT 1`),
    newConv: db.prepare(`INSERT INTO conversations (project_id, visitor_id, last_message_snippet,
        last_message_timestamp, unread_count, created_at, updated_at) VALUES (?, ?, '', ?, 0, ?, ?)`),
    history: db.prepare(`SELECT * FROM (SELECT * FROM messages WHERE conversation_id = ?
        ORDER BY id DESC LIMIT 200) ORDER BY id`),
    insertMsg: db.prepare(`INSERT INTO messages (conversation_id, project_id, visitor_id, content,
        sender_id, from_customer, status, temp_id, created_at) VALUES (?, ?, ?, ?, ?, 1, 'sent', ?, ?)
        ON CONFLICT (visitor_id, temp_id) DO NOTHING RETURNING *`),
    existingMsg: db.prepare('SELECT * FROM messages WHERE visitor_id = ? AND temp_id = ?'),
    touchConv: db.prepare(`UPDATE conversations SET last_message_snippet = ?, last_message_timestamp = ?,
        unread_count = unread_count + 1, updated_at = ? WHERE id = ?`),
};


const persist = db.transaction((projectId, uid, content, tempId) => {
    const now = Date.now();
    const vid = q.visitorUpsert.get(projectId, uid, now, now).id;
    let conv = q.activeConv.get(vid);
    const convId = conv ? conv.id : q.newConv.run(projectId, vid, now, now, now).lastInsertRowid;
    const row = q.insertMsg.get(convId, projectId, vid, content, uid, tempId, now);
    if (!row) {
        return q.existingMsg.get(vid, tempId);
    }
    q.touchConv.run(content.slice(0, 100), now, now, convId);
    return row;
});



const http = createServer();
const io = new Server(http, { serveClient: false });
const online = new Map(); // visitor key -> count of sockets

io.use((socket, next) => {
    const hs = socket.handshake;
    if (hs.auth && typeof hs.auth.token === 'string') {
        const claims = verifyJwt(hs.auth.token, opts.jwtSecret);
        if (!claims) return next(new Error('Invalid JWT'));
        const user = q.user.get(Number(claims.sub));
        if (!user) return next(new Error('User not found'));
        if (typeof claims.iat !== 'number' || claims.iat * 1000 < user.tokens_valid_from) {
            return next(new Error('Token revoked'));
        }
        socket.data = { role: 'agent', userId: user.id };
        return next();
    }
    const pid = Number(hs.query.projectId);
    if (hs.query.projectId !== undefined) {
        if (!Number.isSafeInteger(pid) || pid <= 0 || !q.project.get(pid)) {
            return next(new Error('Project not found'));
        }
        const domains = q.domains.all(pid).map((r) => r.domain.toLowerCase());
        const refusal = originRefusal(hs.headers.origin, domains);
        if (refusal) return next(new Error(refusal));
        socket.data = { role: 'visitor', projectId: pid, uid: null, visitorId: null };
        return next();
    }
    return next(new Error('Unauthorized'));
});

io.on('connection', (socket) => {
    const d = socket.data;
    if (d.role === 'agent') {
        socket.on('joinProjectRoom', (p, ack) => {
            const pid = p && Number.isSafeInteger(p.projectId) ? p.projectId : 0;
            if (!pid || !q.member.get(pid, d.userId)) {
                return refuse(ack, 'joinProjectRoom', 'forbidden', 'Forbidden: You are not a member of this project.');
            }
            socket.join(`project:${pid}`);
            if (typeof ack === 'function') ack({ status: 'ok', roomName: `project:${pid}` });
        });
        return;
    }
    socket.on('identify', (p, ack) => {
        if (!p || typeof p !== 'object' || p.projectId !== d.projectId || typeof p.visitorUid !== 'string' ||
            !UID_RE.test(p.visitorUid)) {
            return refuse(ack, 'identify', 'invalid_payload', 'Invalid payload');
        }
        if (d.uid && d.uid !== p.visitorUid) return refuse(ack, 'identify', 'forbidden', 'Forbidden');
        const now = Date.now();
        d.visitorId = q.visitorUpsert.get(d.projectId, p.visitorUid, now, now).id;
        const key = `${d.projectId}:${p.visitorUid}`;
        if (!d.uid) {
            d.uid = p.visitorUid;
            socket.join(`visitor:${key}`);
            const n = (online.get(key) || 0) + 1;
            online.set(key, n);
            if (n === 1) {
                io.to(`project:${d.projectId}`).emit('visitorStatusChanged',
                    { visitorUid: d.uid, projectId: d.projectId, isOnline: true });
            }
        }
        const conv = q.activeConv.get(d.visitorId);
        const history = { messages: conv ? q.history.all(conv.id).map(widgetMessage) : [] };
        if (typeof ack === 'function') ack(history);
        socket.emit('conversationHistory', history);
    });
    socket.on('sendMessage', (p, ack) => {
        if (!d.uid) return refuse(ack, 'sendMessage', 'not_identified', 'Not identified');
        const checked = checkSendMessage(p);
        if (checked.code) return refuse(ack, 'sendMessage', checked.code, 'Invalid payload');
        const content = checked.content;
        let row;
        try {
            row = persist(d.projectId, d.uid, content, p.tempId);
        } catch (e) {
            return refuse(ack, 'sendMessage', 'unavailable', 'Service unavailable');
        }
        const sent = { tempId: p.tempId, finalMessage: widgetMessage(row) };
        if (typeof ack === 'function') ack(sent);
        io.to(`visitor:${d.projectId}:${d.uid}`).emit('messageSent', sent);
        io.to(`project:${d.projectId}`).emit('newMessage', agentMessage(row));
    });
    socket.on('disconnect', () => {
        if (!d.uid) return;
        const key = `${d.projectId}:${d.uid}`;
        const n = (online.get(key) || 1) - 1;
        if (n > 0) {
            online.set(key, n);
            return;
        }
        online.delete(key);
        io.to(`project:${d.projectId}`).emit('visitorStatusChanged',
            { visitorUid: d.uid, projectId: d.projectId, isOnline: false });
    });
});

http.listen(opts.port, '127.0.0.1', () => {
    process.stderr.write(`event=http.listen port=${http.address().port}\n`);
});
function stop() {
    io.close();
    http.close();
    db.close();
    process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
