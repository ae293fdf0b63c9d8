// Settings → Contact fields: show only the parts of the definition form that the chosen kind uses.
(function () {
  "use strict";
  const PARTS = { ".cf-for-choice": ["choice", "choices"], ".cf-for-currency": ["currency"], ".cf-for-text": ["text", "link"] };
  document.querySelectorAll("select[name=kind]").forEach(function (select) {
    const form = select.form;
    function show() {
      Object.keys(PARTS).forEach(function (selector) {
        form.querySelectorAll(selector).forEach(function (part) {
          part.hidden = PARTS[selector].indexOf(select.value) < 0;
        });
      });
    }
    select.addEventListener("change", show);
    show();
  });
})();
