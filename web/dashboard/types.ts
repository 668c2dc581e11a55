// The shapes the dashboard receives from the server: docs/http-api.md for the HTTP API and
// PROTOCOL.md sections 4 and 8 (plus docs/protocol-decisions.md) for the Socket.IO room events.

export interface User {
  id: number;
  email: string;
  fullName: string;
  createdAt: string;
}

export type Theme = 'light' | 'dark';
export type Position = 'bottom-right' | 'bottom-left';
export type HistoryVisibility = 'limit_to_active' | 'forever';

export interface WidgetSettings {
  theme: Theme;
  headerText: string;
  position: Position;
  primaryColor: string;
  welcomeMessage: string;
  agentDisplayName: string;
  offlineMessage: string;
  autoOpenDelay: number;
  historyVisibility: HistoryVisibility;
  companyLogoUrl: string | null;
}

export type Role = 'manager' | 'agent';

export interface Project {
  id: number;
  name: string;
  whitelistedDomains: string[];
  widgetSettings: WidgetSettings;
  role: Role;
  createdAt: string;
  updatedAt: string;
}

export interface Member {
  id: number;
  email: string;
  fullName: string;
  role: Role;
}

export interface Visitor {
  id: number;
  uid: string;
  name: string | null;
  email: string | null;
  currentUrl: string | null;
  isOnline: boolean;
  lastSeenAt?: string;
  createdAt?: string;
}

export type Status = 'open' | 'pending' | 'solved' | 'spam';

export interface Conversation {
  id: number;
  projectId: number;
  visitorId: number;
  visitor?: Visitor;
  assigneeId: number | null;
  lastMessageSnippet: string | null;
  lastMessageTimestamp: string | null;
  status: Status;
  unreadCount: number;
  createdAt: string;
  updatedAt: string;
  metadata: Record<string, unknown> | null;
}

export interface Message {
  id: number;
  conversationId: number;
  content: string;
  senderId: string | null;
  fromCustomer: boolean;
  status: string;
  createdAt: string;
  visitorId?: number;
  userId?: number | null;
}

export interface Page<T> {
  data: T[];
  total: number;
  page: number;
  limit: number;
}

export interface MessagePage {
  data: Message[];
  hasMore: boolean;
}

// Room events (agent sockets).
export interface LiveEvents {
  newMessage: Message;
  visitorStatusChanged: { visitorUid: string; projectId: number; isOnline: boolean };
  visitorIsTyping: { conversationId: number | null; visitorUid?: string; isTyping: boolean };
  visitorContextUpdated: { conversationId: number | null; visitorUid?: string; currentUrl: string };
  conversationUpdated: { conversationId: number; fields: Partial<Conversation> };
  conversationDeleted: { conversationId: number };
  visitorUpdated: Partial<Visitor> & { visitorId?: number; visitorUid?: string };
}

export type LiveName = keyof LiveEvents;

export const MAX_REPLY = 5000;
