// pesagate dashboard: rows still PENDING or PROCESSING ask for their state until they are
// final, so a payment turns COMPLETE on the page without a reload. No framework, no CDN.
(function () {
  "use strict";
  var POLL_MS = 2000;

  function liveRows() {
    var table = document.querySelector("table[data-states-url]");
    if (table) {
      return {
        url: table.getAttribute("data-states-url"),
        rows: Array.prototype.slice.call(table.querySelectorAll("tr[data-live]")).map(function (tr) {
          return { id: tr.getAttribute("data-invoice"), el: tr, badge: tr.querySelector("[data-state]") };
        }),
      };
    }
    var facts = document.querySelector("[data-live-invoice]");
    if (facts) {
      return {
        url: facts.getAttribute("data-states-url"),
        rows: [{ id: facts.getAttribute("data-live-invoice"), el: facts, badge: facts.querySelector("[data-state]"), reload: true }],
      };
    }
    return null;
  }

  function poll(live) {
    if (!live.rows.length) return;
    var ids = live.rows.map(function (r) { return r.id; }).join(",");
    fetch(live.url + "?ids=" + encodeURIComponent(ids), { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.json() : {}; })
      .then(function (states) {
        live.rows = live.rows.filter(function (row) {
          var state = states[row.id];
          if (!state) return true;
          row.badge.textContent = state;
          row.badge.className = "state state-" + state;
          var final = state === "COMPLETE" || state === "FAILED";
          if (final && row.reload) window.location.reload();  // the timeline grew
          if (final) row.el.removeAttribute("data-live");
          return !final;
        });
      })
      .catch(function () {})
      .then(function () { if (live.rows.length) setTimeout(function () { poll(live); }, POLL_MS); });
  }

  // Ids and keys copy themselves when clicked.
  function copyOnClick() {
    Array.prototype.forEach.call(document.querySelectorAll("code.copy, pre.copy"), function (code) {
      code.title = "Click to copy";
      code.addEventListener("click", function () {
        if (!navigator.clipboard) return;
        navigator.clipboard.writeText(code.textContent.trim()).then(function () {
          code.classList.add("copied");
          setTimeout(function () { code.classList.remove("copied"); }, 1200);
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    copyOnClick();
    var live = liveRows();
    if (live && live.rows.length) setTimeout(function () { poll(live); }, POLL_MS);
  });
})();
