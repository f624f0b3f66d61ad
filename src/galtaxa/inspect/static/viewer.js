/* galtaxa inspect: the large view of one galaxy, drawn from its pixel values (as DS9 or the Legacy Survey viewer).

   The server sends float32 values, channels first (GET /api/pixels/<row>?source=native|stamp|polar, shape in the
   X-Pixels-Shape header).  Here they are mapped to grey levels (or an RGB composite for three channels) by a
   display cut -- min-max, or a percentile range clipping (100 - p) / 2 % at each end, as DS9's "99.5%" -- and a
   stretch (linear, asinh, log, sqrt, as DS9's), drawn on a canvas with zoom (wheel about the cursor, buttons,
   fit, 1:1) and pan (drag); the value of the pixel under the cursor is read from the array, and a scale bar in
   arcsec is drawn on the native cutout when the pixel scale is known. */
"use strict";

const VIEWER_CUTS = [["minmax", "min–max"], ["99.9", "99.9%"], ["99.5", "99.5%"], ["99", "99%"], ["98", "98%"],
  ["95", "95%"]];
const VIEWER_STRETCHES = ["linear", "asinh", "log", "sqrt"];
const NICE_ARCSEC = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600];
const ZOOM_MIN = 0.05;
const ZOOM_MAX = 128;

