// A WHEP (RFC 9725) player: one recvonly video transceiver, the offer
// POSTed once ICE gathering is complete (the server does no trickle ICE),
// DELETE on stop, and reconnection with backoff when the connection fails.

import { ApiError, csrfHeader } from "./api";

export type PlayerState = "connecting" | "playing" | "waiting";

export interface PlayerEvents {
  /** state changes; retryIn is set (seconds) while waiting to reconnect. */
  onState: (state: PlayerState, retryIn?: number, reason?: string) => void;
}

const gatherTimeout = 3000;
const disconnectGrace = 4000;

export class WhepPlayer {
  private pc: RTCPeerConnection | null = null;
  private location = "";
  private retryTimer = 0;
  private graceTimer = 0;
  private attempt = 0;
  private stopped = false;
  private generation = 0;

  constructor(
    private readonly camera: string,
    private readonly video: HTMLVideoElement,
    private readonly events: PlayerEvents,
  ) {}

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  /** Reconnects now (a camera came back), unless already playing. */
  kick(): void {
    if (this.stopped || this.pc?.connectionState === "connected") return;
    this.attempt = 0;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.teardown();
  }

  private teardown(): void {
    this.generation++;
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.graceTimer);
    const pc = this.pc;
    this.pc = null;
    if (pc) pc.onconnectionstatechange = null;
    if (this.location) {
      // hang up first, then close: closing first ends the server's session
      // on its own and the DELETE finds nothing
      void fetch(this.location, { method: "DELETE", headers: csrfHeader(), credentials: "same-origin", keepalive: true })
        .catch(() => {})
        .finally(() => pc?.close());
      this.location = "";
    } else pc?.close();
    this.video.srcObject = null;
  }

  private async connect(): Promise<void> {
    this.teardown();
    const gen = this.generation;
    this.events.onState("connecting");
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (ev) => {
      this.video.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
      void this.video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.generation) return;
      switch (pc.connectionState) {
        case "connected":
          window.clearTimeout(this.graceTimer);
          this.attempt = 0;
          this.events.onState("playing");
          break;
        case "disconnected":
          // often heals by itself; give it a moment
          window.clearTimeout(this.graceTimer);
          this.graceTimer = window.setTimeout(() => this.retry("disconnected"), disconnectGrace);
          break;
        case "failed":
        case "closed":
          this.retry(pc.connectionState);
          break;
      }
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (gen !== this.generation) return;
      const res = await fetch(`/whep/${encodeURIComponent(this.camera)}`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", ...csrfHeader() },
        body: pc.localDescription?.sdp ?? "",
        credentials: "same-origin",
      });
      if (res.status !== 201) throw new ApiError(res.status, (await res.text()).slice(0, 200));
      const loc = res.headers.get("Location");
      if (loc) this.location = new URL(loc, location.href).pathname;
      const answer = await res.text();
      if (gen !== this.generation) return;
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
    } catch (err) {
      if (gen !== this.generation) return;
      this.retry(err instanceof Error ? err.message : String(err));
    }
  }

  private retry(reason: string): void {
    if (this.stopped) return;
    this.teardown();
    const delay = Math.min(30, 2 ** this.attempt) * 1000;
    this.attempt++;
    this.events.onState("waiting", Math.round(delay / 1000), reason);
    this.retryTimer = window.setTimeout(() => void this.connect(), delay);
  }
}

function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = window.setTimeout(done, gatherTimeout);
    function done() {
      window.clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}
