// A QR code on a <canvas>, for an authenticator app to scan. The encoder
// (qrcode-generator, MIT) is loaded only when a code is drawn, so the main
// bundle stays small; a canvas needs neither a data: URL nor an inline
// style, which the console's Content-Security-Policy keeps out.

/** Light modules around the code on every side: the QR standard asks for 4. */
export const quietZone = 4;

/** The CSS size of one module; phones' cameras read 3 px and more well. */
const minModulePx = 4;
/** About how wide the code is drawn, in CSS pixels, margin included. */
const targetPx = 232;

/** The modules of an encoded text: size × size, dark or light. */
export interface QrMatrix {
  size: number;
  dark(row: number, col: number): boolean;
}

/**
 * Encodes text (its UTF-8 bytes, in byte mode) with error correction
 * level M, in the smallest version that holds it.
 */
export async function qrMatrix(text: string): Promise<QrMatrix> {
  const { default: qrcode } = await import("qrcode-generator");
  const qr = qrcode(0, "M");
  // The library takes the low 8 bits of each UTF-16 unit in byte mode:
  // hand it the UTF-8 bytes one per unit.
  let bytes = "";
  for (const b of new TextEncoder().encode(text)) bytes += String.fromCharCode(b);
  qr.addData(bytes, "Byte");
  qr.make();
  return { size: qr.getModuleCount(), dark: (r, c) => qr.isDark(r, c) };
}

/**
 * Draws m on canvas, dark on white whatever the page's theme, with the
 * quiet zone, in whole device pixels per module; sets the CSS width (the
 * height follows the canvas's square ratio).
 */
export function drawQr(canvas: HTMLCanvasElement, m: QrMatrix): void {
  const total = m.size + 2 * quietZone;
  const cssModule = Math.max(minModulePx, Math.floor(targetPx / total));
  const scale = Math.max(1, Math.ceil(window.devicePixelRatio || 1));
  const cell = cssModule * scale;
  canvas.width = canvas.height = total * cell;
  canvas.style.width = `${total * cssModule}px`;
  canvas.dataset.modules = String(m.size);
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("no 2D canvas");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#000";
  for (let r = 0; r < m.size; r++) {
    for (let c = 0; c < m.size; c++) {
      if (m.dark(r, c)) ctx.fillRect((c + quietZone) * cell, (r + quietZone) * cell, cell, cell);
    }
  }
}
