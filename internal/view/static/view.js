// Sentinel View: the only script. Every page works without it; it adds
//  - a dark-mode toggle, remembered in localStorage (without it the site
//    follows prefers-color-scheme);
//  - sorting of the statistics tables by any column (table.sortable);
//  - the visitor's time zone next to UTC: in the footer, in the graphs'
//    tooltips and on <time class="utc"> elements.
// It writes with textContent and attributes only, under the site's CSP.
(function () {
  "use strict";
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem("sview-theme"); } catch (e) { /* storage disabled */ }
  if (saved === "dark" || saved === "light") root.setAttribute("data-theme", saved);
  function dark() {
    var t = root.getAttribute("data-theme");
    if (t) return t === "dark";
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  function themeToggle() {
    var b = document.getElementById("theme");
    if (!b) return;
    function label() { b.textContent = dark() ? "Light mode" : "Dark mode"; }
    label();
    b.hidden = false;
    b.addEventListener("click", function () {
      var t = dark() ? "light" : "dark";
      root.setAttribute("data-theme", t);
      try { localStorage.setItem("sview-theme", t); } catch (e) { /* ignore */ }
      label();
    });
  }

  // Sorting. Numbers (td.num, "12,000") sort as numbers, the rest as
  // text in the page's language; equal keys keep the server's order. The
  // server sends top lists by count, descending: that column starts
  // marked so.
  function key(td, num) {
    var t = td ? td.textContent.trim() : "";
    if (num) {
      var n = parseFloat(t.replace(/[^0-9.\-]/g, ""));
      return isNaN(n) ? -Infinity : n;
    }
    return t;
  }
  function sortable(table) {
    if (!table.tHead || !table.tBodies.length) return;
    var heads = table.tHead.rows[0].cells, body = table.tBodies[0];
    var first = body.rows[0];
    Array.prototype.forEach.call(body.rows, function (r, i) { r.setAttribute("data-i", i); });
    Array.prototype.forEach.call(heads, function (th, col) {
      if (!th.textContent.trim()) return;
      var num = !!(first && first.cells[col] && first.cells[col].classList.contains("num"));
      var b = document.createElement("button");
      b.type = "button";
      b.className = "sort";
      while (th.firstChild) b.appendChild(th.firstChild);
      th.appendChild(b);
      if (num && col === heads.length - 1) th.setAttribute("aria-sort", "descending");
      b.addEventListener("click", function () {
        var cur = th.getAttribute("aria-sort");
        var dir = cur ? (cur === "ascending" ? "descending" : "ascending") : (num ? "descending" : "ascending");
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        var sign = dir === "ascending" ? 1 : -1;
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var ka = key(a.cells[col], num), kb = key(b.cells[col], num), c;
          if (num) c = ka < kb ? -1 : ka > kb ? 1 : 0;
          else c = ka.localeCompare(kb, undefined, { numeric: true, sensitivity: "base" });
          return c * sign || a.getAttribute("data-i") - b.getAttribute("data-i");
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  // Time zones.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function offsetName(d) {
    var m = -d.getTimezoneOffset(), s = m < 0 ? "\u2212" : "+";
    m = Math.abs(m);
    return "UTC" + s + Math.floor(m / 60) + (m % 60 ? ":" + pad(m % 60) : "");
  }
  function zoneName() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }
  function hm(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()); }
  var months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function dayName(d) { return d.getDate() + " " + months[d.getMonth()] + " " + d.getFullYear(); }

  function timeZones() {
    var now = new Date(), utc = now.getTimezoneOffset() === 0;
    var zone = zoneName(), off = offsetName(now);
    var tz = document.querySelector("footer .tz");
    if (tz) {
      tz.textContent = utc ? " (as is your clock)" :
        "; your time zone" + (zone ? ", " + zone + "," : "") + " is " + off + ", shown in the graphs' tooltips";
      tz.hidden = false;
    }
    if (utc) return;
    // Graph tooltips of buckets shorter than a day: add the local span.
    Array.prototype.forEach.call(document.querySelectorAll("svg.chart rect.hit[data-t0]"), function (r) {
      var t0 = new Date(r.getAttribute("data-t0") * 1000), t1 = new Date(r.getAttribute("data-t1") * 1000);
      if (t1 - t0 >= 864e5) return;
      var title = r.querySelector("title");
      if (!title) return;
      var lines = title.textContent.split("\n");
      var span = (t0.toDateString() === t1.toDateString() || hm(t1) === "00:00") ?
        dayName(t0) + " " + hm(t0) + "\u2013" + hm(t1) : dayName(t0) + " " + hm(t0) + " \u2013 " + dayName(t1) + " " + hm(t1);
      lines.splice(1, 0, span + " your time (" + offsetName(t0) + ")");
      title.textContent = lines.join("\n");
    });
    // Times written in UTC: the local time as a tooltip.
    Array.prototype.forEach.call(document.querySelectorAll("time.utc[datetime]"), function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.title = dayName(d) + " " + hm(d) + " your time (" + offsetName(d) + ")";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    themeToggle();
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
    timeZones();
  });
})();
