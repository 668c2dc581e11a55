// The conversation: the Socket.IO connection (official socket.io-client), identify on every
// (re)connect, history, optimistic sending with tempIds, the outbox of unacknowledged messages
// (kept in localStorage so it survives a reload, re-sent after every reconnect: the server's
// idempotency on (project, visitorUid, tempId) makes each appear once), refusals, agent
// replies and typing, our own typing and navigation events, and the unread count.
//
// The view is told what to show through ChatView; it calls back through the returned Chat.
import { io } from 'socket.io-client';
import { sessionMetadata, MAX_CONTEXT_URL } from './session';
import type { Conn, Item, Status, WidgetMessage } from './types';
import { load, save, uuid, warn } from './util';

export interface ChatView {
  render(items: Item[]): void;
  conn(c: Conn): void;
  typing(name: string | null): void;
  unread(n: number): void;
  visible(): boolean; // the window is open and the page is visible
}

export interface Chat {
  send(text: string): void;
  retry(tempId: string): void;
  typing(): void; // the visitor typed something
  stopTyping(): void;
  read(): void; // the window was opened: agent messages shown so far are read
  navigated(): void; // location.href changed
}

export interface ChatOptions {
  base: string; // server origin
  path: string; // Socket.IO path on it
  pid: number;
  uid: string;
  userHash?: string; // identity verification (PROTOCOL.md section 7)
  agentName: string; // fallback name for agentIsTyping
}

interface Pending {
  t: string; // tempId
  text: string;
  at: string;
  f?: string; // refusal code once failed (kept, not re-sent by itself)
}

const ACK_MS = 20000;
const TYPING_EVERY_MS = 2500; // one isTyping:true at most this often (server allows 2/s)
const TYPING_IDLE_MS = 3000;
const CONTEXT_GAP_MS = 600;

const isMsg = (m: unknown): m is WidgetMessage =>
  !!m && typeof (m as WidgetMessage).id === 'number' && typeof (m as WidgetMessage).content === 'string';

const fromMsg = (m: WidgetMessage, k?: string): Item => ({
  k: k || `m${m.id}`,
  id: m.id,
  text: m.content,
  mine: !!m.fromCustomer,
  st: (m.status as Status) || 'sent',
  at: m.createdAt,
  cid: m.conversationId,
});

const fromPending = (p: Pending): Item => ({
  k: `t${p.t}`,
  t: p.t,
  text: p.text,
  mine: true,
  st: p.f ? 'failed' : 'sending',
  at: p.at,
  err: p.f,
});

