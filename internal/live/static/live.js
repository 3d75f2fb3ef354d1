// DynFW live page: follows /dynfw/events (Server-Sent Events) and updates
// the server-rendered page. Event names and addresses come from attackers,
// so the DOM is only ever built with createElement and textContent (never
// innerHTML). Updates are applied once per animation frame, so a burst of
// events costs one layout, and a hidden tab does no DOM work at all.
(function () {
  "use strict";
  var root = document.getElementById("lv");
  if (!root || !window.EventSource) return;

  var KEEP = 30, TOP = 15;
  var $ = function (id) { return document.getElementById(id); };
  var counts = {}, types = {}, names = {};
  var pendingEvents = [], pendingDeltas = [], status = null, countsDirty = false, snapshot = null;
  var total = 0, unknown = 0, lastMsg = 0, scheduled = false;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(ms) {
    var d = new Date(ms);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function time(ms) {
    var t = el("time", null, clock(ms));
    t.dateTime = new Date(ms).toISOString();
    return t;
  }
  function ccSpan(cc) {
    var s = el("span", "lv-cc", cc || "??");
    s.title = cc ? (names[cc] || cc) : "unknown country";
    return s;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function text(id, v) { var n = $(id); if (n) n.textContent = String(v); }

  function eventItem(e) {
    var li = el("li");
    li.appendChild(time(e.t));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(ccSpan(e.cc));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("code", "lv-ip", e.ip));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "lv-badge", e.event));
    return li;
  }
  function deltaItem(d) {
    var add = d.op === "+";
    var li = el("li", add ? "lv-add" : "lv-del");
    li.appendChild(time(d.t));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "lv-op", add ? "+" : "\u2212"));
    li.appendChild(el("code", "lv-ip", d.ip));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(ccSpan(d.cc));
    return li;
  }
  // prepend puts items (oldest first) at the top of list and keeps KEEP.
  function prepend(list, items, make) {
    if (!list || !items.length) return;
    var empty = list.querySelector(".lv-empty");
    if (empty) list.removeChild(empty);
    items = items.slice(-KEEP);
    for (var i = 0; i < items.length; i++) list.insertBefore(make(items[i]), list.firstChild);
    while (list.children.length > KEEP) list.removeChild(list.lastChild);
  }
  function replace(list, items, make, emptyText) {
    if (!list) return;
    clear(list);
    for (var i = 0; i < items.length && i < KEEP; i++) list.appendChild(make(items[i]));
    if (!items.length) list.appendChild(el("li", "lv-empty", emptyText));
  }

  function top(m) {
    var keys = Object.keys(m);
    keys.sort(function (a, b) { return m[b] - m[a] || (a < b ? -1 : a > b ? 1 : 0); });
    return keys.slice(0, TOP);
  }
  function table(id, m, isCountry) {
    var body = $(id);
    if (!body) return;
    var keys = top(m), max = keys.length ? m[keys[0]] : 0;
    clear(body);
    keys.forEach(function (k) {
      var tr = el("tr"), td = el("td");
      if (isCountry) {
        td.appendChild(el("span", "lv-cc", k));
        td.appendChild(document.createTextNode(" " + (names[k] || "")));
      } else {
        td.appendChild(el("span", "lv-badge", k));
      }
      tr.appendChild(td);
      tr.appendChild(el("td", "lv-n", String(m[k])));
      var bar = el("td", "lv-bar"), meter = el("meter");
      meter.min = 0; meter.max = max; meter.value = m[k];
      bar.appendChild(meter);
      tr.appendChild(bar);
      body.appendChild(tr);
    });
  }
  // Map colours: the classes of Sentinel View's map (view/worldmap.go):
  // up to six ranges on a log axis, bounds rounded to one significant
  // digit, the top class the strongest colour; style.css colours the
  // classes q1…q6 for each theme, the fill attribute is the light scale.
  var STEPS = 6, LIGHT = ["#c8eeff", "#a0d5ed", "#78bcdb", "#50a3c8", "#288ab6", "#0071a4"];
  function roundSig(f) {
    if (f < 10) return Math.round(f);
    var mag = Math.pow(10, Math.floor(Math.log10(f)));
    return Math.round(f / mag) * mag;
  }
  function bins(topv) {
    var out = [];
    for (var i = 1; i <= STEPS; i++) {
      var b = i < STEPS ? roundSig(Math.expm1(Math.log1p(topv) * i / STEPS)) : topv;
      if (b < 1 || b > topv || (out.length && b <= out[out.length - 1])) continue;
      out.push(b);
    }
    return out;
  }
  function level(v, bs) {
    for (var j = 0; j < bs.length; j++) if (v <= bs[j]) return Math.floor((j + 1) * STEPS / bs.length);
    return STEPS;
  }
  function num(n) { return n.toLocaleString("en-US"); }
  function legend(bs) {
    var ul = root.querySelector(".maplegend ul");
    if (!ul) return;
    while (ul.firstChild) ul.removeChild(ul.firstChild);
    var lo = 1;
    bs.concat([0]).forEach(function (b, j) {
      var li = document.createElement("li"), sw = el("span", "sw " + (j < bs.length ? "q" + level(b, bs) : "nd"), "");
      sw.setAttribute("aria-hidden", "true");
      li.appendChild(sw);
      li.appendChild(document.createTextNode(j < bs.length ? (b > lo ? num(lo) + "\u2013" + num(b) : num(b)) : "none"));
      ul.appendChild(li);
      lo = b + 1;
    });
  }
  function recolour() {
    var paths = root.querySelectorAll("[data-cc]");
    if (!paths.length) return;
    var topv = 0;
    for (var k in counts) if (counts[k] > topv) topv = counts[k];
    var bs = bins(topv);
    for (var i = 0; i < paths.length; i++) {
      var p = paths[i], cc = p.getAttribute("data-cc"), v = counts[cc] || 0;
      if (v > 0) {
        var lv = level(v, bs);
        p.setAttribute("fill", LIGHT[lv - 1]);
        p.setAttribute("class", "c q" + lv);
        p.setAttribute("data-v", v);
      }
      var t = p.querySelector("title");
      if (t) t.textContent = (names[cc] || cc) + ": " + (v ? num(v) + " events" : "none");
    }
    legend(bs);
  }

  function showStatus(s) {
    if (!s) return;
    var st = $("lv-state");
    if (st) { st.textContent = s.state; st.className = "lv-state lv-" + s.state; }
    text("lv-version", s.version);
    text("lv-serial", s.serial);
    text("lv-size", s.size);
    if (s.last > lastMsg) lastMsg = s.last;
  }
  function showUpdated() {
    var u = $("lv-updated");
    if (!u || !lastMsg) return;
    u.textContent = clock(lastMsg);
    u.dateTime = new Date(lastMsg).toISOString();
  }
  function connection(txt) {
    var n = $("lv-live");
    if (!n) return;
    n.textContent = txt;
    n.hidden = !txt;
  }

  function render() {
    scheduled = false;
    if (snapshot) {
      var s = snapshot;
      snapshot = null;
      replace($("lv-events"), s.events || [], eventItem, "No events yet.");
      replace($("lv-deltas"), s.deltas || [], deltaItem, "No updates yet.");
    }
    prepend($("lv-events"), pendingEvents, eventItem);
    prepend($("lv-deltas"), pendingDeltas, deltaItem);
    pendingEvents = [];
    pendingDeltas = [];
    showStatus(status);
    status = null;
    showUpdated();
    if (countsDirty) {
      countsDirty = false;
      text("lv-total", total);
      text("lv-unknown", unknown);
      table("lv-countries", counts, true);
      table("lv-types", types, false);
      recolour();
    }
  }
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    if (document.hidden) return; // visibilitychange renders when shown
    window.requestAnimationFrame(render);
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && scheduled) window.requestAnimationFrame(render);
  });
  function merge(dst, src) { for (var k in src) if (Object.prototype.hasOwnProperty.call(src, k)) dst[k] = src[k]; }
  function parse(ev) { try { return JSON.parse(ev.data); } catch (e) { return null; } }

  var es = null, delay = 0;
  function connect() {
    es = new EventSource(root.getAttribute("data-events") || "/dynfw/events");
    es.addEventListener("snapshot", function (ev) {
      var s = parse(ev);
      if (!s) return;
      delay = 0;
      connection("");
      counts = s.countries || {}; types = s.types || {}; names = s.names || {};
      total = s.total || 0; unknown = s.unknown || 0;
      snapshot = s; status = s.status;
      pendingEvents = []; pendingDeltas = [];
      countsDirty = true;
      schedule();
    });
    es.addEventListener("event", function (ev) {
      var e = parse(ev);
      if (!e) return;
      pendingEvents.push(e);
      if (pendingEvents.length > KEEP) pendingEvents.shift();
      if (e.t > lastMsg) lastMsg = e.t;
      schedule();
    });
    es.addEventListener("delta", function (ev) {
      var d = parse(ev);
      if (!d) return;
      pendingDeltas.push(d);
      if (pendingDeltas.length > KEEP) pendingDeltas.shift();
      if (d.t > lastMsg) lastMsg = d.t;
      status = { state: ($("lv-state") || {}).textContent || "connected", version: ($("lv-version") || {}).textContent,
        serial: d.serial, size: d.size, last: d.t };
      schedule();
    });
    es.addEventListener("status", function (ev) {
      var s = parse(ev);
      if (!s) return;
      status = s;
      schedule();
    });
    es.addEventListener("countries", function (ev) {
      var c = parse(ev);
      if (!c) return;
      merge(counts, c.countries || {});
      merge(types, c.types || {});
      merge(names, c.names || {});
      total = c.total || total;
      unknown = c.unknown || unknown;
      countsDirty = true;
      schedule();
    });
    es.onerror = function () {
      connection("(reconnecting\u2026)");
      if (es.readyState === EventSource.CLOSED) {
        // The server refused us (limits) or went away for good: back
        // off ourselves, 1 s longer each time up to 10 s, as the
        // reference page did.
        delay = Math.min(delay + 1, 10);
        setTimeout(connect, delay * 1000);
      }
    };
  }
  connect();
})();