/* numpy.percentile's default ('linear') on sorted finite values. */
function percentileSorted(sorted, q) {
  const n = sorted.length;
  if (!n) return NaN;
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function stretchValue(t, name) {
  if (name === "asinh") return Math.asinh(10 * t) / Math.asinh(10);
  if (name === "log") return Math.log10(1 + 1000 * t) / Math.log10(1001);
  if (name === "sqrt") return Math.sqrt(t);
  return t;
}

/* A value as an astronomer reads it: 4 significant digits, exponent beyond 1e5 or below 1e-3. */
function formatValue(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+inf" : "-inf";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(3);
  if (Number.isInteger(v) && a < 1e5) return String(v);
  return Number(v.toPrecision(4)).toString();
}

function niceScaleBar(arcsecPerPx, zoom) {
  /* the longest round length whose bar is at most 160 screen px (at least 30 when possible) */
  const pxPerArcsec = zoom / arcsecPerPx;
  let best = null;
  for (const L of NICE_ARCSEC) {
    const px = L * pxPerArcsec;
    if (px <= 160) best = { arcsec: L, px };
  }
  if (!best || best.px < 30) {
    const L = NICE_ARCSEC.find((x) => x * pxPerArcsec >= 30) || NICE_ARCSEC[NICE_ARCSEC.length - 1];
    best = { arcsec: L, px: L * pxPerArcsec };
  }
  const label = best.arcsec >= 60 ? `${best.arcsec / 60}′` : `${best.arcsec}″`;
  return { ...best, label };
}

class PixelViewer {
  /* parts: {canvas, scalebar, state, readout, zoomText, range, onChange} */
  constructor(parts) {
    Object.assign(this, parts);
    this.ctx = this.canvas.getContext("2d");
    this.data = null;
    this.shape = null;
    this.sorted = {};
    this.cut = "99.5";
    this.stretch = "asinh";
    this.channel = "auto";
    this.scale = 1;
    this.ox = 0;
    this.oy = 0;
    this.arcsecPerPx = null;
    this.offscreen = document.createElement("canvas");
    this.requestId = 0;
    this.bind();
  }

  bind() {
    const c = this.canvas;
    c.addEventListener("wheel", (ev) => {
      if (!this.data) return;
      ev.preventDefault();
      const [mx, my] = this.mouse(ev);
      this.zoomAt(Math.exp(-ev.deltaY * 0.0015), mx, my);
      this.readAt(mx, my);
    }, { passive: false });
    c.addEventListener("pointerdown", (ev) => {
      if (!this.data || ev.button !== 0) return;
      this.drag = { x: ev.clientX, y: ev.clientY, ox: this.ox, oy: this.oy };
      c.setPointerCapture(ev.pointerId);
      c.classList.add("dragging");
    });
    c.addEventListener("pointermove", (ev) => {
      if (this.drag) {
        this.ox = this.drag.ox + (ev.clientX - this.drag.x);
        this.oy = this.drag.oy + (ev.clientY - this.drag.y);
        this.draw();
      }
      this.readAt(...this.mouse(ev));
    });
    const end = (ev) => {
      if (!this.drag) return;
      this.drag = null;
      c.classList.remove("dragging");
      if (c.hasPointerCapture(ev.pointerId)) c.releasePointerCapture(ev.pointerId);
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("pointerleave", () => { if (!this.drag) this.readout.textContent = this.hint(); });
    c.addEventListener("dblclick", (ev) => { const [mx, my] = this.mouse(ev); this.zoomAt(2, mx, my); });
  }

  hint() {
    return this.data ? "move over the image: the pixel value under the cursor" : "";
  }

  mouse(ev) {
    const r = this.canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }

  get width() { return this.canvas.clientWidth || 480; }

  get height() { return this.canvas.clientHeight || 480; }

  /* fetch the pixels at url; resolves to the response's description, rejects with the server's message */
  async load(url, meta = {}) {
    const id = ++this.requestId;
    this.setState("loading pixels…");
    let resp;
    try {
      resp = await fetch(url);
    } catch (err) {
      this.setState(`The app does not answer (${err.message})`, true);
      throw err;
    }
    if (!resp.ok) {
      let msg = `${resp.status} ${resp.statusText}`;
      try { msg = (await resp.json()).error || msg; } catch (_) { /* not JSON */ }
      if (id === this.requestId) this.setState(msg, true);
      throw new Error(msg);
    }
    const shape = (resp.headers.get("X-Pixels-Shape") || "").split(",").map(Number);
    const buf = await resp.arrayBuffer();
    if (id !== this.requestId) return null;  // another galaxy or source was asked for meanwhile
    if (shape.length !== 3 || shape.some((x) => !Number.isInteger(x) || x < 1)
        || buf.byteLength !== 4 * shape[0] * shape[1] * shape[2]) {
      this.setState("the pixels did not arrive whole", true);
      throw new Error("bad pixel payload");
    }
    this.setData(new Float32Array(buf), shape, meta);
    return resp.headers.get("X-Pixels-Source") || "";
  }

  setState(text, failed = false) {
    this.state.textContent = text;
    this.state.hidden = !text;
    this.state.classList.toggle("failed", failed);
    this.canvas.dataset.state = failed ? "failed" : (text ? "loading" : "ready");
  }

  setData(values, shape, meta = {}) {
    this.data = values;
    this.shape = shape;
    this.sorted = {};
    this.arcsecPerPx = meta.arcsecPerPx || null;
    if (this.channel !== "auto" && (this.channel === "rgb" ? shape[0] !== 3 : this.channel >= shape[0])) {
      this.channel = "auto";
    }
    this.setState("");
    this.canvas.dataset.shape = shape.join(",");
    this.fit();
    this.paint();
    this.readout.textContent = this.hint();
  }

  clear() {
    this.requestId++;
    this.data = null;
    this.shape = null;
    this.ctx.setTransform(1, 0, 0, 1, 0, 0);
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.scalebar.hidden = true;
    this.readout.textContent = "";
    this.range.textContent = "";
  }

  /* the channels drawn: [k] for one band, [0, 1, 2] for an RGB composite */
  channels() {
    const c = this.shape[0];
    if (this.channel === "rgb" || (this.channel === "auto" && c === 3)) return [0, 1, 2];
    return [this.channel === "auto" ? 0 : Number(this.channel)];
  }

  sortedValues(chans) {
    const key = chans.join(",");
    if (!this.sorted[key]) {
      const [, h, w] = this.shape;
      const n = h * w;
      const out = new Float32Array(n * chans.length);
      let k = 0;
      for (const c of chans) {
        const plane = this.data.subarray(c * n, (c + 1) * n);
        for (let i = 0; i < n; i++) if (Number.isFinite(plane[i])) out[k++] = plane[i];
      }
      this.sorted[key] = out.slice(0, k).sort();
    }
    return this.sorted[key];
  }

  /* [lo, hi] of the current cut over the drawn channels (one range for an RGB composite: colours kept) */
  limits() {
    const s = this.sortedValues(this.channels());
    if (!s.length) return [0, 1];
    if (this.cut === "minmax") return [s[0], s[s.length - 1]];
    const p = Number(this.cut);
    return [percentileSorted(s, (100 - p) / 2), percentileSorted(s, 100 - (100 - p) / 2)];
  }

  /* the image at full resolution in the offscreen canvas, then drawn at the current zoom */
  paint() {
    if (!this.data) return;
    const [, h, w] = this.shape;
    const n = h * w;
    const chans = this.channels();
    const [lo, hi] = this.limits();
    this.lo = lo;
    this.hi = hi;
    const span = hi > lo ? hi - lo : 1;
    const lut = new Uint8ClampedArray(1025);
    for (let i = 0; i <= 1024; i++) lut[i] = Math.round(255 * stretchValue(i / 1024, this.stretch));
    this.offscreen.width = w;
    this.offscreen.height = h;
    const octx = this.offscreen.getContext("2d");
    const img = octx.createImageData(w, h);
    const px = img.data;
    for (let k = 0; k < 3; k++) {  // R, G, B from three channels, or the same one three times (grey)
      const c = chans[Math.min(k, chans.length - 1)];
      const plane = this.data.subarray(c * n, (c + 1) * n);
      for (let i = 0; i < n; i++) {
        const v = plane[i];
        let g;
        if (Number.isNaN(v)) g = 0;
        else {
          const t = Math.min(Math.max((v - lo) / span, 0), 1);
          g = lut[Math.round(t * 1024)];
        }
        px[4 * i + k] = g;
      }
    }
    for (let i = 0; i < n; i++) px[4 * i + 3] = 255;
    octx.putImageData(img, 0, 0);
    const ds = this.canvas.dataset;
    ds.cut = this.cut;
    ds.stretch = this.stretch;
    ds.lo = String(lo);
    ds.hi = String(hi);
    ds.channels = chans.join(",");
    this.range.textContent = `display ${this.cut === "minmax" ? "min–max" : `${this.cut}%`} (${this.stretch}): `
      + `${formatValue(lo)} … ${formatValue(hi)}`;
    this.draw();
  }

  draw() {
    if (!this.data) return;
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.round(this.width * dpr);
    const ch = Math.round(this.height * dpr);
    if (this.canvas.width !== cw || this.canvas.height !== ch) {
      this.canvas.width = cw;
      this.canvas.height = ch;
    }
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, cw, ch);
    ctx.imageSmoothingEnabled = false;
    ctx.setTransform(dpr * this.scale, 0, 0, dpr * this.scale, dpr * this.ox, dpr * this.oy);
    ctx.drawImage(this.offscreen, 0, 0);
    const ds = this.canvas.dataset;
    ds.zoom = String(this.scale);
    ds.ox = String(this.ox);
    ds.oy = String(this.oy);
    this.zoomText.textContent = `zoom ${this.scale >= 10 ? this.scale.toFixed(0) : this.scale.toFixed(2)}×`;
    this.drawScaleBar();
    if (this.onChange) this.onChange();
  }

  drawScaleBar() {
    const bar = this.scalebar;
    if (!this.arcsecPerPx) { bar.hidden = true; return; }
    const b = niceScaleBar(this.arcsecPerPx, this.scale);
    bar.hidden = false;
    bar.querySelector(".bar").style.width = `${b.px}px`;
    bar.querySelector(".label").textContent = b.label;
    bar.dataset.arcsec = String(b.arcsec);
    bar.dataset.px = String(b.px);
  }

  fit() {
    if (!this.shape) return;
    const [, h, w] = this.shape;
    this.scale = Math.min(this.width / w, this.height / h);
    this.ox = (this.width - w * this.scale) / 2;
    this.oy = (this.height - h * this.scale) / 2;
    this.draw();
  }

  zoomTo(scale, cx = this.width / 2, cy = this.height / 2) {
    const s = Math.min(Math.max(scale, ZOOM_MIN), ZOOM_MAX);
    this.ox = cx - (cx - this.ox) * (s / this.scale);
    this.oy = cy - (cy - this.oy) * (s / this.scale);
    this.scale = s;
    this.draw();
  }

  zoomAt(factor, cx, cy) { this.zoomTo(this.scale * factor, cx, cy); }

  /* the pixel under canvas point (mx, my): [x, y] array indices, or null outside the image */
  pixelAt(mx, my) {
    if (!this.data) return null;
    const [, h, w] = this.shape;
    const x = Math.floor((mx - this.ox) / this.scale);
    const y = Math.floor((my - this.oy) / this.scale);
    return x >= 0 && y >= 0 && x < w && y < h ? [x, y] : null;
  }

  readAt(mx, my) {
    const p = this.pixelAt(mx, my);
    const r = this.readout;
    if (!p) { r.textContent = this.hint(); delete r.dataset.x; delete r.dataset.y; return; }
    const [c, h, w] = this.shape;
    const [x, y] = p;
    const vals = [];
    for (let k = 0; k < c; k++) vals.push(this.data[k * h * w + y * w + x]);
    const names = c === 3 ? ["R", "G", "B"] : vals.map((_, k) => (c > 1 ? `band ${k + 1}` : "value"));
    r.dataset.x = String(x);
    r.dataset.y = String(y);
    r.dataset.values = vals.map(String).join(",");
    r.textContent = `x ${x}, y ${y}: ` + vals.map((v, k) => `${names[k]} ${formatValue(v)}`).join("  ");
  }
}

window.PixelViewer = PixelViewer;
window.VIEWER_CUTS = VIEWER_CUTS;
window.VIEWER_STRETCHES = VIEWER_STRETCHES;
window.formatValue = formatValue;
