// Contacts → Import: while an import is queued or running, or being undone, asks the server where it is
// every second and moves the progress bar; when it ends, reloads the page to show the result (counts,
// error report, undo).
(function () {
  var box = document.getElementById("import-job");
  if (!box) return;
  var state = box.getAttribute("data-state");
  if (state !== "queued" && state !== "running" && state !== "undoing") return;
  var bar = document.getElementById("import-progress");

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
          show("processed", data.total !== null ? data.processed + " of " + data.total : String(data.processed));
          show("created", String(data.created));
          show("updated", String(data.updated));
          show("rejected", String(data.rejected));
          show("lines", String(data.lines));
          show("contacts_created", String(data.contacts_created));
          setTimeout(poll, 1000);
        } else if (data.state === "undoing") {
          if (bar) {
            bar.max = data.undo_total || 1;
            bar.value = data.undo_processed || 0;
          }
          show("undo_processed", data.undo_processed + " of " + (data.undo_total || 0));
          show("deleted", String(data.deleted));
          show("restored", String(data.restored));
          show("kept", String(data.kept));
          show("removed", String(data.removed));
          setTimeout(poll, 1000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
