// Presentation helpers: times ("now", "5m", "14:05", "Mon", "12 Mar"), friendly visitor names
// derived from the visitor uid (an anonymous visitor is "Amber Otter", the same in every view
// and on every reload), avatar colours, a browser/OS summary of a user agent, and the text
// colour readable on a chosen primary colour.
import type { Visitor } from './types';

const ADJ = [
  'Amber', 'Azure', 'Bright', 'Calm', 'Coral', 'Crimson', 'Dusky', 'Emerald', 'Gentle', 'Golden',
  'Hazel', 'Indigo', 'Ivory', 'Jade', 'Lively', 'Lucky', 'Maple', 'Misty', 'Noble', 'Olive',
  'Quiet', 'Rapid', 'Rosy', 'Ruby', 'Sage', 'Silver', 'Sunny', 'Swift', 'Teal', 'Velvet',
  'Violet', 'Witty',
];
const ANIMAL = [
  'Badger', 'Bear', 'Beaver', 'Crane', 'Dolphin', 'Falcon', 'Ferret', 'Finch', 'Fox', 'Gecko',
  'Heron', 'Ibis', 'Koala', 'Lemur', 'Lynx', 'Marten', 'Moose', 'Otter', 'Owl', 'Panda',
  'Puffin', 'Quokka', 'Raven', 'Robin', 'Seal', 'Sparrow', 'Stork', 'Swan', 'Tapir', 'Tiger',
  'Walrus', 'Wren',
];
const COLORS = [
  '#e8590c', '#d6336c', '#ae3ec9', '#7048e8', '#4263eb', '#1c7ed6', '#1098ad', '#0ca678',
  '#37b24d', '#74b816', '#f08c00', '#c2255c',
];

function hash(s: string): number {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) {
    x ^= s.charCodeAt(i);
    x = Math.imul(x, 16777619);
  }
  return x >>> 0;
}

export function visitorName(v: Pick<Visitor, 'uid' | 'name' | 'email'> | undefined): string {
  if (!v) return 'Visitor';
  if (v.name && v.name.trim()) return v.name.trim();
  if (v.email && v.email.trim()) return v.email.trim();
  const x = hash(v.uid || '');
  return `${ADJ[x % ADJ.length]} ${ANIMAL[(x >>> 8) % ANIMAL.length]}`;
}

export function initials(name: string): string {
  const parts = name.trim().split(/[\s@._-]+/).filter(Boolean);
  const a = Array.from(parts[0] ?? '?')[0] ?? '?';
  const b = parts.length > 1 ? Array.from(parts[parts.length - 1])[0] ?? '' : '';
  return (a + b).toUpperCase();
}

export const colorFor = (key: string): string => COLORS[hash(key) % COLORS.length];

const valid = (d: Date): boolean => !isNaN(d.getTime());

export function clock(iso: string | null | undefined): string {
  const d = new Date(iso ?? '');
  return valid(d) ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
}

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

// The short time of a list row: "now", "4m", "14:05" (today), "Yesterday", "Mon", "12 Mar".
export function shortTime(iso: string | null | undefined, now = new Date()): string {
  const d = new Date(iso ?? '');
  if (!valid(d)) return '';
  const s = (now.getTime() - d.getTime()) / 1000;
  if (s < 45) return 'now';
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))}m`;
  if (sameDay(d, now)) return clock(iso);
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (sameDay(d, y)) return 'Yesterday';
  if (s < 6 * 86400) return d.toLocaleDateString([], { weekday: 'short' });
  return d.toLocaleDateString([], { day: 'numeric', month: 'short' });
}

// "Today", "Yesterday", "Monday, 12 March" (a day separator in the message list).
export function dayLabel(iso: string, now = new Date()): string {
  const d = new Date(iso);
  if (!valid(d)) return '';
  if (sameDay(d, now)) return 'Today';
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (sameDay(d, y)) return 'Yesterday';
  const opts: Intl.DateTimeFormatOptions = { weekday: 'long', day: 'numeric', month: 'long' };
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString([], opts);
}

// "just now", "5 minutes ago", "3 hours ago", "2 days ago", then a date.
export function ago(iso: string | null | undefined, now = new Date()): string {
  const d = new Date(iso ?? '');
  if (!valid(d)) return '';
  const s = Math.max(0, (now.getTime() - d.getTime()) / 1000);
  const n = (v: number, unit: string): string => `${v} ${unit}${v === 1 ? '' : 's'} ago`;
  if (s < 60) return 'just now';
  if (s < 3600) return n(Math.round(s / 60), 'minute');
  if (s < 86400) return n(Math.round(s / 3600), 'hour');
  if (s < 7 * 86400) return n(Math.round(s / 86400), 'day');
  return dateTime(iso);
}

export function dateTime(iso: string | null | undefined): string {
  const d = new Date(iso ?? '');
  return valid(d)
    ? d.toLocaleString([], { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' })
    : '';
}

export function dateOnly(iso: string | null | undefined): string {
  const d = new Date(iso ?? '');
  return valid(d) ? d.toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' }) : '';
}

// The visitor's local time in their time zone ("16:42"), or '' when the zone is unknown.
export function timeIn(zone: string): string {
  try {
    return new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', timeZone: zone });
  } catch {
    return '';
  }
}

// "Chrome 120 on macOS" from a user agent string (best effort, never throws).
export function browserSummary(ua: string): string {
  const pick = (re: RegExp, name: string): string | null => {
    const m = re.exec(ua);
    return m ? `${name} ${m[1]}` : null;
  };
  const browser =
    pick(/Edg\/(\d+)/, 'Edge') ||
    pick(/OPR\/(\d+)/, 'Opera') ||
    pick(/Firefox\/(\d+)/, 'Firefox') ||
    pick(/(?:Chrome|Chromium|CriOS)\/(\d+)/, 'Chrome') ||
    pick(/Version\/(\d+)[\d.]* .*Safari/, 'Safari') ||
    'Unknown browser';
  const os = /iPhone|iPad/.test(ua)
    ? 'iOS'
    : /Android/.test(ua)
      ? 'Android'
      : /Mac OS X|Macintosh/.test(ua)
        ? 'macOS'
        : /Windows/.test(ua)
          ? 'Windows'
          : /CrOS/.test(ua)
            ? 'ChromeOS'
            : /Linux/.test(ua)
              ? 'Linux'
              : '';
  return os ? `${browser} on ${os}` : browser;
}

// A URL shown short: host + path ("shop.example.com/cart"), the full one goes in a title.
export function shortUrl(u: string): string {
  try {
    const url = new URL(u);
    const p = url.pathname === '/' ? '' : url.pathname;
    return url.host + p + url.search + url.hash;
  } catch {
    return u;
  }
}

// Text colour readable on a #rrggbb background.
export function onColor(c: string): string {
  const m = /^#([0-9a-f]{6})$/i.exec(c);
  if (!m) return '#fff';
  const n = parseInt(m[1], 16);
  const yiq = ((n >> 16) * 299 + ((n >> 8) & 255) * 587 + (n & 255) * 114) / 1000;
  return yiq > 160 ? '#111827' : '#fff';
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
