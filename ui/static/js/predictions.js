// Reorders pages: while a prediction refresh is queued or running, asks the server where it is every two
// seconds and moves the progress bar; when it ends, reloads the page to show the new forecasts.
(function () {
  "use strict";
  var box = document.getElementById("refresh-status");
  if (!box) return;
  var state = box.getAttribute("data-state");
  if (state !== "queued" && state !== "running") return;
  var bar = document.getElementById("refresh-progress");

  function show(name, value) {
    var cell = box.querySelector('[data-count="' + name + '"]');
    if (cell) cell.textContent = value;
  }

  function poll() {
    fetch(box.getAttribute("data-status-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { setTimeout(poll, 5000); return; }
        if (data.state === "queued" || data.state === "running") {
          if (bar) {
            bar.max = data.total || 1;
            bar.value = data.processed || 0;
          }
          show("processed", String(data.processed));
          show("total", String(data.total));
          setTimeout(poll, 2000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
