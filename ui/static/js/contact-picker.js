// Admin → Exports: find a contact by name or phone number and choose them, a page at a time
// (GET data-search-url, the exportsContacts page call). Without this script "Find" posts the form instead.
(function () {
  "use strict";

  function setUp(picker) {
    var input = picker.querySelector("input[type=search]");
    var results = picker.querySelector(".picker-results");
    var options = picker.querySelector(".picker-options");
    var more = picker.querySelector(".picker-more");
    var none = picker.querySelector(".picker-none");
    var find = picker.querySelector(".picker-find");
    var cursor = null;
    var timer = null;
    var asked = 0;

    function option(contact) {
      var label = document.createElement("label");
      label.className = "check";
      var radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "contact_id";
      radio.value = String(contact.id);
      radio.required = true;
      var number = document.createElement("span");
      number.className = "muted";
      number.textContent = contact.wa_id || contact.user_id || "";
      label.appendChild(radio);
      label.appendChild(document.createTextNode(" " + contact.name + " "));
      label.appendChild(number);
      return label;
    }

    function show(data, append) {
      var kept = options.querySelector("input:checked");
      if (!append) {
        Array.prototype.slice.call(options.children).forEach(function (label) {
          if (!kept || !label.contains(kept)) options.removeChild(label);
        });
      }
      data.items.forEach(function (contact) {
        if (kept && kept.value === String(contact.id)) return;
        options.appendChild(option(contact));
      });
      cursor = data.next_cursor;
      results.hidden = options.children.length === 0;
      more.hidden = !cursor;
      none.textContent = "No contact matches.";
      none.hidden = data.items.length > 0 || append;
    }

    function search(append) {
      var ticket = ++asked;
      var url = picker.getAttribute("data-search-url") + "?q=" + encodeURIComponent(input.value.trim());
      if (append && cursor) url += "&cursor=" + encodeURIComponent(cursor);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
        .then(function (data) { if (ticket === asked) show(data, append); })
        .catch(function () {
          if (ticket !== asked) return;
          none.textContent = "The search did not answer; try again.";
          none.hidden = false;
        });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { search(false); }, 250);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      event.preventDefault();
      clearTimeout(timer);
      search(false);
    });
    find.addEventListener("click", function (event) {
      event.preventDefault();
      clearTimeout(timer);
      search(false);
    });
    more.addEventListener("click", function () { search(true); });
  }

  document.querySelectorAll(".contact-picker").forEach(setUp);
})();
