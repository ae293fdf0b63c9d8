// The Contacts page and the contact page. Without this script both work as plain pages (GET filters,
// form posts); with it the table filters without a reload (the server renders the table as a fragment),
// the URL keeps the filter, the chosen columns are remembered, and the contact page follows live changes.
(function () {
  "use strict";

  var COLUMNS_KEY = "sigdesk-contact-columns";
  var DEFAULT_SORT = "-created_at"; // sigdesk.segments.services.DEFAULT_SORT: left out of the URL

  function fetchText(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text().then(function (text) { return { text: text, response: response }; });
    });
  }

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  // --- the Contacts page -------------------------------------------------------------------------
  var listPage = document.getElementById("contacts-page");
  if (listPage) {
    var form = document.getElementById("contact-filter");
    var base = listPage.getAttribute("data-index-url");
    var timer = null;
    var latest = 0;

    var savedColumns = {};
    try { savedColumns = JSON.parse(localStorage.getItem(COLUMNS_KEY) || "{}") || {}; } catch (error) { savedColumns = {}; }

    function applyColumns() {
      document.querySelectorAll("#column-chooser input[data-column]").forEach(function (box) {
        var key = box.getAttribute("data-column");
        if (Object.prototype.hasOwnProperty.call(savedColumns, key)) box.checked = !!savedColumns[key];
        document.querySelectorAll('#contacts [data-col="' + key + '"]').forEach(function (cell) { cell.hidden = !box.checked; });
      });
    }

    document.getElementById("column-chooser").addEventListener("change", function (event) {
      var key = event.target.getAttribute("data-column");
      if (!key) return;
      savedColumns[key] = event.target.checked;
      try { localStorage.setItem(COLUMNS_KEY, JSON.stringify(savedColumns)); } catch (error) { /* private mode: not remembered */ }
      applyColumns();
    });

    function query() {
      // the form's values without the empty ones, and conditions only when their field is chosen
      var data = new FormData(form);
      var params = new URLSearchParams();
      var fields = data.getAll("f"), ops = data.getAll("o"), values = data.getAll("v");
      data.forEach(function (value, key) {
        if (key === "f" || key === "o" || key === "v") return;
        if (key === "sort" && value === DEFAULT_SORT) return;
        if (value !== "") params.append(key, value);
      });
      fields.forEach(function (field, index) {
        if (!field) return;
        params.append("f", field);
        params.append("o", ops[index] || "is");
        params.append("v", values[index] || "");
      });
      return params.toString();
    }

    function pickedIds() {
      return Array.prototype.map.call(document.querySelectorAll('#contact-rows input[name="ids"]:checked'), function (box) { return box.value; });
    }

    function updatePicked() {
      var ids = pickedIds();
      var label = document.getElementById("picked-count");
      if (label) label.textContent = ids.length ? ids.length + " chosen" : "None chosen";
      var exportLink = document.getElementById("export-these");
      var table = document.getElementById("contact-table");
      if (exportLink && table) {
        var whole = table.getAttribute("data-export-url");
        if (ids.length && !document.getElementById("bulk-all").checked) {
          exportLink.href = exportLink.getAttribute("data-selection-url") + "?ids=" + encodeURIComponent(ids.join(","));
          exportLink.textContent = "Export chosen";
          exportLink.hidden = false;
        } else {
          // no export URL: the filter cannot be exported as one definition (or cannot run): no stale link
          if (whole) exportLink.href = whole;
          exportLink.textContent = "Export these";
          exportLink.hidden = !whole;
        }
      }
    }

    function afterTable() {
      var table = document.getElementById("contact-table");
      var current = table ? table.getAttribute("data-query") : "";
      document.querySelectorAll("[data-filter-query]").forEach(function (input) { input.value = current; });
      var count = document.getElementById("bulk-all-count");
      if (count && table) count.textContent = table.getAttribute("data-total");
      applyColumns();
      updatePicked();
    }

    function refresh() {
      var params = query();
      var url = base + (params ? "?" + params : "");
      history.replaceState(null, "", url);
      var mine = ++latest;
      fetchText(base + "?" + (params ? params + "&" : "") + "fragment=table").then(function (result) {
        if (mine !== latest) return;
        var fresh = parse(result.text).getElementById("contact-table");
        var current = document.getElementById("contact-table");
        if (fresh && current) current.replaceWith(document.importNode(fresh, true));
        document.getElementById("bulk-all").checked = false;
        afterTable();
      }).catch(function () { form.submit(); });
    }

    function later(delay) {
      clearTimeout(timer);
      timer = setTimeout(refresh, delay);
    }

    // another condition row: a copy of the last, emptied (without the script, each filtering adds one)
    var addCondition = document.getElementById("add-condition");
    if (addCondition) {
      addCondition.hidden = false;
      addCondition.addEventListener("click", function () {
        var rows = document.querySelectorAll("#conditions .condition");
        var last = rows[rows.length - 1];
        var copy = last.cloneNode(true);
        copy.querySelector('select[name="f"]').value = "";
        copy.querySelector('select[name="o"]').value = "is";
        copy.querySelector('input[name="v"]').value = "";
        last.parentNode.insertBefore(copy, last.nextSibling);
        copy.querySelector('select[name="f"]').focus();
      });
    }

    form.addEventListener("input", function (event) { if (event.target.matches("input")) later(250); });
    form.addEventListener("change", function (event) {
      if (event.target.closest("#column-chooser")) return;
      later(0);
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); later(0); });

    listPage.addEventListener("click", function (event) {
      var sort = event.target.closest("a[data-sort]");
      if (sort) {
        var select = document.getElementById("filter-sort");
        if (select) { event.preventDefault(); select.value = sort.getAttribute("data-sort"); later(0); }
        return;
      }
      var more = event.target.closest("#contacts-more");
      if (more) {
        event.preventDefault();
        more.setAttribute("aria-busy", "true");
        fetchText(more.href + (more.href.indexOf("?") < 0 ? "?" : "&") + "fragment=rows").then(function (result) {
          var rows = parse("<table><tbody>" + result.text + "</tbody></table>").querySelectorAll("tbody > tr");
          var body = document.getElementById("contact-rows");
          rows.forEach(function (row) { body.appendChild(document.importNode(row, true)); });
          var next = result.response.headers.get("X-Next-Url");
          if (next) { more.href = next; more.removeAttribute("aria-busy"); } else { more.parentNode.remove(); }
          applyColumns();
        }).catch(function () { window.location.assign(more.href); });
      }
    });

    listPage.addEventListener("change", function (event) {
      if (event.target.id === "pick-page") {
        document.querySelectorAll('#contact-rows input[name="ids"]').forEach(function (box) { box.checked = event.target.checked; });
      }
      if (event.target.name === "ids" || event.target.id === "pick-page" || event.target.id === "bulk-all") updatePicked();
    });

    afterTable();
  }

  // --- the contact page --------------------------------------------------------------------------
  var contactPage = document.getElementById("contact-page");
  if (contactPage) {
    var contactId = contactPage.getAttribute("data-contact-id");
    var refreshing = null;

    function refreshLive() {
      // the head, consent and timeline as the server has them now; the record form keeps what is typed
      if (refreshing) return;
      refreshing = fetchText(window.location.pathname).then(function (result) {
        var fresh = parse(result.text);
        contactPage.querySelectorAll("[data-live]").forEach(function (node) {
          var name = node.getAttribute("data-live");
          var replacement = fresh.querySelector('[data-live="' + name + '"]');
          if (!replacement) return;
          var typing = node.contains(document.activeElement) && document.activeElement.matches("input, textarea, select");
          if (!typing) node.replaceWith(document.importNode(replacement, true));
        });
      }).catch(function () { /* offline for a moment: the next event tries again */ }).then(function () { refreshing = null; });
    }

    contactPage.addEventListener("click", function (event) {
      var older = event.target.closest("#timeline-older");
      if (!older) return;
      event.preventDefault();
      fetchText(older.getAttribute("data-more-url")).then(function (result) {
        var holder = parse("<ol>" + result.text + "</ol>").querySelectorAll("ol > li");
        var list = document.getElementById("timeline");
        older.parentNode.remove();
        holder.forEach(function (item) { list.appendChild(document.importNode(item, true)); });
      }).catch(function () { window.location.assign(older.href); });
    });

    if (window.EventSource) {
      var source = new EventSource(contactPage.getAttribute("data-events-url"));
      source.addEventListener("contact.updated", function (event) {
        var data = {};
        try { data = JSON.parse(event.data || "{}"); } catch (error) { data = {}; }
        if (String(data.contact_id) === contactId) refreshLive();
      });
      source.addEventListener("resync", refreshLive);
      window.addEventListener("pagehide", function () { source.close(); });
    }
  }
})();
