// The worker slider: PATCH /api/settings when it is released. The session
// cookie authenticates the browser; the CSRF header proves the page is ours.
(function () {
  var slider = document.getElementById("workers");
  if (!slider) return;
  var output = document.getElementById("workers-value");
  var status = document.getElementById("workers-status");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  slider.addEventListener("input", function () { output.value = slider.value; });
  slider.addEventListener("change", function () {
    status.textContent = "saving…";
    fetch(slider.dataset.endpoint, {
      method: "PATCH",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({workers: parseInt(slider.value, 10)})
    }).then(function (response) {
      return response.json().then(function (body) {
        status.textContent = response.ok
          ? "written to settings.yaml: workers " + body.written.workers
          : "error: " + body.error + (body.detail ? " (" + body.detail + ")" : "");
      });
    }).catch(function (err) { status.textContent = "error: " + err; });
  });
})();
