// The console's only script besides htmx (served from this origin; no inline script anywhere).
"use strict";
(function () {
  function status(text) {
    var el = document.getElementById("status");
    if (el) { el.textContent = text; }
  }
  // "Select every order shown" in the hold queue.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.classList || !box.classList.contains("select-all")) { return; }
    var form = box.closest("form");
    form.querySelectorAll('input[type="checkbox"][name="order_id"]').forEach(function (c) {
      c.checked = box.checked;
    });
  });
  document.addEventListener("htmx:responseError", function (event) {
    status("The server could not do that (HTTP " + event.detail.xhr.status + "). Nothing was changed by the failed request; try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    status("The server cannot be reached. Check the connection and try again.");
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    status("");
    // After a swap, move keyboard focus to the first message or error in the new content.
    var target = event.detail.target;
    var message = target && target.querySelector && target.querySelector(".notice, .error");
    if (message) {
      message.setAttribute("tabindex", "-1");
      message.focus();
    }
  });
})();
