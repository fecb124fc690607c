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
// offsets means a new attempt: the block starts afresh. A reconnect sends the last event
// id, so the stream goes on after it. On "end" the stream is closed (an EventSource
// would reconnect) and the status refetched.
// ANSI colour escapes become spans with the classes api/dashboard/ansi.py gives them;
// an escape cut between two chunks waits for the rest. A block scrolled to its end stays
// there as output arrives; past KEEP characters its oldest lines leave the page (the
// "Download whole" link has everything), so a chatty job never slows the page down.
(function () {
  var STREAMS = ["stdout", "stderr"];
  var KEEP = 64 * 1024;
  var ESCAPE = /\x1b(?:\[([0-?]*)[ -\/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;
  var PARTIAL = /\x1b(?:\[[0-?]*[ -\/]*|\][^\x07\x1b]*\x1b?)?$/;
  var FLAGS = { 1: "ansi-bold", 2: "ansi-dim", 3: "ansi-italic", 4: "ansi-underline" };
  var RESETS = { 22: ["ansi-bold", "ansi-dim"], 23: ["ansi-italic"], 24: ["ansi-underline"] };

  function colour(code) {
    if (code >= 30 && code <= 37) return code - 30;
    if (code >= 90 && code <= 97) return code - 82;
    return null;
  }

  function sgr(style, params) {
    var codes = params ? params.split(";").map(function (p) { return parseInt(p, 10) || 0; }) : [0];
    for (var i = 0; i < codes.length; i++) {
      var c = codes[i];
      if (c === 0) { style.fg = null; style.bg = null; style.flags = {}; }
      else if (FLAGS[c]) style.flags[FLAGS[c]] = 1;
      else if (RESETS[c]) RESETS[c].forEach(function (f) { delete style.flags[f]; });
      else if (colour(c) !== null) style.fg = colour(c);
      else if (colour(c - 10) !== null) style.bg = colour(c - 10);
      else if (c === 39) style.fg = null;
      else if (c === 49) style.bg = null;
      else if (c === 38 || c === 48) i += codes[i + 1] === 5 ? 2 : 4;
    }
  }

  function classes(style) {
    var names = Object.keys(style.flags).sort();
    if (style.fg !== null) names.push("ansi-fg-" + style.fg);
    if (style.bg !== null) names.push("ansi-bg-" + style.bg);
    return names.join(" ");
  }

  function piece(s, text) {
    if (!text) return;
    var cls = classes(s.style), node = document.createTextNode(text);
    if (cls) { var span = document.createElement("span"); span.className = cls; span.appendChild(node); node = span; }
    s.pre.appendChild(node);
    s.chars += text.length;
  }

  function write(s, text) {
    text = s.carry + text;
    var cut = text.match(PARTIAL);
    s.carry = cut ? cut[0] : "";
    if (s.carry) text = text.slice(0, text.length - s.carry.length);
    var at = 0, m;
    ESCAPE.lastIndex = 0;
    while ((m = ESCAPE.exec(text)) !== null) {
      piece(s, text.slice(at, m.index));
      if (m[2] === "m") sgr(s.style, m[1] || "");
      at = ESCAPE.lastIndex;
    }
    piece(s, text.slice(at));
  }

  function trim(s, name) {
    if (s.chars <= 2 * KEEP) return;
    while (s.chars > KEEP && s.pre.firstChild) {
      s.chars -= s.pre.firstChild.textContent.length;
      s.pre.removeChild(s.pre.firstChild);
    }
    var note = document.getElementById(name + "-hidden");
    if (note) note.hidden = false;
  }

  function follow(section) {
    var id = section.getAttribute("data-job-output");
    var enc = new TextEncoder(), dec = new TextDecoder();
    var state = {};
    STREAMS.forEach(function (name) {
      var pre = document.getElementById(name);
      if (!pre) return;
      state[name] = { pre: pre, shown: parseInt(pre.getAttribute("data-offset"), 10) || 0, last: 0,
        style: { fg: null, bg: null, flags: {} }, carry: "", chars: pre.textContent.length };
      pre.scrollTop = pre.scrollHeight;  // start at the end, so the block follows it
    });
    var source = new EventSource("/api/v1/jobs/" + encodeURIComponent(id) + "/output/follow");
    source.addEventListener("output", function (e) {
      var m = JSON.parse(e.data), s = state[m.stream];
      if (!s) return;
      if (m.offset === 0 && s.last > 0) {
        s.pre.textContent = ""; s.shown = 0; s.chars = 0; s.carry = "";
        s.style = { fg: null, bg: null, flags: {} };
      }
      var bytes = enc.encode(m.data), end = m.offset + bytes.length;
      s.last = end;
      if (end <= s.shown) return;
      var skip = Math.max(0, s.shown - m.offset);
      var pinned = s.pre.scrollTop + s.pre.clientHeight >= s.pre.scrollHeight - 4;
      write(s, skip ? dec.decode(bytes.subarray(skip)) : m.data);
      trim(s, m.stream);
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
