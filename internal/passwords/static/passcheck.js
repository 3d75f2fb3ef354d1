// Password checker: hash in the browser, send five hex digits, compare here.
"use strict";
(function () {
  // SHA-1 for pages served over plain HTTP, where crypto.subtle is absent.
  function sha1(bytes) {
    const ml = bytes.length, withPad = ((ml + 9 + 63) >> 6) << 6;
    const m = new Uint8Array(withPad);
    m.set(bytes); m[ml] = 0x80;
    const dv = new DataView(m.buffer);
    dv.setUint32(withPad - 4, (ml * 8) >>> 0); dv.setUint32(withPad - 8, Math.floor(ml / 0x20000000));
    let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
    const w = new Uint32Array(80);
    for (let off = 0; off < withPad; off += 64) {
      for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + i * 4);
      for (let i = 16; i < 80; i++) { const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]; w[i] = (x << 1) | (x >>> 31); }
      let a = h0, b = h1, c = h2, d = h3, e = h4;
      for (let i = 0; i < 80; i++) {
        let f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
        else { f = b ^ c ^ d; k = 0xca62c1d6; }
        const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) >>> 0;
        e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
      }
      h0 = (h0 + a) >>> 0; h1 = (h1 + b) >>> 0; h2 = (h2 + c) >>> 0; h3 = (h3 + d) >>> 0; h4 = (h4 + e) >>> 0;
    }
    return [h0, h1, h2, h3, h4].map(x => x.toString(16).padStart(8, "0")).join("");
  }
  async function hash(text) {
    const bytes = new TextEncoder().encode(text);
    if (window.crypto && crypto.subtle) {
      const d = new Uint8Array(await crypto.subtle.digest("SHA-1", bytes));
      return Array.from(d, b => b.toString(16).padStart(2, "0")).join("");
    }
    return sha1(bytes);
  }
  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("pc-form");
    const input = document.getElementById("pc-password");
    const out = document.getElementById("pc-result");
    if (!form) return;
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      out.className = "pc-result";
      out.textContent = "Checking…";
      try {
        const h = (await hash(input.value)).toUpperCase();
        const resp = await fetch("/range/" + h.slice(0, 5), {headers: {"Add-Padding": "true"}});
        if (!resp.ok) throw new Error("server answered " + resp.status);
        const suffix = h.slice(5);
        let count = 0;
        for (const line of (await resp.text()).split("\r\n")) {
          const [s, n] = line.split(":");
          if (s === suffix) { count = parseInt(n, 10) || 0; break; }
        }
        if (count > 0) {
          out.className = "pc-result pc-seen";
          out.textContent = "Oh no — attackers already try this password: seen " + count.toLocaleString() + " times.";
        } else {
          out.className = "pc-result pc-unseen";
          out.textContent = "Good news — no records found. That is a good sign, but no guarantee that the password is safe.";
        }
      } catch (e) {
        out.className = "pc-result pc-error";
        out.textContent = "The check failed: " + e.message;
      }
    });
  });
})();
