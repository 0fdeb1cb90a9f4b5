// The alert beep (WebAudio, no sound files) and its mute switch.

const muteKey = "flowwatch.mute";
let muted = localStorage.getItem(muteKey) === "1";
let ctx: AudioContext | null = null;
const listeners = new Set<() => void>();

export const isMuted = () => muted;

export function setMuted(v: boolean): void {
  muted = v;
  localStorage.setItem(muteKey, v ? "1" : "0");
  listeners.forEach((fn) => fn());
}

export function onMuteChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Browsers start audio only after a user gesture: unlock on the first one. */
export function unlockAudio(): void {
  const unlock = () => {
    ctx ??= new AudioContext();
    void ctx.resume();
  };
  window.addEventListener("pointerdown", unlock, { once: true });
  window.addEventListener("keydown", unlock, { once: true });
}

/** Two short tones; higher and three times for red. */
export function beep(level: string): void {
  if (muted) return;
  ctx ??= new AudioContext();
  const c = ctx;
  const freq = level === "red" ? 1046 : level === "orange" ? 880 : 740;
  const times = level === "red" ? 3 : 2;
  for (let i = 0; i < times; i++) {
    const start = c.currentTime + i * 0.22;
    const osc = c.createOscillator();
    const gain = c.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.18);
    osc.connect(gain).connect(c.destination);
    osc.start(start);
    osc.stop(start + 0.2);
  }
}
