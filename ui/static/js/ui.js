// Behaviour shared by every page: the confirmation dialog for destructive actions (data-confirm),
// closing the user menu, and the settings menu's select on narrow screens (data-navigate).
(function () {
  "use strict";

  // --- confirm: <form data-confirm="Delete this label?"> or <button data-confirm="..."> --------
  var dialog = null;
  var pending = null;

  function confirmText(form, submitter) {
    if (submitter && submitter.hasAttribute("data-confirm")) return submitter.getAttribute("data-confirm");
    return form.getAttribute("data-confirm");
  }

  function ask(form, submitter, text) {
    var okLabel = (submitter && submitter.getAttribute("data-confirm-ok")) || form.getAttribute("data-confirm-ok") || "Continue";
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(text)) proceed(form, submitter);
      return;
    }
    pending = { form: form, submitter: submitter };
    document.getElementById("confirm-message").textContent = text;
    document.getElementById("confirm-ok").textContent = okLabel;
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  }

  function proceed(form, submitter) {
    form.setAttribute("data-confirmed", "1");
    if (typeof form.requestSubmit === "function") form.requestSubmit(submitter || undefined);
    else form.submit();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method === "dialog") return;
    if (form.getAttribute("data-confirmed") === "1") { form.removeAttribute("data-confirmed"); return; }
    var text = confirmText(form, event.submitter);
    if (!text) return;
    event.preventDefault();
    ask(form, event.submitter, text);
  }, true);

  // --- user menu: close on a click elsewhere or Escape -----------------------------------------
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    dialog = document.getElementById("confirm-dialog");
    if (dialog) {
      dialog.addEventListener("close", function () {
        var chosen = pending;
        pending = null;
        if (chosen && dialog.returnValue === "ok") proceed(chosen.form, chosen.submitter);
      });
    }
    document.querySelectorAll("select[data-navigate]").forEach(function (select) {
      select.addEventListener("change", function () { if (select.value) window.location.assign(select.value); });
    });
  });
})();
