// The operator's dashboard. Pages poll small JSON endpoints (no long-poll: an
// idle tab never holds a server thread), stop while the tab is hidden, and can
// be switched off. DOM is built with textContent only: task args and errors
// are user data. All state changes are same-origin JSON with the CSRF header.
(function () {
  "use strict";
  var STATUSES = ["queued", "running", "waiting", "blocked", "succeeded", "failed", "cancelled"];
  var REFRESH_MS = 2000;
  var SVG = "http://www.w3.org/2000/svg";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";

  // -- helpers -------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "cls") node.className = attrs[key];
      else if (attrs[key] !== null && attrs[key] !== undefined) node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function badge(status) { return el("span", {cls: "badge s-" + status, text: status}); }
  function qs(params) {
    return Object.keys(params).filter(function (k) { return params[k] !== undefined && params[k] !== null && params[k] !== ""; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  }
  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    return (n / 1048576).toFixed(1) + " MiB";
  }
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor(seconds % 3600 / 60) + " min";
    return Math.floor(seconds / 86400) + " d " + Math.floor(seconds % 86400 / 3600) + " h";
  }
  function fmtTime(ts) {
    if (ts === null || ts === undefined) return "—";
    var d = new Date(ts * 1000);
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  // The banner saying the database is away: shown by any 503 of that kind, hidden
  // by the next answer that is not one.
  function showDatabaseBanner(away) {
    var banner = document.getElementById("db-banner");
    if (banner) banner.hidden = !away;
  }

  // fetch JSON; resolves {ok, status, body}; never rejects for HTTP errors.
  function api(method, url, body) {
    var options = {method: method, credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = csrf;
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
        showDatabaseBanner(response.status === 503 && parsed && parsed.error === "database unavailable");
        return {ok: response.ok, status: response.status, body: parsed};
      });
    }, function (err) { return {ok: false, status: 0, body: {error: String(err)}}; });
  }
  function errorText(result) {
    var body = result.body || {};
    if (result.status === 404 || result.status === 405) return "not available on this server";
    var detail = body.detail;
    if (detail && typeof detail !== "string") detail = JSON.stringify(detail);
    return (body.error || ("HTTP " + result.status)) + (detail ? ": " + detail : "");
  }

  // -- polling: every REFRESH_MS while visible and switched on ----------------
  function Poller(refresh, intervalMs) {
    var timer = null, running = false;
    var toggle = document.getElementById("live-toggle");
    var state = document.getElementById("live-state");
    var stored = window.localStorage ? localStorage.getItem("hopper.live") : null;
    if (toggle && stored === "off") toggle.checked = false;
    function enabled() { return (!toggle || toggle.checked) && document.visibilityState !== "hidden"; }
    function schedule() {
      clearTimeout(timer);
      timer = null;
      if (enabled()) timer = setTimeout(tick, intervalMs);
      if (state) state.textContent = toggle && !toggle.checked ? "(off)" :
        (document.visibilityState === "hidden" ? "(paused while hidden)" : "");
    }
    function tick() {
      if (running) return;
      running = true;
      Promise.resolve(refresh()).then(function () { running = false; schedule(); },
        function () { running = false; schedule(); });
    }
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && enabled()) tick(); else schedule();
    });
    if (toggle) toggle.addEventListener("change", function () {
      if (window.localStorage) localStorage.setItem("hopper.live", toggle.checked ? "on" : "off");
      if (toggle.checked) tick(); else schedule();
    });
    tick();
    return {now: tick};
  }

  // -- overview ------------------------------------------------------------
  // GET /api/queues: {queues: {name: {status: n}}} or per-queue objects with
  // counts, running, concurrency, paused; both shapes are read.
  function normalizeQueues(body) {
    var raw = body && body.queues !== undefined ? body.queues : body;
    var list = [];
    if (Array.isArray(raw)) {
      raw.forEach(function (q) { list.push(q); });
    } else if (raw && typeof raw === "object") {
      Object.keys(raw).forEach(function (name) {
        var value = raw[name] || {};
        var isCounts = Object.keys(value).every(function (k) { return typeof value[k] === "number"; });
        list.push(isCounts ? {name: name, counts: value} : Object.assign({name: name}, value));
      });
    }
    return list.map(function (q) {
      var counts = q.counts || {};
      return {name: q.name, counts: counts, paused: !!q.paused,
              concurrency: q.concurrency === undefined ? null : q.concurrency,
              running: q.running !== undefined ? q.running : (counts.running || 0)};
    }).sort(function (a, b) { return a.name < b.name ? -1 : 1; });
  }

  function queueCard(q, refreshNow) {
    var card = el("section", {cls: "card", "data-queue": q.name, "aria-label": "queue " + q.name});
    var title = el("h3", {}, [q.name]);
    if (q.paused) title.appendChild(el("span", {cls: "badge s-paused", text: "paused"}));
    card.appendChild(title);
    var dl = el("dl");
    STATUSES.forEach(function (s) {
      dl.appendChild(el("dt", {}, [badge(s)]));
      dl.appendChild(el("dd", {}, [el("a", {href: "/tasks?" + qs({queue: q.name, status: s}),
        "data-count": s, text: String(q.counts[s] || 0)})]));
    });
    card.appendChild(dl);
    var limit = q.concurrency === null ? "no limit" : String(q.concurrency);
    card.appendChild(el("p", {}, ["running ", el("strong", {cls: "running", text: String(q.running)}),
      " / concurrency ", el("strong", {cls: "concurrency", text: limit})]));
    var status = el("span", {cls: "muted", role: "status"});
    var action = q.paused ? "resume" : "pause";
    var button = el("button", {type: "button", cls: "pause-toggle", text: q.paused ? "Resume" : "Pause"});
    button.addEventListener("click", function () {
      button.disabled = true;
      api("POST", "/api/queues/" + encodeURIComponent(q.name) + "/" + action, {}).then(function (r) {
        status.textContent = r.ok ? (action === "pause" ? "paused" : "resumed") : errorText(r);
        button.disabled = false;
        refreshNow();
      });
    });
    var input = el("input", {type: "number", min: "0", max: "1000", value: q.concurrency === null ? "" : q.concurrency,
      "aria-label": "concurrency of " + q.name, placeholder: "∞"});
    var save = el("button", {type: "button", text: "Set"});
    save.addEventListener("click", function () {
      var patch = {queues: {}};
      patch.queues[q.name] = {concurrency: input.value === "" ? null : parseInt(input.value, 10)};
      api("PATCH", "/api/settings", patch).then(function (r) {
        status.textContent = r.ok ? "written to settings.yaml" : errorText(r);
      });
    });
    card.appendChild(el("div", {cls: "actions"}, [button, el("label", {}, ["concurrency ", input]), save, status]));
    return card;
  }

  function renderQueues(result, refreshNow) {
    var box = document.getElementById("queue-cards");
    var note = document.getElementById("queues-note");
    // Keep a card whose input has focus: a refresh must not steal the operator's typing.
    if (box.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
    clear(box);
    if (!result.ok) { note.textContent = "Queues: " + errorText(result); return; }
    var queues = normalizeQueues(result.body);
    note.textContent = queues.length ? "" : "No tasks yet.";
    queues.forEach(function (q) { box.appendChild(queueCard(q, refreshNow)); });
  }

  function perMinute(rows, now) {
    var end = Math.floor(now / 60) * 60, slots = [];
    var byMinute = {};
    rows.forEach(function (r) {
      var m = byMinute[r.minute] || (byMinute[r.minute] = {succeeded: 0, failed: 0, picked: 0, pickupTotal: 0});
      m.succeeded += r.succeeded; m.failed += r.failed; m.picked += r.picked;
      if (r.pickup_ms !== null && r.pickup_ms !== undefined) m.pickupTotal += r.pickup_ms * r.picked;
    });
    for (var i = 59; i >= 0; i--) {
      var minute = end - i * 60;
      slots.push(Object.assign({minute: minute}, byMinute[minute] || {succeeded: 0, failed: 0, picked: 0, pickupTotal: 0}));
    }
    return slots;
  }

  function drawThroughput(slots) {
    var chart = document.getElementById("throughput-chart");
    clear(chart);
    var left = 40, right = 595, top = 10, bottom = 140, width = (right - left) / slots.length;
    var max = Math.max(1, Math.max.apply(null, slots.map(function (s) { return s.succeeded + s.failed; })));
    chart.appendChild(svg("line", {x1: left, y1: bottom, x2: right, y2: bottom, "class": "axis"}));
    chart.appendChild(svg("line", {x1: left, y1: top, x2: left, y2: bottom, "class": "axis"}));
    chart.appendChild(svg("text", {x: left - 4, y: top + 8, "text-anchor": "end", "class": "label"}, String(max)));
    chart.appendChild(svg("text", {x: left - 4, y: bottom, "text-anchor": "end", "class": "label"}, "0"));
    chart.appendChild(svg("text", {x: left, y: bottom + 15, "class": "label"}, "−60 min"));
    chart.appendChild(svg("text", {x: right, y: bottom + 15, "text-anchor": "end", "class": "label"}, "now"));
    slots.forEach(function (s, i) {
      var x = left + i * width + 0.5, h1 = (bottom - top) * s.succeeded / max, h2 = (bottom - top) * s.failed / max;
      var tip = fmtTime(s.minute) + ": " + s.succeeded + " succeeded, " + s.failed + " failed";
      if (h1 > 0) chart.appendChild(svg("rect", {x: x, y: bottom - h1, width: Math.max(width - 1, 1), height: h1, "class": "ok"}))
        .appendChild(svg("title", {}, tip));
      if (h2 > 0) chart.appendChild(svg("rect", {x: x, y: bottom - h1 - h2, width: Math.max(width - 1, 1), height: h2, "class": "bad"}))
        .appendChild(svg("title", {}, tip));
    });
    var ok = 0, bad = 0;
    slots.forEach(function (s) { ok += s.succeeded; bad += s.failed; });
    document.getElementById("throughput-summary").textContent =
      "Last hour: " + ok + " succeeded, " + bad + " failed; last minute: " +
      slots[slots.length - 1].succeeded + " succeeded, " + slots[slots.length - 1].failed + " failed.";
  }

  function drawPickup(slots) {
    var chart = document.getElementById("pickup-chart");
    clear(chart);
    var left = 5, right = 295, top = 8, bottom = 92, width = (right - left) / (slots.length - 1);
    var values = slots.map(function (s) { return s.picked ? s.pickupTotal / s.picked : null; });
    var known = values.filter(function (v) { return v !== null; });
    var max = Math.max(1, Math.max.apply(null, known.length ? known : [1]));
    chart.appendChild(svg("line", {x1: left, y1: bottom, x2: right, y2: bottom, "class": "axis"}));
    var points = [];
    values.forEach(function (v, i) {
      if (v === null) return;
      var x = (left + i * width).toFixed(1), y = (bottom - (bottom - top) * v / max).toFixed(1);
      points.push(x + "," + y);
      chart.appendChild(svg("circle", {cx: x, cy: y, r: 2.5, "class": "dot"}))
        .appendChild(svg("title", {}, fmtTime(slots[i].minute) + ": " + v.toFixed(1) + " ms"));
    });
    if (points.length > 1) chart.appendChild(svg("polyline", {points: points.join(" "), "class": "line"}));
    chart.appendChild(svg("text", {x: left, y: top + 4, "class": "label"}, max.toFixed(1) + " ms"));
    var last = null;
    for (var i = values.length - 1; i >= 0; i--) { if (values[i] !== null) { last = values[i]; break; } }
    document.getElementById("pickup-now").textContent = last === null ? "—" : last.toFixed(1) + " ms";
    document.getElementById("pickup-summary").textContent = known.length ?
      "Mean over the minutes with pickups: " + (known.reduce(function (a, b) { return a + b; }, 0) / known.length).toFixed(1) + " ms" :
      "No task picked up in the last hour.";
  }

  function renderThroughput(result) {
    if (!result.ok) {
      document.getElementById("throughput-summary").textContent = "Throughput: " + errorText(result);
      return;
    }
    var slots = perMinute(result.body.minutes || [], result.body.now || Date.now() / 1000);
    drawThroughput(slots);
    drawPickup(slots);
  }

  function renderWorkers(result) {
    var body = document.querySelector("#workers-table tbody");
    clear(body);
    if (!result.ok) { body.appendChild(el("tr", {}, [el("td", {colspan: "7", text: errorText(result)})])); return; }
    var workers = result.body || [];
    document.getElementById("workers-count").textContent = "(" + workers.length + ")";
    if (!workers.length) body.appendChild(el("tr", {}, [el("td", {colspan: "7", cls: "muted", text: "no live workers"})]));
    workers.forEach(function (w) {
      var task = w.task_id ? el("a", {href: "/tasks/" + w.task_id, text: "#" + w.task_id}) : el("span", {cls: "muted", text: "—"});
      body.appendChild(el("tr", {"data-worker": w.id}, [
        el("td", {text: String(w.id).split(":")[0]}), el("td", {cls: "num", text: String(w.pid)}),
        el("td", {}, [el("span", {cls: "badge s-" + (w.task_id ? "running" : "queued"), text: w.state || "—"})]),
        el("td", {}, [task]),
        el("td", {cls: "num", text: w.cpu_percent === null ? "—" : Number(w.cpu_percent).toFixed(1)}),
        el("td", {cls: "num", text: fmtBytes(w.rss_bytes)}),
        el("td", {cls: "num", text: fmtDuration(Date.now() / 1000 - w.started_at)})]));
    });
  }

  // "ValueError: bad input" -> "ValueError"; a traceback's last line names the error.
  function errorType(error) {
    var lines = String(error || "").split("\n").map(function (l) { return l.trim(); }).filter(Boolean);
    var last = lines.length ? lines[lines.length - 1] : "(no error text)";
    var match = /^([A-Za-z_][\w.]*)(:|$)/.exec(last);
    return {type: match ? match[1] : last.slice(0, 60), message: last};
  }

  function renderFailures(result) {
    var list = document.getElementById("failures");
    clear(list);
    if (!result.ok) { list.appendChild(el("li", {text: "Failures: " + errorText(result)})); return; }
    var groups = {}, order = [];
    (result.body.tasks || []).forEach(function (t) {
      var kind = errorType(t.error);
      var g = groups[kind.type];
      if (!g) { g = groups[kind.type] = {type: kind.type, count: 0, latest: t, message: kind.message}; order.push(g); }
      g.count += 1;
    });
    if (!order.length) list.appendChild(el("li", {cls: "muted", text: "No failed tasks."}));
    order.forEach(function (g) {
      list.appendChild(el("li", {"data-error-type": g.type}, [
        badge("failed"), " ", el("strong", {text: g.type}), " × " + g.count + " — latest ",
        el("a", {href: "/tasks/" + g.latest.id, text: "#" + g.latest.id + " " + g.latest.name}), " ",
        el("a", {href: "/tasks?" + qs({status: "failed", q: g.type}), text: "(all)"}),
        el("br"), el("code", {text: g.message})]));
    });
  }

  function overviewPage() {
    var poller;
    function refresh() {
      return Promise.all([
        api("GET", "/api/queues"), api("GET", "/api/throughput?minutes=60"),
        api("GET", "/api/workers"), api("GET", "/api/tasks?status=failed&limit=100")
      ]).then(function (r) {
        renderQueues(r[0], function () { poller.now(); });
        renderThroughput(r[1]);
        renderWorkers(r[2]);
        renderFailures(r[3]);
      });
    }
    poller = Poller(refresh, REFRESH_MS);
  }

  // -- tasks: selection and bulk actions ------------------------------------
  function tasksPage() {
    var bar = document.getElementById("bulkbar");
    var filter = JSON.parse(bar.dataset.filter || "{}");
    var picks = function () { return Array.prototype.slice.call(document.querySelectorAll("input.pick")); };
    var selectAll = document.getElementById("select-all");
    var selectedButton = document.getElementById("bulk-selected");
    var matchingButton = document.getElementById("bulk-matching");
    var actionSelect = document.getElementById("bulk-action");
    var status = document.getElementById("bulk-status");
    var confirmBox = document.getElementById("bulk-confirm");
    var question = document.getElementById("bulk-question");
    var pending = null;

    function chosen() { return picks().filter(function (p) { return p.checked; }).map(function (p) { return parseInt(p.value, 10); }); }
    function label() {
      var verb = actionSelect.options[actionSelect.selectedIndex].text;
      var n = chosen().length;
      selectedButton.textContent = verb + " selected (" + n + ")";
      selectedButton.disabled = n === 0;
      matchingButton.textContent = verb + " all matching the filter";
    }
    function describe(f) {
      return ["status", "name", "queue", "q"].filter(function (k) { return f[k]; })
        .map(function (k) { return k + "=" + f[k]; }).join(", ");
    }
    function ask(text, request) {
      pending = request;
      question.textContent = text;
      confirmBox.hidden = false;
      document.getElementById("bulk-yes").focus();
    }
    selectAll.addEventListener("change", function () { picks().forEach(function (p) { p.checked = selectAll.checked; }); label(); });
    picks().forEach(function (p) { p.addEventListener("change", label); });
    actionSelect.addEventListener("change", label);
    selectedButton.addEventListener("click", function () {
      var ids = chosen(), action = actionSelect.value;
      ask(actionSelect.options[actionSelect.selectedIndex].text + " " + ids.length + " selected task(s)?",
          {action: action, ids: ids});
    });
    matchingButton.addEventListener("click", function () {
      var action = actionSelect.value;
      status.textContent = "counting…";
      api("POST", "/api/tasks/bulk", {action: action, filter: filter, dry_run: true}).then(function (r) {
        if (!r.ok) { status.textContent = errorText(r); return; }
        status.textContent = "";
        var capped = r.body.matched >= r.body.limit ? " (the first " + r.body.limit + "; run again for more)" : "";
        ask(actionSelect.options[actionSelect.selectedIndex].text + " " + r.body.matched + " task(s) matching " +
            describe(filter) + capped + "?", {action: action, filter: filter});
      });
    });
    document.getElementById("bulk-no").addEventListener("click", function () { confirmBox.hidden = true; pending = null; });
    document.getElementById("bulk-yes").addEventListener("click", function () {
      if (!pending) return;
      var request = pending;
      pending = null;
      confirmBox.hidden = true;
      status.textContent = "working…";
      api("POST", "/api/tasks/bulk", request).then(function (r) {
        status.textContent = r.ok ? request.action + ": " + r.body.changed + " of " + r.body.matched + " matched task(s) changed" : errorText(r);
        status.dataset.done = r.ok ? "yes" : "no";
        if (r.ok) setTimeout(function () { window.location.reload(); }, 1500);
      });
    });
    label();
  }

  // -- settings: running count, reload error, per-queue concurrency ------------
  function settingsPage() {
    var running = document.getElementById("workers-running");
    var errorBox = document.getElementById("reload-error");
    var errorText_ = document.getElementById("reload-error-text");
    var table = document.querySelector("#concurrency-table tbody");
    var status = document.getElementById("concurrency-status");
    var built = false;
    function buildConcurrency(queuesResult, settingsResult) {
      if (built && table.contains(document.activeElement)) return;
      var configured = (settingsResult.ok && settingsResult.body.settings.queues) || {};
      var names = {};
      Object.keys(configured).forEach(function (n) { names[n] = true; });
      if (queuesResult.ok) normalizeQueues(queuesResult.body).forEach(function (q) { names[q.name] = true; });
      clear(table);
      Object.keys(names).sort().forEach(function (name) {
        var current = configured[name] && configured[name].concurrency !== undefined ? configured[name].concurrency : null;
        var input = el("input", {type: "number", min: "0", max: "1000", value: current === null ? "" : current,
          placeholder: "no limit", "aria-label": "concurrency of " + name});
        var save = el("button", {type: "button", text: "Save"});
        save.addEventListener("click", function () {
          var patch = {queues: {}};
          patch.queues[name] = {concurrency: input.value === "" ? null : parseInt(input.value, 10)};
          api("PATCH", "/api/settings", patch).then(function (r) {
            status.textContent = r.ok ? name + ": concurrency written to settings.yaml" : name + ": " + errorText(r);
          });
        });
        table.appendChild(el("tr", {"data-queue": name}, [el("td", {text: name}), el("td", {}, [input]), el("td", {}, [save])]));
      });
      if (!Object.keys(names).length) table.appendChild(el("tr", {}, [el("td", {colspan: "3", cls: "muted", text: "no queues yet"})]));
      built = true;
    }
    function refresh() {
      return Promise.all([api("GET", "/api/workers"), api("GET", "/api/settings"), api("GET", "/api/queues")]).then(function (r) {
        running.textContent = r[0].ok ? String((r[0].body || []).length) : "?";
        if (r[1].ok) {
          var err = r[1].body.error;
          errorBox.hidden = !err;
          errorText_.textContent = err ? (err.error || JSON.stringify(err)) + (err.at ? " (" + fmtTime(err.at) + ")" : "") : "";
        }
        buildConcurrency(r[2], r[1]);
      });
    }
    Poller(refresh, 1000);
  }

  var page = document.querySelector("[data-page]");
  var pages = {overview: overviewPage, settings: settingsPage};
  if (page && pages[page.dataset.page]) pages[page.dataset.page]();
  if (document.getElementById("bulkbar")) tasksPage();
})();
