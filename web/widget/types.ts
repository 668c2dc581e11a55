// Shapes the widget exchanges with the server (PROTOCOL.md section 8) and its own view model.

// Widget settings as GET /api/v1/public/projects/:id/settings returns them, after
// normalise() in settings.ts has replaced every missing or unusable value with a default.
export interface Settings {
  theme: 'light' | 'dark';
  headerText: string;
  position: 'bottom-right' | 'bottom-left';
  primaryColor: string;
  welcomeMessage: string;
  agentDisplayName: string;
  offlineMessage: string;
  autoOpenDelay: number; // seconds; 0 = never open by itself
  companyLogoUrl: string | null; // http(s) only
}

// A message as the server sends it (conversationHistory, messageSent, agentReplied).
export interface WidgetMessage {
  id: number;
  conversationId: number | null;
  content: string;
  senderId: string;
  fromCustomer: boolean;
  status: string;
  createdAt: string;
}

export type Status = 'sending' | 'sent' | 'delivered' | 'read' | 'failed';

// One row of the message list. `k` is the stable key of its DOM element: a message the visitor
// typed keeps the key of its optimistic row (t<tempId>) after the server confirms it.
export interface Item {
  k: string;
  id?: number; // server id, once known
  t?: string; // tempId, for the visitor's own messages sent from this browser
  text: string;
  mine: boolean;
  st: Status;
  at: string; // ISO-8601
  cid?: number | null; // conversation id
  err?: string; // refusal code of a failed message
}

// Connection state shown in the window: online, (re)connecting, or refused for good.
export type Conn = 'connecting' | 'online' | 'reconnecting' | 'offline';

// Content limit in Unicode code points after trimming (protocol-decisions.md).
export const MAX_CHARS = 5000;
