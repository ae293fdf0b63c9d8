// Admin → Backups: while a backup runs, asks the server for its progress every second.
(function () {
  var box = document.getElementById("backup-progress");
  if (!box || box.getAttribute("data-state") !== "running") return;
  var bar = box.querySelector("progress");
  var text = document.getElementById("backup-progress-text");

  function poll() {
    fetch(box.getAttribute("data-status-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        if (data.state === "running") {
          bar.max = data.total || 1;
          bar.value = data.done || 0;
          setTimeout(poll, 1000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
