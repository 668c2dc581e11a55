// The Node.js baseline for the benchmark: the official `socket.io` v4 server (from the
// project's node_modules) with the same behaviour as examples/echo, so bench/run.sh can run the
// same load against both in the same run and report ratios.
//
//   node bench/echo-node.mjs [--port N] [--ping-interval MS] [--ping-timeout MS]
//                            [--connect-timeout MS] [--max-payload BYTES]
//
// Socket.IO at /socket.io/ with namespaces `/` and `/custom`: on connection it emits `auth` with
// the handshake auth object; `message` is answered by emitting `message-back` with the same
// arguments; `message-with-ack` is acknowledged with the same arguments. On `/`, an auth object
// with {"refuse": "<text>"} is refused with that message (as examples/echo does). A plain
// Engine.IO echo is not mounted: the benchmark does not use it.
// Once listening it writes `event=http.listen port=N` on stderr, like the C servers.
// SIGINT/SIGTERM close the server and exit.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

function parseArgs(argv) {
    const opts = {
        port: 3000,
        pingInterval: 25000,
        pingTimeout: 20000,
        connectTimeout: 45000,
        maxPayload: 1000000,
    };
    const flags = {
        '--port': 'port',
        '--ping-interval': 'pingInterval',
        '--ping-timeout': 'pingTimeout',
        '--connect-timeout': 'connectTimeout',
        '--max-payload': 'maxPayload',
    };
    for (let i = 2; i < argv.length; i++) {
        const key = flags[argv[i]];
        const value = Number(argv[i + 1]);
        if (!key || !Number.isInteger(value) || value < 0) {
            process.stderr.write(`echo-node: bad argument ${argv[i]} ${argv[i + 1] ?? ''}\n`);
            process.exit(2);
        }
        opts[key] = value;
        i++;
    }
    return opts;
}

const opts = parseArgs(process.argv);
const httpServer = createServer();
const io = new Server(httpServer, {
    pingInterval: opts.pingInterval,
    pingTimeout: opts.pingTimeout,
    connectTimeout: opts.connectTimeout,
    maxHttpBufferSize: opts.maxPayload,
    serveClient: false,
    cors: { origin: true, credentials: true },
});

function attachEcho(nsp) {
    nsp.on('connection', (socket) => {
        socket.emit('auth', socket.handshake.auth ?? {});
        socket.on('message', (...args) => {
            socket.emit('message-back', ...args);
        });
        socket.on('message-with-ack', (...args) => {
            const ack = args.pop();
            if (typeof ack === 'function') {
                ack(...args);
            }
        });
    });
}

io.of('/').use((socket, next) => {
    const auth = socket.handshake.auth;
    if (auth && typeof auth.refuse === 'string') {
        next(new Error(auth.refuse));
        return;
    }
    next();
});
attachEcho(io.of('/'));
attachEcho(io.of('/custom'));

httpServer.listen(opts.port, '127.0.0.1', () => {
    const { port } = httpServer.address();
    process.stderr.write(`${new Date().toISOString()} level=info event=http.listen port=${port}\n`);
});

function stop() {
    io.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
