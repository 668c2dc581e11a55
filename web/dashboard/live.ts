// The live connection: one socket.io-client socket to the same origin, authenticated with the
// access token (`auth: {token}`, read afresh on every connection attempt so a reconnect after a
// restart or a long sleep uses a valid token), joined to the room of the project on screen
// (`joinProjectRoom`, repeated after every reconnect). Room events (PROTOCOL.md section 4) are
// passed on to whoever listens; `resync` tells the views to reload what they show, because
// events sent while the socket was away are lost.
//
// A refused connection (`Invalid JWT`, `Token revoked`) is not retried by socket.io-client on
// its own: the token is refreshed and the connection tried again; without a session the
// sign-in screen takes over. Other failures back off (1 s doubling to 15 s). A server that
// closes the socket itself (a clean shutdown before a restart) is reconnected to as well.
import { io, type Socket } from 'socket.io-client';
import { getToken, refresh } from './api';
import type { LiveEvents, LiveName } from './types';

export type LiveState = 'connecting' | 'online' | 'offline';

type Listener<K extends LiveName> = (payload: LiveEvents[K]) => void;

const EVENTS: LiveName[] = [
  'newMessage',
  'visitorStatusChanged',
  'visitorIsTyping',
  'visitorContextUpdated',
  'conversationUpdated',
  'conversationDeleted',
  'visitorUpdated',
];
const STUCK_MS = 5000;
const AUTH_REFUSALS = ['Invalid JWT', 'Token revoked', 'User not found', 'Unauthorized'];

export class Live {
  private socket: Socket | null = null;
  private projectId: number | null = null;
  private listeners = new Map<string, Set<(p: never) => void>>();
  private stateListeners = new Set<(s: LiveState) => void>();
  private resyncListeners = new Set<() => void>();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryMs = 1000;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private stuckSince = 0;
  state: LiveState = 'connecting';

  constructor(private onAuthLost: () => void) {}

  // A connection whose transport is open but whose Socket.IO CONNECT got no answer for a while
  // is stuck (seen when the server refused the CONNECT in the middle of the polling → WebSocket
  // upgrade: the refusal was lost and socket.io-client's polling stayed paused): it is closed,
  // and socket.io-client connects again.
  private checkStuck(): void {
    const s = this.socket;
    const engine = (s?.io as unknown as { engine?: { readyState?: string; close(): void } } | undefined)?.engine;
    if (!s || s.connected || !engine || engine.readyState !== 'open') {
      this.stuckSince = 0;
      return;
    }
    if (!this.stuckSince) this.stuckSince = Date.now();
    else if (Date.now() - this.stuckSince > STUCK_MS) {
      this.stuckSince = 0;
      engine.close();
    }
  }

  start(): void {
    if (this.socket) return;
    this.watchdog = setInterval(() => this.checkStuck(), 1000);
    const socket = io(location.origin, {
      auth: (cb: (data: object) => void) => {
        getToken()
          .then((token) => cb({ token: token ?? '' }))
          .catch(() => cb({ token: '' }));
      },
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      timeout: 10000,
    });
    this.socket = socket;
    for (const name of EVENTS) {
      socket.on(name, (payload: unknown) => {
        for (const fn of this.listeners.get(name) ?? []) (fn as (p: unknown) => void)(payload);
      });
    }
    socket.on('connect', () => {
      this.retryMs = 1000;
      this.setState('online');
      void this.join();
    });
    socket.on('disconnect', (reason: string) => {
      this.setState('offline');
      // A server that shuts down cleanly says goodbye (a Socket.IO DISCONNECT), which
      // socket.io-client takes as "do not come back": come back anyway, it is restarting.
      if (reason === 'io server disconnect') this.retry();
    });
    socket.io.on('reconnect_attempt', () => {
      if (this.state !== 'online') this.setState('offline');
    });
    socket.on('connect_error', (err: Error) => {
      this.setState('offline');
      if (socket.active) return; // socket.io-client retries this one by itself
      if (AUTH_REFUSALS.includes(err.message)) {
        refresh()
          .then((t) => (t ? this.retry() : this.onAuthLost()))
          .catch(() => this.retry());
      } else this.retry();
    });
  }

  private retry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.socket?.connect(), this.retryMs);
    this.retryMs = Math.min(15000, this.retryMs * 2);
  }

  stop(): void {
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    this.socket?.removeAllListeners();
    this.socket?.io.removeAllListeners();
    this.socket?.disconnect();
    this.socket = null;
    this.projectId = null;
    this.setState('connecting');
  }

  // Shows the room of project pid (leaves the previous one).
  setProject(pid: number | null): void {
    if (pid === this.projectId) return;
    const old = this.projectId;
    this.projectId = pid;
    if (this.socket?.connected) {
      if (old !== null) this.socket.emit('leaveProjectRoom', { projectId: old });
      void this.join();
    }
  }

  private async join(): Promise<void> {
    const pid = this.projectId;
    const s = this.socket;
    if (pid === null || !s) return;
    try {
      const ack = (await s.timeout(10000).emitWithAck('joinProjectRoom', { projectId: pid })) as {
        status?: string;
        error?: unknown;
      };
      if (pid !== this.projectId) return;
      if (ack?.status !== 'ok') {
        // Refused: not a member (nothing to retry) or the server is busy (try again).
        const msg = JSON.stringify(ack ?? {});
        if (!/forbidden|not a member/i.test(msg) && s.connected) setTimeout(() => void this.join(), 2000);
        return;
      }
    } catch {
      if (s.connected) setTimeout(() => void this.join(), 2000);
      return;
    }
    // Events sent before this join (while the view loaded, or while the socket was away) were
    // not heard: the views reload what they show.
    for (const fn of this.resyncListeners) fn();
  }

  private setState(s: LiveState): void {
    if (s === this.state) return;
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }

  on<K extends LiveName>(name: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn as (p: never) => void);
    return () => set?.delete(fn as (p: never) => void);
  }

  onState(fn: (s: LiveState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  onResync(fn: () => void): () => void {
    this.resyncListeners.add(fn);
    return () => this.resyncListeners.delete(fn);
  }
}