export function startChat(o: ChatOptions, view: ChatView): Chat {
  const prefix = `parley:${o.pid}:${o.uid}:`;
  const stored = (): Pending[] => {
    const v = load<Pending[]>(`${prefix}outbox`);
    return Array.isArray(v) ? v.filter((p) => p && typeof p.t === 'string' && typeof p.text === 'string') : [];
  };
  let outbox = stored();
  let lastRead = Number(load<number>(`${prefix}read`)) || 0;
  let items: Item[] = outbox.map(fromPending);
  let ready = false; // connected and identified
  let unreadN = -1;
  let kicks = 0;
  const sentOn = new Set<string>(); // tempIds emitted on the current connection
  const done = new Set<string>(); // tempIds the server confirmed

  // The outbox is shared by the tabs of this browser: keep the entries other tabs added
  // (each tab adopts them when it loads) and drop the ones confirmed meanwhile.
  const persist = (): void => {
    const mine = new Set(outbox.map((p) => p.t));
    const other = stored().filter((p) => !mine.has(p.t) && !done.has(p.t));
    const all = outbox.concat(other);
    save(`${prefix}outbox`, all.length ? all : undefined);
  };

  const socket = io(o.base, { path: o.path, query: { projectId: String(o.pid) }, transports: ['polling', 'websocket'] });

  function update(): void {
    view.render(items);
    lastRead = Math.max(lastRead, Number(load<number>(`${prefix}read`)) || 0); // read in another tab
    if (view.visible()) {
      for (const i of items) if (!i.mine && i.id && i.id > lastRead) lastRead = i.id;
      save(`${prefix}read`, lastRead);
    }
    const n = items.filter((i) => !i.mine && i.id && i.id > lastRead).length;
    if (n !== unreadN) view.unread((unreadN = n));
  }

  function history(msgs: unknown): void {
    if (!Array.isArray(msgs)) return;
    const keys = new Map<number, string>();
    for (const i of items) if (i.id) keys.set(i.id, i.k);
    items = msgs
      .filter(isMsg)
      .map((m) => fromMsg(m, keys.get(m.id)))
      .concat(items.filter((i) => i.id == null));
    update();
  }

  // The server confirmed tempId as message fm (ack or messageSent, maybe from another tab).
  function resolve(t: unknown, fm: unknown): void {
    if (typeof t !== 'string' || !isMsg(fm)) return;
    done.add(t);
    outbox = outbox.filter((p) => p.t !== t);
    persist();
    const i = items.findIndex((x) => x.t === t);
    const dup = items.some((x, j) => j !== i && x.id === fm.id);
    if (i >= 0) {
      if (dup) items.splice(i, 1);
      else items[i] = { ...fromMsg(fm, items[i].k), t };
    } else if (!dup) items.push(fromMsg(fm));
    update();
  }

  function fail(t: string, code: string): void {
    const p = outbox.find((x) => x.t === t);
    if (!p) return;
    p.f = code || 'error';
    persist();
    items = items.map((i) => (i.t === t ? fromPending(p) : i));
    update();
  }

  function transmit(p: Pending): void {
    if (!ready || p.f || sentOn.has(p.t)) return;
    sentOn.add(p.t);
    const body: Record<string, unknown> = { content: p.text, tempId: p.t };
    if (!items.some((i) => i.cid)) body.sessionMetadata = sessionMetadata();
    socket.timeout(ACK_MS).emit('sendMessage', body, (err: unknown, res?: { error?: { code?: string }; tempId?: string; finalMessage?: unknown }) => {
      if (err) {
        // Disconnected: re-sent after the next identify. Still connected: the server is stuck.
        if (socket.connected) fail(p.t, 'timeout');
      } else if (res && res.error) fail(p.t, String(res.error.code));
      else if (res) resolve(res.tempId || p.t, res.finalMessage);
    });
  }

  // ---- connection ------------------------------------------------------------------------

  socket.on('connect', () => {
    ready = false;
    sentOn.clear();
    const id: Record<string, unknown> = { projectId: o.pid, visitorUid: o.uid };
    if (o.userHash) id.userHash = o.userHash;
    socket.timeout(ACK_MS).emit('identify', id, (err: unknown, res?: { error?: { message?: string }; messages?: unknown }) => {
      if (err) {
        if (socket.connected) socket.disconnect().connect(); // no answer: start over
        return;
      }
      if (res && res.error) {
        warn(`the server refused this visitor: ${res.error.message}`);
        view.conn('offline');
        socket.disconnect();
        return;
      }
      ready = true;
      kicks = 0;
      view.conn('online');
      history(res && res.messages);
      for (const p of outbox) transmit(p);
      ctxSent = '';
      navigated();
    });
  });

  socket.on('connect_error', (e: Error) => {
    if (socket.active) view.conn('reconnecting');
    else {
      warn(`the server refused the chat connection: ${e.message}`);
      view.conn('offline');
    }
  });

  socket.on('disconnect', (reason: string) => {
    ready = false;
    typingOn = false;
    view.typing(null);
    if (reason === 'io client disconnect') return; // we closed it (refused identify)
    view.conn('reconnecting');
    // The server ended the session (restart, shutdown): socket.io-client does not come back
    // by itself after that, so reconnect with a growing delay.
    if (reason === 'io server disconnect') {
      setTimeout(() => socket.connect(), Math.min(30000, 1000 * 2 ** kicks++) * (0.5 + Math.random()));
    }
  });

  socket.on('conversationHistory', (p?: { messages?: unknown }) => history(p && p.messages));
  socket.on('messageSent', (p?: { tempId?: unknown; finalMessage?: unknown }) => p && resolve(p.tempId, p.finalMessage));
  socket.on('agentReplied', (m: unknown) => {
    view.typing(null);
    if (isMsg(m) && !items.some((i) => i.id === m.id)) {
      items.push(fromMsg(m));
      update();
    }
  });
  socket.on('agentIsTyping', (p?: { agentName?: unknown; isTyping?: unknown }) => {
    const name = p && typeof p.agentName === 'string' && p.agentName.trim() ? p.agentName.trim() : o.agentName;
    view.typing(p && p.isTyping ? name.slice(0, 80) : null);
  });
  socket.on('exception', (p?: { event?: string; tempId?: unknown; code?: string }) => {
    if (p && p.event === 'sendMessage' && typeof p.tempId === 'string') fail(p.tempId, String(p.code));
  });

  document.addEventListener('visibilitychange', update);
  addEventListener('storage', (e) => e.key === `${prefix}read` && update());

  // ---- typing and navigation -------------------------------------------------------------

  let typingOn = false;
  let typingAt = 0;
  let typingTimer: ReturnType<typeof setTimeout> | undefined;

  function stopTyping(): void {
    clearTimeout(typingTimer);
    if (typingOn && ready) socket.emit('visitorIsTyping', { isTyping: false });
    typingOn = false;
  }

  let ctxSent = '';
  let ctxAt = 0;
  let ctxTimer: ReturnType<typeof setTimeout> | undefined;

  // Sends the current URL, at most one event per CONTEXT_GAP_MS, always the latest URL.
  function navigated(): void {
    clearTimeout(ctxTimer);
    ctxTimer = setTimeout(() => {
      const u = location.href.slice(0, MAX_CONTEXT_URL);
      if (ready && u !== ctxSent) {
        ctxSent = u;
        ctxAt = Date.now();
        socket.emit('updateContext', { currentUrl: u });
      }
    }, Math.max(100, ctxAt + CONTEXT_GAP_MS - Date.now()));
  }

  update();

  return {
    send(text: string): void {
      const p: Pending = { t: uuid(), text, at: new Date().toISOString() };
      outbox.push(p);
      persist();
      items.push(fromPending(p));
      update();
      stopTyping();
      transmit(p);
    },
    retry(t: string): void {
      const p = outbox.find((x) => x.t === t);
      if (!p) return;
      delete p.f;
      persist();
      sentOn.delete(t);
      items = items.map((i) => (i.t === t ? fromPending(p) : i));
      update();
      transmit(p);
    },
    typing(): void {
      if (!ready) return;
      const now = Date.now();
      if (!typingOn || now - typingAt > TYPING_EVERY_MS) {
        socket.emit('visitorIsTyping', { isTyping: true });
        typingOn = true;
        typingAt = now;
      }
      clearTimeout(typingTimer);
      typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
    },
    stopTyping,
    read: update,
    navigated,
  };
}
