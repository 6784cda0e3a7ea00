// conveyor dashboard: the job page's log viewer. The server renders a stretch of the log (the
// tail, or the lines asked for) and the page works without this script. With it, the log box
// holds a window of lines fetched by range as the reader scrolls either way (`/jobs/{id}/lines`),
// dropping lines far from view so the page stays small whatever the log's length; jumps to the
// start, the end, a line (`#L123`), a search match (the API's search) or the first error; folds
// command sections; remembers the times toggle; and follows a running job's tail (the live
// stream's lines arrive from app.js as `conveyor:lines` events).
"use strict";
(function () {
  var log = document.getElementById("log");
  if (!log || !window.fetch || !log.dataset.lines) return;
  var RANGE = 300; // lines per request
  var MAX = Number(log.dataset.window) || 1200; // the most lines the page holds
  var found = document.getElementById("log-found");

  var st = {
    first: 1, last: 0, // the lines covered: in the page, or inside a folded section
    atStart: false, atEnd: false,
    busy: false, gen: 0,
    folded: [], // {s, e}: lines after s and before e are hidden (e: the next command, or Infinity)
    known: 0, // the last line the live stream has announced
  };

  function say(text) { if (found) found.textContent = text; }
  function rows() { return log.querySelectorAll(".line[id]"); }
  function num(el) { return Number(el.id.slice(1)); }
  function foldOf(n) {
    for (var i = 0; i < st.folded.length; i++) {
      var f = st.folded[i];
      if (n > f.s && n < f.e) return f;
    }
    return null;
  }
  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }
  function get(params) {
    return fetch(log.dataset.lines + "?" + params, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.json();
    });
  }

  // The lines of `frag` that are not shown yet and not folded away, in order, with the
  // attempt marks before them; `keep(n)` says which line numbers are wanted.
  function wanted(frag, keep) {
    var out = document.createDocumentFragment(), mark = null;
    Array.prototype.slice.call(frag.children).forEach(function (el) {
      if (!el.id) { mark = el; return; }
      var n = num(el);
      if (keep(n) && !foldOf(n)) {
        if (mark) out.appendChild(mark);
        prepare(el);
        out.appendChild(el);
      }
      mark = null;
    });
    return out;
  }
  // Line numbers take as many digits as the longest one in the page.
  function digits(n) {
    var d = String(n).length;
    if (d > (Number(log.style.getPropertyValue("--digits")) || 0)) log.style.setProperty("--digits", String(d));
  }
  function prepare(el) {
    digits(num(el));
    if (el.classList.contains("cmd")) {
      var folded = st.folded.some(function (f) { return f.s === num(el); });
      setFold(el, folded);
    }
    if (search.q) highlight(el, search.q);
  }
  function setFold(el, folded) {
    var b = el.querySelector("button.fold");
    el.classList.toggle("folded", folded);
    if (!b) return;
    b.setAttribute("aria-expanded", folded ? "false" : "true");
    b.setAttribute("aria-label", (folded ? "Unfold" : "Fold") + " the section of line " + num(el));
  }

  // Runs `change`, keeping the first line in view where it was on screen.
  function keepView(change) {
    var top = log.scrollTop, anchor = null, all = rows();
    for (var i = 0; i < all.length; i++) {
      if (all[i].offsetTop + all[i].offsetHeight > top) { anchor = all[i]; break; }
    }
    var offset = anchor ? anchor.offsetTop - top : 0;
    change();
    if (anchor && anchor.isConnected) log.scrollTop = anchor.offsetTop - offset;
  }
  function trim(fromTop) {
    var all = rows(), extra = all.length - MAX;
    if (extra <= 0) return;
    for (var i = 0; i < extra; i++) {
      var el = all[fromTop ? i : all.length - 1 - i];
      var prev = el.previousElementSibling;
      if (prev && !prev.id) prev.remove();
      el.remove();
    }
    all = rows();
    if (fromTop) { st.first = num(all[0]); st.atStart = false; }
    else { st.last = num(all[all.length - 1]); st.atEnd = false; }
  }

  // One change of the window at a time; a newer one (a jump) makes older answers moot.
  function run(work) {
    var g = ++st.gen;
    st.busy = true;
    return work(g)
      .catch(function (e) {
        say("The log could not be read: " + e.message);
        // Try again later, not at once.
        return new Promise(function (done) { setTimeout(done, 3000); });
      })
      .then(function () {
        if (g !== st.gen) return;
        st.busy = false;
        setTimeout(check, 0);
      });
  }
  function reachedEnd(res, limit) {
    if (res.count < limit) st.atEnd = st.known <= st.last;
  }
  function down(g) {
    var after = st.last, f = foldOf(after + 1);
    if (f) {
      if (f.e === Infinity) { st.atEnd = true; return Promise.resolve(); }
      after = f.e - 1;
    }
    return get("after=" + after + "&limit=" + RANGE).then(function (res) {
      if (g !== st.gen) return;
      keepView(function () {
        log.appendChild(wanted(fragment(res.html), function (n) { return n > st.last; }));
        st.last = Math.max(st.last, res.last || after);
        trim(true);
      });
      reachedEnd(res, RANGE);
    });
  }
  function up(g) {
    var before = st.first, f = foldOf(before - 1);
    if (f) before = f.s + 1;
    if (before <= 1) { st.atStart = true; return Promise.resolve(); }
    return get("before=" + before + "&limit=" + RANGE).then(function (res) {
      if (g !== st.gen) return;
      keepView(function () {
        log.insertBefore(wanted(fragment(res.html), function (n) { return n < st.first; }), log.firstChild);
        st.first = Math.min(st.first, res.first || before);
        trim(false);
      });
      if (res.count < RANGE || res.first === 1) st.atStart = true;
    });
  }
  // Loads more lines when fewer than a box and a half remain beyond the view on either side.
  function check() {
    if (st.busy) return;
    var need = log.clientHeight * 1.5;
    var below = log.scrollHeight - log.scrollTop - log.clientHeight;
    if (!st.atEnd && below < need) run(down);
    else if (!st.atStart && log.scrollTop < need) run(up);
  }
  var frame = 0;
  log.addEventListener("scroll", function () {
    if (!frame) frame = requestAnimationFrame(function () { frame = 0; check(); });
  });

  // Replaces the window with the lines `params` asks for; `after` is where they start (0 for
  // the start, null for the tail).
  function reset(params, after) {
    return run(function (g) {
      return get(params).then(function (res) {
        if (g !== st.gen) return;
        if (after === null && res.count === 0) after = 0;
        log.textContent = "";
        st.first = after === null ? (res.first || 1) : after + 1;
        st.last = st.first - 1;
        st.atStart = st.first <= 1;
        st.atEnd = false;
        log.appendChild(wanted(fragment(res.html), function () { return true; }));
        st.last = Math.max(st.last, res.last || 0);
        if (after === null) st.atEnd = st.known <= st.last;
        else reachedEnd(res, RANGE);
      });
    });
  }
  function toStart() { return reset("after=0&limit=" + RANGE, 0).then(function () { log.scrollTop = 0; }); }
  function toEnd() { return reset("limit=" + RANGE, null).then(function () { log.scrollTop = log.scrollHeight; }); }

  // Shows line `n` (unfolding what hides it) in the middle of the box, marked with `cls`.
  function show(n, cls) {
    st.folded = st.folded.filter(function (f) { return !(n > f.s && n < f.e); });
    var ready = document.getElementById("L" + n)
      ? Promise.resolve()
      : reset("after=" + Math.max(0, n - 100) + "&limit=" + RANGE, Math.max(0, n - 100));
    var mine = st.gen;
    return ready.then(function () {
      if (mine !== st.gen) return null; // another jump came since
      var el = document.getElementById("L" + n);
      if (!el) {
        say("The log has no line " + n + ".");
        if (!rows().length) toEnd();
        return null;
      }
      document.querySelectorAll("#log ." + cls).forEach(function (o) { o.classList.remove(cls); });
      el.classList.add(cls);
      if (log.getBoundingClientRect().top < 0 || log.getBoundingClientRect().bottom > window.innerHeight) {
        log.scrollIntoView({ block: "nearest" });
      }
      log.scrollTop = el.offsetTop - log.clientHeight / 2 + el.offsetHeight / 2;
      return el;
    });
  }
  function fromHash() {
    var m = /^#L(\d+)$/.exec(window.location.hash);
    if (m) show(Number(m[1]), "selected");
  }
  function goTo(n) {
    if (window.location.hash !== "#L" + n) history.pushState(null, "", "#L" + n);
    show(n, "selected");
  }
  // A link's fragment and the back button both come as hashchange (popstate would be a
  // second event for the same move).
  window.addEventListener("hashchange", fromHash);

  // Folding a command's section hides its lines; unfolding reads them again below it.
  function fold(line) {
    var s = num(line), e = line.dataset.end ? Number(line.dataset.end) : Infinity;
    st.folded.push({ s: s, e: e });
    keepView(function () {
      var next = line.nextElementSibling;
      while (next && !(next.id && num(next) >= e)) {
        var after = next.nextElementSibling;
        // An attempt's mark stays with the line it heads.
        if (!next.id && after && after.id && num(after) >= e) break;
        next.remove();
        next = after;
      }
    });
    if (st.last > s && st.last < e) {
      if (e === Infinity) st.atEnd = true;
      else st.last = e - 1;
    }
    setFold(line, true);
    check();
  }
  function unfold(line) {
    var s = num(line);
    st.folded = st.folded.filter(function (f) { return f.s !== s; });
    setFold(line, false);
    run(function (g) {
      return get("after=" + s + "&limit=" + RANGE).then(function (res) {
        if (g !== st.gen) return;
        while (line.nextSibling) line.nextSibling.remove();
        st.last = s;
        st.atEnd = false;
        log.appendChild(wanted(fragment(res.html), function (n) { return n > s; }));
        st.last = Math.max(s, res.last || s);
        reachedEnd(res, RANGE);
      });
    });
  }
  log.addEventListener("click", function (e) {
    var b = e.target.closest("button.fold");
    if (!b) return;
    var line = b.closest(".line");
    if (b.getAttribute("aria-expanded") === "true") fold(line);
    else unfold(line);
  });

  // Links to a line (the line numbers, the first error) move the window, not the page.
  document.getElementById("log-section").addEventListener("click", function (e) {
    var a = e.target.closest('a[href^="#L"]');
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    goTo(Number(a.getAttribute("href").slice(2)));
  });
  log.addEventListener("keydown", function (e) {
    if (e.key === "Home" && (e.ctrlKey || !st.atStart)) { e.preventDefault(); toStart(); }
    if (e.key === "End" && (e.ctrlKey || !st.atEnd)) { e.preventDefault(); toEnd(); }
  });

  // Search, on the server: matches are read in pages as they are needed (and counted in the
  // background); next and previous move through them.
  var search = { q: "", ids: [], after: 0, done: false, at: -1, pending: null };
  var searchUrl = log.dataset.search;
  function page() {
    if (search.pending) return search.pending;
    var s = search;
    s.pending = fetch(searchUrl + "?q=" + encodeURIComponent(s.q) + "&after=" + s.after + "&limit=200", { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("the search answered " + r.status);
        return r.json();
      })
      .then(function (res) {
        res.matches.forEach(function (m) { s.ids.push(m.id); });
        if (res.next === null || res.next === undefined) s.done = true;
        else s.after = res.next;
      })
      .then(function () { s.pending = null; }, function (e) { s.pending = null; s.done = true; throw e; });
    return s.pending;
  }
  function count() {
    var s = search;
    if (!s.ids.length) { say(s.done ? "No matches" : "Searching…"); return; }
    var of = s.ids.length + (s.done ? "" : " so far");
    say(s.at < 0 ? of + " matches" : "Match " + (s.at + 1) + " of " + of);
  }
  // Counts the rest of the matches, a page at a time, up to 10,000.
  function background(s) {
    if (s !== search || s.done || s.ids.length >= 10000) return;
    page().then(function () { count(); background(s); }, function () {});
  }
  function step(dir) {
    var s = search;
    var want = s.at + dir;
    function go() {
      if (s !== search) return;
      if (want >= s.ids.length && !s.done) { count(); return page().then(go); }
      if (!s.ids.length) { count(); return; }
      if (want >= s.ids.length) want = 0;
      if (want < 0) want = s.done ? s.ids.length - 1 : 0;
      s.at = want;
      count();
      return show(s.ids[want], "current").then(function () { background(s); });
    }
    return Promise.resolve(go()).catch(function (e) { say(e.message); });
  }
  function newSearch(q) {
    search = { q: q, ids: [], after: 0, done: false, at: -1, pending: null };
    log.querySelectorAll("mark").forEach(function (m) { m.replaceWith(document.createTextNode(m.textContent)); });
    log.normalize();
    rows().forEach(function (el) { highlight(el, q); });
  }
  // Marks where `q` occurs in a line's text (case aside).
  function highlight(el, q) {
    var tx = el.querySelector(".tx");
    if (!tx || !q) return;
    var lower = q.toLowerCase();
    if (tx.textContent.toLowerCase().indexOf(lower) < 0) return;
    var walker = document.createTreeWalker(tx, NodeFilter.SHOW_TEXT), nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    nodes.forEach(function (node) {
      var text = node.textContent, at = text.toLowerCase().indexOf(lower);
      if (at < 0) return;
      var out = document.createDocumentFragment(), from = 0;
      while (at >= 0) {
        out.appendChild(document.createTextNode(text.slice(from, at)));
        var m = document.createElement("mark");
        m.textContent = text.slice(at, at + q.length);
        out.appendChild(m);
        from = at + q.length;
        at = text.toLowerCase().indexOf(lower, from);
      }
      out.appendChild(document.createTextNode(text.slice(from)));
      node.replaceWith(out);
    });
  }
  var form = document.getElementById("log-search");
  var input = document.getElementById("log-q");
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var q = input.value.trim();
    if (!q) return;
    if (q !== search.q) newSearch(q);
    step(1);
  });
  document.getElementById("log-prev").addEventListener("click", function () {
    var q = input.value.trim();
    if (!q) return;
    if (q !== search.q) newSearch(q);
    step(-1);
  });
  document.getElementById("log-goto").addEventListener("submit", function (e) {
    e.preventDefault();
    var n = Number(document.getElementById("log-line").value);
    if (n >= 1) goTo(Math.floor(n));
  });
  document.getElementById("log-start").addEventListener("click", toStart);
  document.getElementById("log-end").addEventListener("click", toEnd);

  // The first error, one click away: the first `kind=error` line.
  function firstError(after, tries) {
    fetch(searchUrl + "?kind=error&limit=1&after=" + after, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (res) {
        if (!res) return;
        if (res.matches.length) {
          var a = document.getElementById("first-error");
          a.href = "#L" + res.matches[0].id;
          a.textContent = "Go to the first error (line " + res.matches[0].id + ")";
          a.hidden = false;
        } else if (res.next !== null && res.next !== undefined && tries < 200) {
          firstError(res.next, tries + 1);
        }
      })
      .catch(function () {});
  }

  // The times toggle works without the script (CSS); the script remembers it.
  var times = document.getElementById("show-times");
  try {
    times.checked = window.localStorage.getItem("conveyor.log.times") === "1";
    times.addEventListener("change", function () {
      window.localStorage.setItem("conveyor.log.times", times.checked ? "1" : "0");
    });
  } catch (e) { /* no storage: the toggle still works for this page */ }

  // The live tail: new lines are shown while the window reaches the end.
  log.addEventListener("conveyor:lines", function (e) {
    st.known = Math.max(st.known, e.detail.last);
    if (!st.atEnd || st.busy) { if (st.atEnd) st.atEnd = false; return; }
    var empty = document.getElementById("log-empty");
    if (empty) empty.remove();
    var follow = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    keepView(function () {
      log.appendChild(wanted(fragment(e.detail.html), function (n) { return n > st.last; }));
      st.last = Math.max(st.last, e.detail.last);
      trim(true);
    });
    if (follow) log.scrollTop = log.scrollHeight;
  });

  // Start: take over the server's window, hide its paging links, show the tools.
  var shown = rows();
  if (shown.length) { st.first = num(shown[0]); st.last = num(shown[shown.length - 1]); }
  st.atStart = !document.getElementById("older");
  st.atEnd = !document.getElementById("newer");
  st.known = st.atEnd ? st.last : 0;
  shown.forEach(prepare);
  ["older", "newer", "latest"].forEach(function (id) {
    var el = document.getElementById(id);
    if (el) el.hidden = true;
  });
  document.querySelectorAll(".log-js").forEach(function (el) { el.hidden = false; });
  log.classList.add("viewer");
  // A job that succeeded has no failure to look for.
  var state = (document.getElementById("job") || log).dataset.state;
  if (state !== "succeeded" && state !== "skipped") firstError(0, 0);
  if (/^#L\d+$/.test(window.location.hash)) fromHash();
  else if (log.hasAttribute("data-tail")) log.scrollTop = log.scrollHeight;
  check();
})();
