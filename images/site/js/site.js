// Shows when the page was loaded and how long the load took, from the
// browser's own timing.
document.addEventListener("DOMContentLoaded", function () {
  var out = document.getElementById("loaded");
  if (!out) return;
  var t = performance.now();
  out.textContent = "Page and its objects loaded in " + t.toFixed(1) + " ms at " + new Date().toUTCString() + ".";
});
