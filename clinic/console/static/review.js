// The review page: "Select all in this group" ticks or unticks every message of its group.
(function () {
  "use strict";
  document.querySelectorAll(".review-form").forEach(function (form) {
    var all = form.querySelector(".select-all");
    if (!all) return;
    all.addEventListener("change", function () {
      form.querySelectorAll('input[name="item"]').forEach(function (box) { box.checked = all.checked; });
    });
  });
})();
