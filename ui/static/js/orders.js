// Orders where agents work: the inbox's side panel, the contact page and the thread's cart cards.
// The server renders every fragment (sigdesk/sales/pages.py); this script loads them into
// [data-orders-src] and [data-cart-order-src] wherever they appear (the inbox replaces its panel and
// thread as it goes), and sends the editors' changes as JSON. A refused change shows its message by
// the field it names and leaves the form as typed.
(function () {
  "use strict";
  var csrf = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  var PENDING_TRIES = 20;

  function request(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRFToken": csrf } };
    if (body !== undefined) { options.body = JSON.stringify(body); options.headers["Content-Type"] = "application/json"; }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function fragment(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    });
  }

  // --- loading the fragments ------------------------------------------------------------------
  function loadPanel(holder) {
    holder.setAttribute("data-loaded", "1");
    return fragment(holder.getAttribute("data-orders-src")).then(function (html) {
      holder.innerHTML = html;
    }).catch(function () {
      holder.innerHTML = '<p class="muted small">Orders could not be loaded.</p>';
    });
  }

  function loadCart(holder, tries) {
    holder.setAttribute("data-loaded", "1");
    fragment(holder.getAttribute("data-cart-order-src")).then(function (html) {
      holder.innerHTML = html;
      // the worker makes the draft order a moment after the cart arrives: look again for a while
      if (holder.querySelector("[data-pending]") && tries < PENDING_TRIES) {
        setTimeout(function () { if (holder.isConnected) loadCart(holder, tries + 1); }, 1000);
      }
    }).catch(function () { /* the cart itself stays shown */ });
  }

  function scan(scope) {
    scope.querySelectorAll("[data-orders-src]:not([data-loaded])").forEach(function (holder) { loadPanel(holder); });
    scope.querySelectorAll("[data-cart-order-src]:not([data-loaded])").forEach(function (holder) { loadCart(holder, 0); });
  }

  function reloadPanel(node) {
    var holder = node.closest("[data-orders-src]");
    if (holder) return loadPanel(holder);
    return Promise.resolve();
  }

  function reloadCarts() {
    document.querySelectorAll("[data-cart-order-src]").forEach(function (holder) { loadCart(holder, PENDING_TRIES); });
  }

  // --- errors by field --------------------------------------------------------------------------
  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid]").forEach(function (input) { input.removeAttribute("aria-invalid"); });
    var out = form.querySelector(".panel-error");
    if (out) out.textContent = "";
  }

  function showError(form, data) {
    var out = form.querySelector(".panel-error");
    var field = (data && data.field) || "";
    // a wrong shape names the body's field ("lines") and, in its message, the place: 'lines.0.unit_price': ...
    var quoted = /^'(lines\.\d+\.\w+)'/.exec((data && data.error) || "");
    if (field === "lines" && quoted) field = quoted[1];
    var match = /^lines\.(\d+)\.(\w+)/.exec(field);
    var input = null;
    if (match) {
      var line = form.querySelectorAll("[data-line]")[parseInt(match[1], 10)];
      var name = match[2] === "sku" ? "product_id" : match[2];
      if (line) input = line.querySelector("[name=" + name + "]:not([type=hidden])") || line.querySelector("[name=quantity]");
    } else if (field) {
      input = form.querySelector("[name='" + field.split(".")[0] + "']");
    }
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    if (out) out.textContent = (data && data.error) || "That did not work; try again.";
  }

  // --- the editor: lines, product picker ------------------------------------------------------
  function newLine(form, product) {
    var panel = form.closest("[data-orders]");
    var template = panel.querySelector("template[data-line-template]");
    var line = template.content.firstElementChild.cloneNode(true);
    var description = line.querySelector("[name=description]");
    if (product) {
      line.querySelector("[name=product_id]").value = product.id;
      var label = line.querySelector("[data-line-product]");
      label.textContent = product.name + " ";
      var code = document.createElement("code");
      code.textContent = product.sku;
      label.appendChild(code);
      if (product.price !== null) label.appendChild(document.createTextNode(" · " + product.price + " " + product.currency));
      description.hidden = true;
      line.querySelector("[name=unit_price]").placeholder = product.price !== null ? product.price : "no price yet";
    } else {
      description.hidden = false;
    }
    form.querySelector("[data-lines]").appendChild(line);
    (product ? line.querySelector("[name=quantity]") : description).focus();
  }

  function lineBody(line) {
    function value(name) { var input = line.querySelector("[name=" + name + "]"); return input ? input.value.trim() : ""; }
    var productId = value("product_id");
    var body = { quantity: value("quantity") };
    if (productId) body.product_id = parseInt(productId, 10);
    else body.description = value("description");
    if (value("unit_price")) body.unit_price = value("unit_price");
    if (value("price_reason")) body.price_reason = value("price_reason");
    return body;
  }

  var searchTimer = null;
  function search(input) {
    var panel = input.closest("[data-orders]");
    var results = input.closest(".product-picker").querySelector("[data-product-results]");
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      var url = panel.getAttribute("data-products-url") + "?q=" + encodeURIComponent(input.value.trim());
      request("GET", url).then(function (result) {
        results.innerHTML = "";
        if (!result.ok) return;
        result.data.items.forEach(function (product) {
          var item = document.createElement("li");
          var button = document.createElement("button");
          button.type = "button";
          button.className = "small";
          button.setAttribute("data-pick-product", JSON.stringify(product));
          button.textContent = product.name + " (" + product.sku + ")" + (product.price !== null ? " · " + product.price + " " + product.currency : "");
          item.appendChild(button);
          results.appendChild(item);
        });
        if (!result.data.items.length) results.innerHTML = '<li class="muted small">No product matches.</li>';
      });
    }, 200);
  }

  // --- events -------------------------------------------------------------------------------------
  document.addEventListener("input", function (event) {
    if (event.target.matches("[data-product-search]")) search(event.target);
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    var pick = target.closest("[data-pick-product]");
    if (pick) {
      var form = pick.closest("form");
      newLine(form, JSON.parse(pick.getAttribute("data-pick-product")));
      pick.closest("[data-product-results]").innerHTML = "";
      form.querySelector("[data-product-search]").value = "";
      return;
    }
    if (target.closest("[data-add-free-line]")) { newLine(target.closest("form"), null); return; }
    if (target.closest("[data-remove-line]")) { target.closest("[data-line]").remove(); return; }
    var confirm = target.closest("[data-cart-confirm]");
    if (confirm) {
      confirm.disabled = true;
      var card = confirm.closest("[data-cart-order]");
      request("POST", confirm.getAttribute("data-url"), { status: "confirmed" }).then(function (result) {
        confirm.disabled = false;
        if (!result.ok) { card.querySelector(".panel-error").textContent = result.data.error || "Could not confirm."; return; }
        reloadCarts();
        document.querySelectorAll("[data-orders-src]").forEach(function (holder) { loadPanel(holder); });
      });
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var body = null;
    if (form.matches("[data-order-editor]")) {
      body = { lines: Array.prototype.map.call(form.querySelectorAll("[data-line]"), lineBody) };
      var notes = form.querySelector("[name=notes]").value.trim();
      body.notes = notes || null;
    } else if (form.matches("[data-order-status-form]")) {
      body = { status: form.querySelector("[name=status]").value };
      var note = form.querySelector("[name=note]").value.trim();
      if (note) body.note = note;
    } else if (form.matches("[data-order-confirmation]")) {
      body = { conversation_id: parseInt(form.getAttribute("data-conversation-id"), 10) };
      var text = form.querySelector("[name=text]");
      var template = form.querySelector("[name=template_id]");
      if (text) body.text = text.value;
      if (template) {
        if (template.value) body.template_id = parseInt(template.value, 10);
        var params = form.querySelector("[name=params]");
        var values = params ? params.value.split("\n").map(function (v) { return v.trim(); }).filter(Boolean) : [];
        var wanted = template.selectedOptions[0] ? parseInt(template.selectedOptions[0].getAttribute("data-variables"), 10) || 0 : 0;
        if (wanted) body.params = { body: values.slice(0, wanted) };
      }
    } else {
      return;
    }
    // ours alone: the inbox's panel has submit handlers of its own for its other forms
    event.preventDefault();
    event.stopPropagation();
    clearErrors(form);
    var submit = form.querySelector("[type=submit]");
    if (submit) submit.disabled = true;
    request("POST", form.getAttribute("data-url"), body).then(function (result) {
      if (submit) submit.disabled = false;
      if (!result.ok) { showError(form, result.data); return; }
      if (form.matches("[data-order-confirmation]")) {
        form.querySelector(".panel-error").textContent = "Confirmation queued.";
        return;
      }
      reloadPanel(form).then(reloadCarts);
    });
  }, true);

  // --- wherever the fragments appear ----------------------------------------------------------------
  function start() {
    scan(document);
    new MutationObserver(function () { scan(document); }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
