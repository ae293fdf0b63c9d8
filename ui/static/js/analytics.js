// The Analytics dashboard: fetches each card's table (GET /analytics/charts/<key>) and draws it: time series
// with the vendored uPlot, rankings and the funnel as bar tables, busiest hours as a heatmap. Colours come from
// the theme's CSS variables, and every chart is drawn again when the light/dark theme changes.
(function () {
  "use strict";

  var drawn = []; // [card, data] of every loaded card, to draw again on a theme change or resize

  function themeColor(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function palette() {
    return [themeColor("--accent", "#128c7e"), themeColor("--info", "#1f4f82"), themeColor("--warn", "#8a5a00"),
      themeColor("--danger", "#c0392b")];
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  function number(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    return value.toLocaleString(undefined, { maximumFractionDigits: 2 });
  }

  function label(key) {
    return key.replace(/_(s|pct)$/, "").replace(/_/g, " ");
  }

  function showTotals(card, data) {
    var box = card.querySelector("[data-totals]");
    box.textContent = "";
    Object.keys(data.totals).forEach(function (key) {
      var value = data.totals[key];
      var before = data.previous[key];
      var item = el("div", "analytics-total");
      item.setAttribute("data-total", key);
      var seconds = /_s$/.test(key);
      var percent = /_pct$/.test(key) && typeof value === "number";
      item.appendChild(el("strong", null, seconds ? duration(value) : number(value) + (percent ? " %" : "")));
      var caption = el("span", "muted small", label(key));
      item.appendChild(caption);
      if (typeof value === "number" && typeof before === "number" && before !== 0) {
        var change = Math.round(((value - before) / Math.abs(before)) * 100);
        var good = seconds ? change <= 0 : change >= 0;
        item.appendChild(el("span", "small " + (good ? "up" : "down"), " " + (change >= 0 ? "+" : "") + change + "%"));
      }
      if (before !== undefined) item.title = "Previous period: " + (seconds ? duration(before) : number(before));
      box.appendChild(item);
    });
    var notes = card.querySelector("[data-notes]");
    notes.textContent = "";
    data.notes.forEach(function (note) { notes.appendChild(el("li", null, note)); });
  }

  function utcSeconds(text) {
    var parts = String(text).split("-");
    return Date.UTC(+parts[0], +parts[1] - 1, +parts[2]) / 1000;
  }

  function drawLine(plot, data) {
    var colors = palette();
    var text = themeColor("--text", "#1b2430");
    var grid = themeColor("--border", "#d9dee5");
    var xs = data.rows.map(function (row) { return utcSeconds(row[0]); });
    var columns = [xs];
    var series = [{}];
    var current = 0;
    var hasCount = false;
    data.columns.slice(1).forEach(function (name, index) {
      var previous = /previous period/.test(name);
      var count = /^Orders/.test(name) && data.key === "revenue";
      hasCount = hasCount || count;
      var color = colors[(previous ? index - Math.floor((data.columns.length - 1) / 2) : current) % colors.length];
      if (!previous) current += 1;
      columns.push(data.rows.map(function (row) { return row[index + 1]; }));
      series.push({ label: name, stroke: color, width: 2, dash: previous ? [6, 4] : undefined, scale: count ? "count" : "y",
        points: { show: xs.length < 40 } });
    });
    var axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    var axes = [Object.assign({}, axis), Object.assign({}, axis)];
    if (hasCount) axes.push(Object.assign({}, axis, { scale: "count", side: 1, grid: { show: false } }));
    var width = Math.max(240, plot.clientWidth || 400);
    plot.textContent = "";
    // eslint-disable-next-line no-new
    new window.uPlot({
      width: width, height: 240, series: series, axes: axes,
      scales: { x: { time: true }, count: { auto: true } },
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }
    }, columns, plot);
  }

  function table(columns) {
    var node = el("table", "table analytics-table");
    var head = el("tr");
    columns.forEach(function (name) { head.appendChild(el("th", null, name)); });
    var thead = el("thead");
    thead.appendChild(head);
    node.appendChild(thead);
    node.appendChild(el("tbody"));
    return node;
  }

  function scrolling(node) {
    var box = el("div", "table-scroll");
    box.appendChild(node);
    return box;
  }

  function drawBars(plot, data, barColumn) {
    var node = table(data.columns.concat([""]));
    var max = 0;
    data.rows.forEach(function (row) { max = Math.max(max, +row[barColumn] || 0); });
    data.rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (cell) { tr.appendChild(el("td", null, number(cell))); });
      var bar = el("div", "analytics-bar");
      bar.style.width = (max ? Math.round((100 * (+row[barColumn] || 0)) / max) : 0) + "%";
      var td = el("td");
      td.appendChild(bar);
      tr.appendChild(td);
      node.tBodies[0].appendChild(tr);
    });
    plot.textContent = "";
    if (!data.rows.length) { plot.appendChild(el("p", "muted", "Nothing in this period.")); return; }
    plot.appendChild(scrolling(node));
  }

  function drawTable(plot, data) {
    var node = table(data.columns);
    data.rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (cell, index) {
        var seconds = /\(s\)|seconds/.test(String(data.columns[index]) + String(row[0]));
        tr.appendChild(el("td", null, seconds && typeof cell === "number" ? duration(cell) : number(cell)));
      });
      node.tBodies[0].appendChild(tr);
    });
    plot.textContent = "";
    if (!data.rows.length) { plot.appendChild(el("p", "muted", "Nothing in this period.")); return; }
    plot.appendChild(scrolling(node));
  }

  function drawHeatmap(plot, data) {
    var node = el("table", "analytics-heatmap");
    var max = 0;
    data.rows.forEach(function (row) { row.slice(1).forEach(function (v) { max = Math.max(max, v); }); });
    var head = el("tr");
    head.appendChild(el("th"));
    for (var hour = 0; hour < 24; hour += 1) head.appendChild(el("th", null, hour % 3 === 0 ? String(hour) : ""));
    node.appendChild(head);
    data.rows.forEach(function (row) {
      var tr = el("tr");
      tr.appendChild(el("th", null, row[0]));
      row.slice(1).forEach(function (value, index) {
        var td = el("td");
        td.style.opacity = max ? (0.08 + (0.92 * value) / max).toFixed(2) : "0.08";
        td.title = row[0] + " " + String(index).padStart(2, "0") + ":00 – " + value;
        tr.appendChild(td);
      });
      node.appendChild(tr);
    });
    plot.textContent = "";
    plot.appendChild(scrolling(node));
  }

  function draw(card, data) {
    var plot = card.querySelector("[data-plot]");
    showTotals(card, data);
    if (data.kind === "line") {
      if (window.uPlot) drawLine(plot, data); else drawTable(plot, data);
    } else if (data.kind === "bar") {
      var revenue = data.columns.findIndex(function (name) { return /^Revenue/.test(name); });
      drawBars(plot, data, revenue >= 0 ? revenue : data.columns.length - 1);
    } else if (data.kind === "funnel") {
      drawBars(plot, data, 1);
    } else if (data.kind === "heatmap") {
      drawHeatmap(plot, data);
    } else {
      drawTable(plot, data);
    }
    card.setAttribute("data-loaded", "true");
  }

  function load(card) {
    var url = card.getAttribute("data-url") + window.location.search;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (!answer.ok) {
          card.querySelector("[data-plot]").textContent = answer.body.error || "This chart could not be loaded.";
          card.setAttribute("data-loaded", "error");
          return;
        }
        drawn.push([card, answer.body]);
        draw(card, answer.body);
      })
      .catch(function () {
        card.querySelector("[data-plot]").textContent = "This chart could not be loaded.";
        card.setAttribute("data-loaded", "error");
      });
  }

  function redraw() {
    drawn.forEach(function (pair) { draw(pair[0], pair[1]); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var period = document.getElementById("period");
    var start = document.getElementById("period-start");
    var end = document.getElementById("period-end");
    function custom() {
      var isCustom = period && period.value === "custom";
      [start, end].forEach(function (input) { if (input) input.disabled = !isCustom; });
    }
    if (period) { period.addEventListener("change", custom); custom(); }
    document.querySelectorAll(".analytics-chart").forEach(load);
    new MutationObserver(redraw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(redraw, 200);
    });
  });
})();
