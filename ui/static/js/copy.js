// Copy buttons: <button data-copy="element-id"> copies that element's text (a verify token, a callback URL).
// navigator.clipboard needs HTTPS or localhost; on a LAN address the text is selected and copied the old way.
(function () {
  "use strict";
  function done(button) {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  }
  function fallback(source, button) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try {
      if (document.execCommand("copy")) { done(button); }
    } catch (ignored) { /* the text stays selected for Ctrl+C */ }
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      if (!source) { return; }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () { done(button); },
          function () { fallback(source, button); });
      } else {
        fallback(source, button);
      }
    });
  });
})();
