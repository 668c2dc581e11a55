// The parts of the chat flow both Node.js peers share (chat-node.mjs on better-sqlite3,
// chat-node-scale.mjs on pg + the Redis adapter): payload shapes of PROTOCOL.md section 8, the
// HS256 check of agent tokens, the Origin rule of section 2, the sendMessage checks and the
// refusal shape of section 5. Storage and fan-out stay in each peer.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const UID_RE = /^[A-Za-z0-9_-]{8,64}$/;

export function widgetMessage(r) {
    return { id: r.id, conversationId: r.conversation_id, content: r.content, senderId: r.sender_id,
        fromCustomer: !!r.from_customer, status: r.status, createdAt: new Date(r.created_at).toISOString() };
}

export function agentMessage(r) {
    return { ...widgetMessage(r), visitorId: r.visitor_id, userId: r.user_id };
}

// The token's claims when it is an unexpired HS256 JWT signed with secret, else null.
export function verifyJwt(token, secret) {
    if (typeof token !== 'string' || token.length > 4096) return null;
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    let header, claims;
    try {
        header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
        claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
        return null;
    }
    if (!header || header.alg !== 'HS256') return null;
    const want = Buffer.from(createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`)
        .digest().toString('base64url'));
    const got = Buffer.from(parts[2]);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) return null;
    return claims;
}

// null when the Origin header passes the project's whitelisted domains, else the refusal text.
export function originRefusal(origin, domains) {
    if (domains.length === 0) return 'No whitelisted domains';
    if (!origin) return 'Missing origin';
    let host;
    try {
        host = new URL(origin).hostname.toLowerCase();
    } catch {
        return 'Invalid origin';
    }
    const ok = domains.some((d) => (d.startsWith('*.') ? host.endsWith(d.slice(1)) : host === d));
    return ok ? null : 'Origin not whitelisted';
}

// sendMessage's payload: {content (trimmed), tempId} or {code} of the refusal.
export function checkSendMessage(p) {
    if (!p || typeof p !== 'object' || typeof p.content !== 'string' || typeof p.tempId !== 'string') {
        return { code: 'invalid_payload' };
    }
    const content = p.content.trim();
    const chars = [...content].length;
    const tchars = [...p.tempId].length;
    if (chars < 1 || chars > 5000 || tchars < 1 || tchars > 64) {
        return { code: chars > 5000 ? 'too_large' : 'invalid_payload' };
    }
    return { content, tempId: p.tempId };
}

export function refuse(ack, event, code, message) {
    if (typeof ack === 'function') ack({ status: 'error', code, message, event });
}
