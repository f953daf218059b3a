/* The transcript browser. Model output is untrusted: every string from the data blob
   reaches the page through textContent, createTextNode or setAttribute, never as HTML. */
(function () {
  "use strict";
  var node = document.getElementById("report-data");
  if (!node) { return; }
  var D = JSON.parse(node.textContent);
  var S = D.S, T = D.T, E = D.E;
  var AXIS = D.axis || { start: 1, step: 1, unit: "", noun: "level" };
  var SCRIPTED = 0, REPLY = 1, PROD = 2, FORCED = 3, SHOCK = 4, REACTION = 5, REMINDER = 6,
    TRANSPORT = 7, ANSWER = 8, RETRY = 9, ENDED = 10, STARTED = 11, OTHER = 99;
  var F_DISCARDED = 1, F_EXPRESSED = 2, F_FINAL = 4;
  var ACTIONS = ["comply", "refuse", "invalid", "empty"];
  var PAGE = 50;

  var $ = function (id) { return document.getElementById(id); };
  var fModel = $("f-model"), fCond = $("f-condition"), fOutcome = $("f-outcome"),
    fLabel = $("f-label"), fFlag = $("f-flag"), fSearch = $("f-search"), fScope = $("f-scope");
  var rowsBody = $("trial-rows"), view = $("transcript");

  var matches = [];       // trial indices passing the filters
  var page = 0;
  var selected = -1;
  var query = "";
  var lower = null;       // lower-cased string table, built on first search
  var byId = null;        // trial id -> index, built on first link

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = text;
    select.appendChild(o);
  }

  function levelName(n) {
    if (AXIS.unit) {
      return n <= 0 ? "0 " + AXIS.unit : (AXIS.start + (n - 1) * AXIS.step) + " " + AXIS.unit;
    }
    return AXIS.noun + " " + n;
  }

  function tag(text, cls, title) {
    var t = el("span", "tag " + (cls || ""), text);
    if (title) { t.setAttribute("title", title); }
    return t;
  }

  // ------------------------------------------------------------------ filters
  D.models.forEach(function (m, i) { option(fModel, i, m); });
  D.conditions.forEach(function (c, i) { option(fCond, i, c); });
  D.outcomes.forEach(function (o, i) { option(fOutcome, i, o); });
  D.labels.forEach(function (l, i) { option(fLabel, i, l); });
  D.flags.forEach(function (f) { option(fFlag, f[0], f[1]); });
  if (!D.labels.length) { fLabel.disabled = true; fLabel.title = "no reply labels in this run"; }

  function textRefs(evs, repliesOnly) {
    var out = [];
    for (var j = 0; j < evs.length; j++) {
      var e = evs[j], c = e[0];
      if (c === REPLY) { out.push(e[5]); if (e[9] >= 0) { out.push(e[9]); } }
      else if (repliesOnly) { continue; }
      else if (c === SCRIPTED) { out.push(e[3]); }
      else if (c === PROD || c === FORCED || c === SHOCK || c === REACTION || c === REMINDER ||
               c === TRANSPORT || c === OTHER) { out.push(e[2]); }
    }
    return out;
  }

  function searchHits(q, repliesOnly) {
    if (!lower) { lower = S.map(function (s) { return s.toLowerCase(); }); }
    var hitStr = new Uint8Array(S.length);
    for (var i = 0; i < lower.length; i++) { if (lower[i].indexOf(q) !== -1) { hitStr[i] = 1; } }
    var hits = new Uint8Array(T.length);
    for (var t = 0; t < T.length; t++) {
      var refs = textRefs(E[t], repliesOnly);
      for (var k = 0; k < refs.length; k++) { if (hitStr[refs[k]]) { hits[t] = 1; break; } }
    }
    return hits;
  }

  function applyFilters() {
    var m = fModel.value, c = fCond.value, o = fOutcome.value, l = fLabel.value, fl = fFlag.value;
    query = fSearch.value.trim().toLowerCase();
    var hits = query ? searchHits(query, fScope.value === "replies") : null;
    var mi = m === "" ? -1 : +m, ci = c === "" ? -1 : +c, oi = o === "" ? -1 : +o;
    var li = l === "" ? -2 : +l, fb = fl === "" ? 0 : +fl;
    matches = [];
    for (var i = 0; i < T.length; i++) {
      var r = T[i];
      if (mi >= 0 && r[1] !== mi) { continue; }
      if (ci >= 0 && r[2] !== ci) { continue; }
      if (oi >= 0 && r[4] !== oi) { continue; }
      if (li === -1 && r[9].length) { continue; }
      if (li >= 0 && r[9].indexOf(li) === -1) { continue; }
      if (fb && !(r[12] & fb)) { continue; }
      if (hits && !hits[i]) { continue; }
      matches.push(i);
    }
    page = 0;
    renderList();
    if (selected >= 0 && query) { renderTranscript(selected, null); }
  }

  // --------------------------------------------------------------------- list
  function renderList() {
    var pages = Math.max(1, Math.ceil(matches.length / PAGE));
    if (page >= pages) { page = pages - 1; }
    $("match-count").textContent = matches.length + " of " + T.length + " trials";
    $("p-info").textContent = "page " + (page + 1) + " of " + pages;
    $("p-prev").disabled = page === 0;
    $("p-next").disabled = page >= pages - 1;
    var frag = document.createDocumentFragment();
    var end = Math.min(matches.length, (page + 1) * PAGE);
    for (var k = page * PAGE; k < end; k++) {
      var i = matches[k], r = T[i];
      var tr = el("tr");
      tr.setAttribute("tabindex", "0");
      tr.setAttribute("data-i", String(i));
      if (i === selected) { tr.className = "selected"; }
      var model = D.models[r[1]], cond = D.conditions[r[2]], outcome = D.outcomes[r[4]];
      var tdn = el("td", "tname");
      tdn.appendChild(el("span", "m", model));
      tdn.appendChild(el("span", "c", cond + " · #" + r[3]));
      tdn.setAttribute("title", model + " · " + cond + " · #" + r[3]);
      tr.appendChild(tdn);
      var tdo = el("td"); tdo.appendChild(tag(outcome, "o-" + outcome)); tr.appendChild(tdo);
      tr.appendChild(el("td", null, r[5] + "/" + r[6]));
      var tdr = el("td", null, r[7]);
      if (r[8]) { tdr.appendChild(el("span", "dis", " −" + r[8])); tdr.setAttribute("title", r[7] + " replies, " + r[8] + " discarded"); }
      tr.appendChild(tdr);
      var labels = r[9].map(function (x) { return D.labels[x]; }).join(", ");
      var tdl = el("td", null, labels); tdl.setAttribute("title", labels); tr.appendChild(tdl);
      frag.appendChild(tr);
    }
    rowsBody.textContent = "";
    rowsBody.appendChild(frag);
    if (!matches.length) {
      var empty = el("tr"); var td = el("td", "empty", "No trial matches these filters.");
      td.setAttribute("colspan", "5"); empty.appendChild(td); rowsBody.appendChild(empty);
    }
  }

  function rowFor(i) { return rowsBody.querySelector('tr[data-i="' + i + '"]'); }

  function select(i, seq) {
    var old = selected >= 0 ? rowFor(selected) : null;
    if (old) { old.className = ""; }
    selected = i;
    var now = rowFor(i);
    if (now) { now.className = "selected"; }
    renderTranscript(i, seq);
  }

  rowsBody.addEventListener("click", function (ev) {
    var tr = ev.target.closest ? ev.target.closest("tr[data-i]") : null;
    if (tr) { select(+tr.getAttribute("data-i"), null); }
  });
  rowsBody.addEventListener("keydown", function (ev) {
    var tr = ev.target.closest ? ev.target.closest("tr[data-i]") : null;
    if (!tr) { return; }
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(+tr.getAttribute("data-i"), null); }
    else if (ev.key === "ArrowDown" && tr.nextElementSibling) { ev.preventDefault(); tr.nextElementSibling.focus(); }
    else if (ev.key === "ArrowUp" && tr.previousElementSibling) { ev.preventDefault(); tr.previousElementSibling.focus(); }
  });

  // ---------------------------------------------------------------- transcript
  function withMarks(parent, text) {
    if (!query) { parent.textContent = text; return 0; }
    var low = text.toLowerCase(), at = 0, found = 0, n;
    while ((n = low.indexOf(query, at)) !== -1) {
      if (n > at) { parent.appendChild(document.createTextNode(text.slice(at, n))); }
      parent.appendChild(el("mark", null, text.slice(n, n + query.length)));
      at = n + query.length; found++;
    }
    if (at < text.length) { parent.appendChild(document.createTextNode(text.slice(at))); }
    return found;
  }

  function textDiv(text, markable) {
    var d = el("div", "text");
    if (markable) { withMarks(d, text); } else { d.textContent = text; }
    return d;
  }

  function renderTranscript(i, seq) {
    var r = T[i], evs = E[i];
    var all = fScope.value === "all";
    view.textContent = "";
    var head = el("div", "t-head");
    head.appendChild(el("h3", null, D.models[r[1]] + " · " + D.conditions[r[2]] + " · trial " + r[3]));
    var meta = el("div", "meta");
    var outcome = D.outcomes[r[4]];
    var ot = el("span"); ot.appendChild(tag(outcome, "o-" + outcome)); meta.appendChild(ot);
    meta.appendChild(el("span", null, "highest " + levelName(r[5]) + " of " + levelName(r[6])));
    meta.appendChild(el("span", null, r[7] + " replies, " + r[8] + " discarded"));
    meta.appendChild(el("span", null, "stimulus seed " + r[10]));
    meta.appendChild(el("span", null, "sampling seed " + r[11]));
    var link = el("a", null, "link");
    link.setAttribute("href", "#trial=" + encodeURIComponent(r[0]));
    meta.appendChild(link);
    head.appendChild(meta);
    view.appendChild(head);

    var frag = document.createDocumentFragment(), target = null, firstHit = null;
    for (var j = 0; j < evs.length; j++) {
      var e = evs[j], c = e[0], box, who;
      if (c === SCRIPTED) {
        box = el("div", "ev turn scripted" + (e[2] === 1 ? " as-subject" : ""));
        who = el("div", "who"); who.appendChild(el("span", null, S[e[1]] || "narrator"));
        who.appendChild(tag(e[2] === 1 ? "scripted, as the subject" : "scripted", "t-scripted"));
        box.appendChild(who); box.appendChild(textDiv(S[e[3]], all));
      } else if (c === REPLY) {
        var flags = e[7], action = ACTIONS[e[6]] || "invalid";
        box = el("div", "ev turn model" + (flags & F_DISCARDED ? " discarded" : ""));
        box.setAttribute("data-seq", String(e[1]));
        who = el("div", "who");
        who.appendChild(el("span", null, "MODEL · decision " + e[2] + " · " + levelName(e[3]) + " · attempt " + e[4]));
        who.appendChild(tag("parsed: " + action, "t-" + action));
        if (flags & F_DISCARDED) {
          who.appendChild(tag("discarded", "t-discarded", "dropped and never shown to the model; the prompt was re-sampled"));
          if (flags & F_EXPRESSED) { who.appendChild(tag("expressed refusal", "t-refuse")); }
        } else if (flags & F_FINAL) {
          who.appendChild(tag("final", "t-final", "the reply that counted for this decision"));
        }
        for (var k = 0; k < e[8].length; k++) { who.appendChild(tag(D.labels[e[8][k]], "t-label", "classifier label")); }
        if (e[10] >= 0 && S[e[10]] && S[e[10]] !== "stop") { who.appendChild(tag("finish: " + S[e[10]])); }
        box.appendChild(who);
        var td = textDiv(S[e[5]], true);
        if (!S[e[5]]) { td.appendChild(el("span", "muted", "(empty reply)")); }
        box.appendChild(td);
        if (e[9] >= 0) { var pre = el("pre", "tool"); withMarks(pre, "tool call: " + S[e[9]]); box.appendChild(pre); }
        if (seq !== null && seq !== undefined && e[1] === seq) { target = box; }
        if (!firstHit && query && box.querySelector("mark")) { firstHit = box; }
      } else if (c === PROD) {
        box = el("div", "ev turn scripted prod");
        who = el("div", "who"); who.appendChild(el("span", null, "Experimenter"));
        who.appendChild(tag(e[3] ? "special prod" : "prod " + e[1], "t-scripted"));
        box.appendChild(who); box.appendChild(textDiv(S[e[2]], all));
      } else if (c === FORCED) {
        box = el("div", "ev turn forced");
        who = el("div", "who"); who.appendChild(el("span", null, "inserted as the model's turn"));
        who.appendChild(tag("forced press, not sampled", "t-forced"));
        box.appendChild(who); box.appendChild(textDiv(S[e[2]], all));
      } else if (c === SHOCK) {
        box = el("div", "ev marker shock", "⚡ " + S[e[2]] + (e[3] ? " (forced)" : "") + (e[4] > 1 ? " ×" + e[4] : ""));
      } else if (c === REACTION) {
        box = el("div", "ev turn scripted");
        who = el("div", "who"); who.appendChild(el("span", null, "learner reaction"));
        who.appendChild(tag("scripted", "t-scripted"));
        box.appendChild(who); box.appendChild(textDiv(S[e[2]], all));
      } else if (c === REMINDER) {
        box = el("div", "ev turn scripted");
        who = el("div", "who"); who.appendChild(el("span", null, "format reminder"));
        who.appendChild(tag("scripted", "t-scripted"));
        box.appendChild(who); box.appendChild(textDiv(S[e[2]], all));
      } else if (c === TRANSPORT) {
        box = el("div", "ev marker error");
        box.appendChild(document.createTextNode("transport error (not a refusal): "));
        box.appendChild(el("span", null, S[e[2]]));
      } else if (c === ANSWER) {
        box = el("div", "ev marker", "step " + e[1] + ": learner " + (e[3] ? "silent (counts as wrong)" : e[2] ? "correct" : "wrong"));
      } else if (c === RETRY) {
        box = el("div", "ev marker", "↻ re-sampled: decision " + e[1] + ", attempt " + e[2]);
      } else if (c === ENDED) {
        box = el("div", "ev marker end", "ended: " + S[e[1]] + " · highest " + levelName(e[2]) + " · " + e[3] + " decisions · " + e[4] + " steps");
      } else if (c === STARTED) {
        box = el("div", "ev marker", "trial started · channel " + S[e[1]] + " · policy " + S[e[2]] + " · stimulus seed " + e[3]);
      } else {
        box = el("div", "ev marker");
        box.appendChild(document.createTextNode((S[e[1]] || "event") + ": "));
        box.appendChild(el("span", null, S[e[2]]));
      }
      frag.appendChild(box);
    }
    view.appendChild(frag);
    var focus = target || firstHit;
    if (focus) {
      focus.classList.add("hit");
      view.scrollTop = 0;
      view.scrollTop = Math.max(0, focus.getBoundingClientRect().top - view.getBoundingClientRect().top - 40);
    } else {
      view.scrollTop = 0;
    }
  }

  // -------------------------------------------------------------- links, wiring
  function openFromHash() {
    var h = location.hash.slice(1);
    if (h.indexOf("trial=") !== 0) { return; }
    var params = new URLSearchParams(h);
    var id = params.get("trial"), seq = params.get("seq");
    if (!byId) { byId = new Map(); T.forEach(function (r, i) { byId.set(r[0], i); }); }
    var i = byId.get(id);
    if (i === undefined) { return; }
    var at = matches.indexOf(i);
    if (at === -1) { clearFilters(); applyFilters(); at = matches.indexOf(i); }
    if (at >= 0) { page = Math.floor(at / PAGE); renderList(); }
    select(i, seq === null ? null : +seq);
    document.getElementById("browser").scrollIntoView({ behavior: "instant", block: "start" });
  }

  function clearFilters() {
    [fModel, fCond, fOutcome, fLabel, fFlag].forEach(function (s) { s.value = ""; });
    fSearch.value = "";
    fScope.value = "replies";
  }

  var timer = null;
  fSearch.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(applyFilters, 180);
  });
  [fModel, fCond, fOutcome, fLabel, fFlag, fScope].forEach(function (s) { s.addEventListener("change", applyFilters); });
  $("filters").addEventListener("submit", function (ev) { ev.preventDefault(); applyFilters(); });
  $("filters").addEventListener("reset", function (ev) { ev.preventDefault(); clearFilters(); applyFilters(); });
  $("p-prev").addEventListener("click", function () { if (page > 0) { page--; renderList(); } });
  $("p-next").addEventListener("click", function () { page++; renderList(); });
  window.addEventListener("hashchange", openFromHash);

  applyFilters();
  if (location.hash.indexOf("#trial=") === 0) { openFromHash(); }
  document.documentElement.setAttribute("data-ready", String(Math.round(performance.now())));
})();
