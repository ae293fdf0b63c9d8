// Broadcasts: the form shows the chosen template's variables; the draft page previews the words a chosen recipient
// would get; the campaign page asks the server for the campaign's state every 2 s (GET .../progress) and draws it:
// counts, the progress bar, the pause banner, failures grouped and a uPlot chart over time. Everything shown comes
// from the server on each poll, so leaving the page and coming back loses nothing; when the status changes (paused,
// resumed, completed) the page is loaded again, so its buttons match.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var SERIES = ["sent", "delivered", "read", "replied", "failed", "skipped"];

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    });
  }

  function themeColor(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // --- the form -------------------------------------------------------------------------------------------
  function templatePicker() {
    var select = document.querySelector("[data-template-select]");
    if (!select) return;
    function show() {
      document.querySelectorAll("fieldset[data-template]").forEach(function (box) {
        box.hidden = box.getAttribute("data-template") !== select.value;
      });
    }
    select.addEventListener("change", show);
    show();
    var pick = function (radio) { return function () { var r = document.getElementById(radio); if (r) r.checked = true; }; };
    var segment = document.getElementById("field-segment_id");
    if (segment) segment.addEventListener("change", pick("audience-segment"));
    var imported = document.getElementById("field-import_id");
    if (imported) imported.addEventListener("change", pick("audience-import"));
    var when = document.getElementById("field-scheduled_at");
    if (when) when.addEventListener("change", pick("when-later"));
  }

  // --- the draft page's preview ---------------------------------------------------------------------------
  function preview() {
    var form = document.getElementById("preview-form");
    if (!form) return;
    var select = document.getElementById("preview-contact");
    var box = document.getElementById("preview-text");
    var testContact = document.getElementById("test-contact");
    form.querySelectorAll("[data-no-js]").forEach(function (button) { button.hidden = true; });
    select.addEventListener("change", function () {
      var url = form.getAttribute("data-preview-url") + "?contact_id=" + encodeURIComponent(select.value);
      if (testContact) testContact.value = select.value;
      getJson(url).then(function (answer) {
        box.textContent = "";
        if (!answer.ok) { box.textContent = answer.body.error || "The preview could not be loaded."; return; }
        if (answer.body.text !== null) { box.textContent = answer.body.text; return; }
        var note = document.createElement("span");
        note.className = "flash flash-warning";
        note.textContent = "Skipped: " + answer.body.reason;
        box.appendChild(note);
      }).catch(function () { box.textContent = "The preview could not be loaded."; });
    });
  }

  // --- the campaign page ----------------------------------------------------------------------------------
  var plot = null;
  var lastSeries = null;

  function drawChart(series) {
    var box = document.getElementById("progress-chart");
    if (!box) return;
    lastSeries = series;
    if (!window.uPlot) return;
    if (!series.at.length) {
      box.innerHTML = "";
      var empty = document.createElement("p");
      empty.className = "muted small";
      empty.textContent = "Nothing sent yet.";
      box.appendChild(empty);
      plot = null;
      return;
    }
    var data = [series.at].concat(SERIES.map(function (name) { return series[name]; }));
    var colors = [themeColor("--accent", "#128c7e"), themeColor("--info", "#1f4f82"), themeColor("--ok", "#146c43"),
      themeColor("--warn", "#8a5a00"), themeColor("--danger", "#c0392b"), themeColor("--muted", "#5b6675")];
    var width = Math.max(200, box.clientWidth || 400);
    if (plot && plot.width === width) { plot.setData(data); return; }
    var text = themeColor("--text", "#1b2430");
    var grid = themeColor("--border", "#d9dee5");
    var axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    box.innerHTML = "";
    if (plot) plot.destroy();
    var zone = document.body.getAttribute("data-timezone") || "Etc/UTC";
    plot = new window.uPlot({
      width: width, height: 220, axes: [Object.assign({}, axis), Object.assign({}, axis)],
      // at least a minute wide, so the first seconds are not drawn in tenths of a second
      scales: { x: { time: true, range: function (u, min, max) { return [min, Math.max(max, min + 60)]; } } },
      series: [{}].concat(SERIES.map(function (name, index) {
        return { label: name, stroke: colors[index], width: 2, points: { show: false } };
      })),
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1e3), zone); }
    }, data, box);
  }

  function showFailures(failures) {
    var table = document.getElementById("failure-groups");
    if (!table || !failures.length) return;
    var body = table.tBodies[0];
    body.textContent = "";
    failures.forEach(function (group) {
      var tr = document.createElement("tr");
      [group.reason, group.code === null ? "" : String(group.code), String(group.count)].forEach(function (value) {
        var td = document.createElement("td");
        td.textContent = value;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function show(root, data) {
    Object.keys(data.counts).forEach(function (state) {
      var node = root.querySelector('[data-count="' + state + '"]');
      if (node) node.textContent = data.counts[state];
    });
    var bar = document.getElementById("campaign-progress");
    if (bar) { bar.max = data.recipient_count || 1; bar.value = data.done; }
    var text = document.getElementById("progress-text");
    if (text) text.textContent = data.done + " of " + data.recipient_count + " done";
    var banner = document.getElementById("pause-banner");
    if (banner) { banner.textContent = data.banner || ""; banner.hidden = !data.banner; }
    // the recipient filter's "Sent (12)" follow the same counts as the tiles
    document.querySelectorAll("[data-state-option]").forEach(function (option) {
      var state = option.getAttribute("data-state-option");
      if (state in data.counts) option.textContent = option.getAttribute("data-word") + " (" + data.counts[state] + ")";
    });
    var badge = document.getElementById("broadcast-status");
    if (badge) badge.textContent = data.status;
    showFailures(data.failures);
    drawChart(data.series);
  }

  function campaign() {
    var root = document.getElementById("campaign");
    if (!root) return;
    var url = root.getAttribute("data-progress-url");
    var status = root.getAttribute("data-status");
    var kind = root.getAttribute("data-pause-kind");
    function poll() {
      getJson(url).then(function (answer) {
        if (!answer.ok) { setTimeout(poll, POLL_MS * 3); return; }
        var data = answer.body;
        show(root, data);
        root.setAttribute("data-polled", String(Date.now()));
        if (data.status !== status || (data.pause_kind || "") !== kind) {
          // buttons and banner follow the new status: load the page as it is now
          window.location.reload();
          return;
        }
        if (!data.final) setTimeout(poll, POLL_MS);
      }).catch(function () { setTimeout(poll, POLL_MS * 3); });
    }
    poll();
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { if (lastSeries) { if (plot) { plot.destroy(); plot = null; } drawChart(lastSeries); } }, 200);
    });
    new MutationObserver(function () {
      if (lastSeries) { if (plot) { plot.destroy(); plot = null; } drawChart(lastSeries); }
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    var state = document.getElementById("recipient-state");
    if (state) state.addEventListener("change", function () { state.form.submit(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    templatePicker();
    preview();
    campaign();
  });
})();
