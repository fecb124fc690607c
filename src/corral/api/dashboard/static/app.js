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

// workers
// A worker killed with kill -9 just goes silent: nothing changes on the server, so no
// event arrives. Every tick, rows of table#workers whose heartbeat is older than the
// server's offline threshold (data-offline-after, seconds) are marked offline here, as
// the server would on its next render. data-now (the server's clock when it rendered
// the table) corrects for a browser clock that runs ahead of or behind the server's.
(function () {
  var skews = new WeakMap();

  function skewOf(table) {
    if (!skews.has(table)) {
      var rendered = Date.parse(table.getAttribute("data-now"));
      skews.set(table, isNaN(rendered) ? 0 : Date.now() - rendered);
    }
    return skews.get(table);
  }

  function recount(table) {
    var scope = table.closest("[data-live]") || document;
    scope.querySelectorAll("[data-count]").forEach(function (el) {
      var state = el.getAttribute("data-count");
      el.textContent = table.querySelectorAll('tr[data-state="' + state + '"]').length;
    });
  }

  function markSilent(table, now) {
    var limit = parseFloat(table.getAttribute("data-offline-after")) * 1000;
    if (isNaN(limit)) return;
    var serverNow = now - skewOf(table);
    var changed = false;
    table.querySelectorAll("tr[data-heartbeat]").forEach(function (row) {
      if (row.getAttribute("data-state") === "offline") return;
      var beat = Date.parse(row.getAttribute("data-heartbeat"));
      if (isNaN(beat) || serverNow - beat <= limit) return;
      row.setAttribute("data-state", "offline");
      var badge = row.querySelector(".state");
      if (badge) { badge.className = "state offline"; badge.textContent = "offline"; }
      changed = true;
    });
    if (changed) recount(table);
  }

  document.addEventListener("corral:tick", function (e) {
    document.querySelectorAll("table#workers[data-offline-after]").forEach(function (table) {
      markSilent(table, e.detail || Date.now());
    });
  });
})();

// job output
// A running job's page follows /api/v1/jobs/{id}/output/follow (the session cookie is
// enough). The stream replays the current attempt from offset 0, so bytes the page
// already shows (pre[data-offset], in bytes) are skipped; offset 0 arriving after later
// offsets means a new attempt (or a reconnect): the block starts afresh. On "end" the
// stream is closed (an EventSource would reconnect and replay) and the status refetched.
(function () {
  var STREAMS = ["stdout", "stderr"];

  function follow(section) {
    var id = section.getAttribute("data-job-output");
    var enc = new TextEncoder(), dec = new TextDecoder();
    var state = {};
    STREAMS.forEach(function (name) {
      var pre = document.getElementById(name);
      if (pre) state[name] = { pre: pre, shown: parseInt(pre.getAttribute("data-offset"), 10) || 0, last: 0 };
    });
    var source = new EventSource("/api/v1/jobs/" + encodeURIComponent(id) + "/output/follow");
    source.addEventListener("output", function (e) {
      var m = JSON.parse(e.data), s = state[m.stream];
      if (!s) return;
      if (m.offset === 0 && s.last > 0) { s.pre.textContent = ""; s.shown = 0; }
      var bytes = enc.encode(m.data), end = m.offset + bytes.length;
      s.last = end;
      if (end <= s.shown) return;
      var skip = Math.max(0, s.shown - m.offset);
      var pinned = s.pre.scrollTop + s.pre.clientHeight >= s.pre.scrollHeight - 4;
      s.pre.appendChild(document.createTextNode(skip ? dec.decode(bytes.subarray(skip)) : m.data));
      s.shown = end;
      s.pre.setAttribute("data-offset", String(end));
      if (pinned) s.pre.scrollTop = s.pre.scrollHeight;
    });
    source.addEventListener("end", function () {
      source.close();
      section.removeAttribute("data-follow");
      section.setAttribute("data-followed", "end");
      var note = document.getElementById("follow-note");
      if (note) note.hidden = true;
      var live = document.getElementById("job-live");
      if (live && window.Corral) window.Corral.refresh(live);
    });
    section.setAttribute("data-followed", "on");
  }

  function markTruncation() {
    var status = document.getElementById("job-status");
    if (!status) return;
    STREAMS.forEach(function (name) {
      var marker = document.getElementById(name + "-truncated");
      if (marker) marker.hidden = status.getAttribute("data-" + name + "-truncated") !== "1";
    });
  }

  document.addEventListener("corral:refreshed", markTruncation);
  document.addEventListener("DOMContentLoaded", function () {
    var section = document.querySelector("[data-job-output][data-follow]");
    if (section && window.EventSource && window.TextEncoder) follow(section);
  });
})();
