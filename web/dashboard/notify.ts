// Attention while the tab is hidden: each visitor message that arrives then adds one to a badge
// in the title ("(3) Inbox · Shop · Parley") and on the favicon (a red dot), and plays a short
// two-note chime when sound is on (the agent's choice, kept in localStorage; on by default).
// Everything is cleared as soon as the tab is visible again.

const SOUND_KEY = 'parley.sound';

let baseTitle = 'Parley';
let unseen = 0;
let audio: AudioContext | null = null;

function favicon(dot: boolean): string {
  const bubble =
    "<rect width='32' height='32' rx='9' fill='%234f46e5'/>" +
    "<path d='M8 10.5C8 9.1 9.1 8 10.5 8h8c1.4 0 2.5 1.1 2.5 2.5v5c0 1.4-1.1 2.5-2.5 2.5H13l-3.5 3v-3.1A2.5 2.5 0 0 1 8 15.5z' fill='white'/>";
  const red = dot ? "<circle cx='25' cy='7' r='6.5' fill='%23ef4444' stroke='white' stroke-width='2'/>" : '';
  return `data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>${bubble}${red}</svg>`;
}

function render(): void {
  document.title = unseen > 0 ? `(${unseen > 99 ? '99+' : unseen}) ${baseTitle}` : baseTitle;
  let link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
  if (!link) {
    link = document.createElement('link');
    link.rel = 'icon';
    document.head.appendChild(link);
  }
  const href = favicon(unseen > 0);
  if (link.getAttribute('href') !== href) link.setAttribute('href', href);
}

export const isHidden = (): boolean => document.visibilityState === 'hidden';

export function setTitle(t: string): void {
  baseTitle = t ? `${t} · Parley` : 'Parley';
  render();
}

export const soundOn = (): boolean => localStorage.getItem(SOUND_KEY) !== '0';

export function setSound(on: boolean): void {
  try {
    localStorage.setItem(SOUND_KEY, on ? '1' : '0');
  } catch {
    // storage refused: the choice lasts for this page only
  }
}

function chime(): void {
  if (!soundOn()) return;
  try {
    audio ??= new AudioContext();
    if (audio.state === 'suspended') void audio.resume();
    const t0 = audio.currentTime;
    for (const [i, f] of [880, 1318.5].entries()) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.type = 'sine';
      o.frequency.value = f;
      const t = t0 + i * 0.12;
      g.gain.setValueAtTime(0.0001, t);
      g.gain.exponentialRampToValueAtTime(0.12, t + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + 0.35);
      o.connect(g).connect(audio.destination);
      o.start(t);
      o.stop(t + 0.4);
    }
  } catch {
    // no audio output: the title badge is enough
  }
}

// A visitor message arrived: badge and chime when the tab is hidden.
export function attention(): void {
  if (!isHidden()) return;
  unseen += 1;
  render();
  chime();
}

export const unseenCount = (): number => unseen;

export function initNotify(): void {
  document.addEventListener('visibilitychange', () => {
    if (!isHidden() && unseen) {
      unseen = 0;
      render();
    }
  });
  // Browsers start audio only after a user gesture: prepare it on the first one.
  const unlock = (): void => {
    try {
      audio ??= new AudioContext();
      void audio.resume();
    } catch {
      // no audio
    }
    removeEventListener('pointerdown', unlock);
    removeEventListener('keydown', unlock);
  };
  addEventListener('pointerdown', unlock);
  addEventListener('keydown', unlock);
  render();
}
