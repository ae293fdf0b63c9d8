// The header's inbound indicator: asks the server every 10 s how the relay connection is doing.
(function () {
  var EVERY_MS = 10000;

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "no events yet";
    if (seconds < 90) return "last event " + Math.max(0, Math.round(seconds)) + " s ago";
    if (seconds < 5400) return "last event " + Math.round(seconds / 60) + " min ago";
    if (seconds < 172800) return "last event " + Math.round(seconds / 3600) + " h ago";
    return "last event " + Math.round(seconds / 86400) + " days ago";
  }

  function show(badge, data) {
    if (data.mode !== "relay") { badge.hidden = true; return; }
    var parts = ["Relay: " + data.label, age(data.last_event_age_seconds)];
    if (data.backlog) parts.push("backlog " + data.backlog);
    if (data.quarantined) parts.push(data.quarantined + " quarantined");
    badge.textContent = parts.join(" · ");
    badge.title = data.message || "Inbound webhooks through the SigDesk relay";
    badge.className = "badge " + (data.state === "connected" && !data.quarantined ? "ok" : "warn");
    badge.hidden = false;
  }

  function poll(badge) {
    fetch(badge.getAttribute("data-status-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) show(badge, data); })
      .catch(function () { /* the server itself is unreachable; the page will say so on the next click */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var badge = document.getElementById("inbound-status");
    if (!badge) return;
    poll(badge);
    setInterval(function () { poll(badge); }, EVERY_MS);
  });
})();
