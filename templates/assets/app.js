// conveyor dashboard: live updates over server-sent events. Every page is complete without
// this script; it only keeps the job log and the build's states current.
"use strict";
(function () {
  if (!window.EventSource) return;

  function badgeHtml(b) {
    var outer = document.createElement("span");
    outer.className = "badge s-" + b.status;
    outer.setAttribute("data-state", b.status);
    var icon = document.createElement("span");
    icon.className = "icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = b.icon;
    outer.appendChild(icon);
    outer.appendChild(document.createTextNode(" " + b.label));
    return outer;
  }

  function setBadge(holder, b) {
    if (!holder) return;
    holder.textContent = "";
    holder.appendChild(badgeHtml(b));
  }

  function setText(el, text) {
    if (el) el.textContent = text;
  }

  // A running job's time, ticking on the server's clock.
  function span(ms) {
    if (ms < 1000) return (ms / 1000).toFixed(1) + " s";
    if (ms < 60000) return Math.floor(ms / 1000) + " s";
    if (ms < 3600000) return Math.floor(ms / 60000) + " min " + String(Math.floor(ms / 1000) % 60).padStart(2, "0") + " s";
    return Math.floor(ms / 3600000) + " h " + String(Math.floor(ms / 60000) % 60).padStart(2, "0") + " min";
  }
  // Every element with data-since (a running build's or job's start, ms) shows its time so
  // far, once a second, on the server's clock (the page's data-now gives the skew).
  var skew = Number(document.body.dataset.now || Date.now()) - Date.now();
  function tick() {
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = span(Date.now() + skew - Number(el.dataset.since)) + " so far";
    });
  }
  setInterval(tick, 1000);
  // A timer that has stopped (null) or started (a time) since the page was made.
  function setSince(el, since) {
    if (!el) return;
    if (since === null || since === undefined) el.removeAttribute("data-since");
    else el.setAttribute("data-since", String(since));
  }

  // The job page: hand new log lines to the viewer, show state changes.
  var log = document.getElementById("log");
  if (log && log.dataset.events) {
    var job = document.getElementById("job");
    var initial = job ? job.dataset.state : "";
    var changed = false;
    var src = new EventSource(log.dataset.events);
    // New lines go to the log viewer (log.js), which shows them when it shows the tail.
    src.addEventListener("lines", function (e) {
      log.dispatchEvent(new CustomEvent("conveyor:lines", { detail: JSON.parse(e.data) }));
    });
    src.addEventListener("state", function (e) {
      var s = JSON.parse(e.data);
      if (s.status !== initial) changed = true;
      if (job) job.dataset.state = s.status;
      setBadge(document.getElementById("job-state"), s.badge);
      setText(document.getElementById("job-attempts"), String(s.attempts));
      if (s.runner) setText(document.getElementById("job-runner"), s.runner);
    });
    src.addEventListener("end", function () {
      src.close();
      setSince(document.getElementById("job-took"), null);
      setText(document.getElementById("live-note"), "The job has finished.");
      // Outputs, timings and the exit code are on the full page.
      if (changed) window.location.reload();
    });
  }

  // The build page: recolour and relabel the graph's nodes and the jobs table.
  var build = document.getElementById("build");
  if (build && build.dataset.events) {
    var bsrc = new EventSource(build.dataset.events);
    var started = build.dataset.state;
    var moved = false;
    bsrc.addEventListener("build", function (e) {
      var b = JSON.parse(e.data);
      if (b.status !== started) moved = true;
      build.dataset.state = b.status;
      setBadge(document.getElementById("build-state"), b.badge);
      setText(document.getElementById("build-took"), b.took);
      setSince(document.getElementById("build-took"), b.since);
      b.jobs.forEach(function (j) {
        var node = document.querySelector('#dag .node[data-id="' + j.id + '"]');
        if (node) {
          node.setAttribute("class", "node s-" + j.status);
          node.setAttribute("data-state", j.status);
          var title = node.querySelector("title");
          if (title) title.textContent = node.dataset.name + ": " + j.badge.label;
          var label = node.querySelector("text.state");
          if (label) label.textContent = j.badge.icon + " " + j.badge.label;
        }
        var row = document.querySelector('#jobs tr[data-job="' + j.id + '"]');
        if (row) {
          setBadge(row.querySelector(".job-state"), j.badge);
          setText(row.querySelector(".job-attempts"), String(j.attempts));
          setText(row.querySelector(".job-took"), j.took);
          setSince(row.querySelector(".job-took"), j.since);
          setText(row.querySelector(".job-runner"), j.runner);
        }
      });
    });
    bsrc.addEventListener("end", function () {
      bsrc.close();
      // The finished page drops the cancel buttons and shows the build's end.
      if (moved) window.location.reload();
    });
  }

  // The overview and product pages: when a build starts or ends, fetch the page again and
  // swap in its content (at most once a second), keeping the scroll position.
  var page = document.getElementById("live-page");
  if (page && page.dataset.events) {
    var psrc = new EventSource(page.dataset.events);
    var pending = null;
    function refresh() {
      pending = null;
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var next = new DOMParser().parseFromString(html, "text/html").getElementById("live-page");
          var now = document.getElementById("live-page");
          if (next && now) now.innerHTML = next.innerHTML;
        });
    }
    psrc.addEventListener("changed", function () {
      if (!pending) pending = setTimeout(refresh, 1000);
    });
  }
})();
