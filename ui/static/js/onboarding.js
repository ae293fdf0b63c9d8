// First-run wizard: relay fields only when the relay is chosen, a passphrase match hint, the suggested folder.
(function () {
  "use strict";
  var relayFields = document.getElementById("relay-fields");
  if (relayFields) {
    var radios = document.querySelectorAll("#inbound-form input[name=mode]");
    var update = function () {
      var relay = document.querySelector("#inbound-form input[name=mode][value=relay]");
      relayFields.hidden = !(relay && relay.checked);
    };
    radios.forEach(function (radio) { radio.addEventListener("change", update); });
    update();
  }

  var first = document.getElementById("passphrase");
  var second = document.getElementById("passphrase-confirm");
  var hint = document.getElementById("passphrase-hint");
  if (first && second && hint) {
    var check = function () {
      hint.hidden = !second.value || first.value === second.value;
    };
    first.addEventListener("input", check);
    second.addEventListener("input", check);
  }

  var suggest = document.getElementById("use-suggested-folder");
  var folder = document.getElementById("backup-folder");
  if (suggest && folder) {
    suggest.addEventListener("click", function () { folder.value = suggest.dataset.folder; folder.focus(); });
  }
})();
