// Corral's dashboard: progressive enhancement only; every page works without it.
// - Live fragments: an element with data-live="jobs workers" and data-fragment="URL"
//   is re-fetched (HTML) when /ui/events says one of those topics changed.
// - <time data-ago datetime="ISO"> shows a ticking age; computed here, no server work.
// - Forms with data-confirm="question" ask before they submit.
"use strict";
(function () {
  function refresh(el) {
    var url = el.getAttribute("data-fragment");
    if (!url || el.dataset.loading === "1") { el.dataset.stale = "1"; return; }
    el.dataset.loading = "1";
    fetch(url, { credentials: "same-origin", headers: { "X-Fragment": "1" } })
      .then(function (r) {
        if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          el.innerHTML = html;
          tick();
          document.dispatchEvent(new CustomEvent("corral:refreshed", { detail: el }));
        }
      })
      .finally(function () {
        el.dataset.loading = "0";
        if (el.dataset.stale === "1") { el.dataset.stale = "0"; refresh(el); }
      });
  }

  function live() {
    var nodes = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    if (!nodes.length || !window.EventSource) return;
    var topics = {};
    nodes.forEach(function (n) {
      n.getAttribute("data-live").split(/\s+/).forEach(function (t) { if (t) topics[t] = 1; });
    });
    var source = new EventSource("/ui/events?topics=" + Object.keys(topics).join(","));
    Object.keys(topics).forEach(function (topic) {
      source.addEventListener(topic, function () {
        nodes.forEach(function (n) {
          if (n.getAttribute("data-live").split(/\s+/).indexOf(topic) >= 0) refresh(n);
        });
      });
    });
    document.documentElement.dataset.live = "on";
  }

  function age(seconds) {
    if (seconds < 60) return Math.floor(seconds) + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-ago]").forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime"));
      if (!isNaN(at)) t.textContent = age(Math.max(0, (now - at) / 1000));
    });
    document.dispatchEvent(new CustomEvent("corral:tick", { detail: now }));
  }

  document.addEventListener("submit", function (e) {
    var q = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) e.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    live();
    tick();
    setInterval(tick, 1000);
  });
  window.Corral = { refresh: refresh, tick: tick };
})();
