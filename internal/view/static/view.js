// Sentinel View: the only script. It adds a dark-mode toggle, remembered
// in localStorage; without it the site follows prefers-color-scheme.
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
  document.addEventListener("DOMContentLoaded", function () {
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
  });
})();
