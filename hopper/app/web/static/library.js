// The library browser: "Load more" pages through GET /api/library; "Export CSV"
// enqueues library.export, polls the task and offers its artifact. State changes
// are JSON POSTs carrying the CSRF token, so they work with auth on and pass the
// same-origin and content-type checks.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.content : "";
  var POLL_MS = 500;
  var POLL_LIMIT_MS = 10 * 60 * 1000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function takenText(takenAt) {
    return takenAt ? takenAt.replace("T", " ").slice(0, 16) : "—";
  }

  function durationText(seconds) {
    var total = Math.round(seconds), h = Math.floor(total / 3600);
    var m = Math.floor((total % 3600) / 60), s = total % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  // The same markup as library_card.html, built without innerHTML.
  function card(item) {
    var li = el("li", "lib-card");
    var link = el("a");
    var tile = el("span", "lib-tile");
    var label = item.label || item.kind;
    link.href = "/library/" + item.id;
    if (item.thumbnail === "ready") {
      var img = el("img", item.mime === "application/pdf" ? "lib-thumb lib-page" : "lib-thumb");
      img.src = "/api/library/" + item.id + "/thumbnail";
      img.loading = "lazy";
      img.alt = "";
      tile.appendChild(img);
      if (item.kind !== "image" || item.duration) {
        var badge = (item.kind === "video" ? "\u25b6 " : "") + label +
          (item.duration ? " \u00b7 " + durationText(item.duration) : "");
        tile.appendChild(el("span", "lib-badge", badge));
      }
    } else {
      var box = el("span", "lib-thumb lib-placeholder");
      box.appendChild(el("span", "lib-kind", label));
      var undecodable = item.thumbnail === "none" && item.previewable;
      var state = item.thumbnail === "pending" ? "preview pending"
        : undecodable ? "no preview: cannot be decoded" : item.kind;
      box.appendChild(el("span", "lib-state", state));
      tile.appendChild(box);
    }
    link.appendChild(tile);
    link.appendChild(el("span", "lib-name", item.name));
    link.appendChild(el("span", "lib-date", takenText(item.taken_at)));
    li.appendChild(link);
    return li;
  }

  function setupMore() {
    var more = document.getElementById("lib-more");
    var grid = document.getElementById("lib-grid");
    if (!more || !grid) return;
    more.addEventListener("click", function (event) {
      event.preventDefault();
      var query = more.dataset.query ? more.dataset.query + "&" : "";
      var url = "/api/library?" + query + "limit=" + more.dataset.limit +
        "&cursor=" + more.dataset.cursor;
      more.textContent = "Loading…";
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          return response.json().then(function (body) {
            if (!response.ok) throw new Error(body.error + (body.detail ? ": " + body.detail : ""));
            return body;
          });
        })
        .then(function (body) {
          body.items.forEach(function (item) { grid.appendChild(card(item)); });
          if (body.next_cursor === null) {
            more.parentNode.removeChild(more);
            return;
          }
          more.dataset.cursor = body.next_cursor;
          more.href = "/library?" + query + "limit=" + more.dataset.limit +
            "&cursor=" + body.next_cursor;
          more.textContent = "Load more";
        })
        .catch(function (err) { more.textContent = "Load more (last try failed: " + err.message + ")"; });
    });
  }

  function api(method, url, body) {
    var headers = {"Accept": "application/json"};
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrf;
    }
    return fetch(url, {method: method, credentials: "same-origin", headers: headers,
                       body: body === undefined ? undefined : JSON.stringify(body)})
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error + (data.detail ? ": " + data.detail : ""));
          return data;
        });
      });
  }

  function setupExport() {
    var button = document.getElementById("lib-export");
    var status = document.getElementById("lib-export-status");
    if (!button || !status) return;
    button.addEventListener("click", function () {
      button.disabled = true;
      status.textContent = "Export queued…";
      var started = Date.now();
      api("POST", button.dataset.endpoint, {name: "library.export", args: {}})
        .then(function (task) { return poll(task.id); })
        .catch(function (err) { finish("Export failed: " + err.message); });

      function poll(id) {
        return api("GET", "/api/tasks/" + id).then(function (task) {
          if (task.status === "succeeded") return offer(task);
          if (task.status === "failed" || task.status === "cancelled") {
            var reason = (task.error || "").trim().split("\n").pop();
            finish("Export " + task.status + (reason ? ": " + reason : ""));
            return null;
          }
          if (Date.now() - started > POLL_LIMIT_MS) {
            finish("Export still " + task.status + " after 10 minutes; see task #" + id);
            return null;
          }
          status.textContent = "Export " + task.status + "…";
          return new Promise(function (resolve) { setTimeout(resolve, POLL_MS); })
            .then(function () { return poll(id); });
        });
      }

      function offer(task) {
        status.textContent = "";
        status.appendChild(document.createTextNode("Export ready (" + task.result.rows +
          " item" + (task.result.rows === 1 ? "" : "s") + "): "));
        var link = el("a", null, "Download " + task.result.artifact);
        link.id = "lib-export-download";
        link.href = "/api/tasks/" + task.id + "/artifact";
        link.setAttribute("download", task.result.artifact);
        status.appendChild(link);
        button.disabled = false;
        link.focus();
      }

      function finish(text) {
        status.textContent = text;
        button.disabled = false;
      }
    });
  }

  setupMore();
  setupExport();
})();
