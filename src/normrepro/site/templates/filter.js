(function () {
  var outcome = document.getElementById("outcome-filter"), source = document.getElementById("source-filter");
  var rows = document.querySelectorAll("#claims tbody tr"), shown = document.getElementById("shown");
  function apply() {
    var n = 0;
    rows.forEach(function (row) {
      var ok = (!outcome.value || row.dataset.outcome === outcome.value) &&
               (!source.value || row.dataset.sources.split(" ").indexOf(source.value) >= 0);
      row.hidden = !ok;
      n += ok ? 1 : 0;
    });
    shown.textContent = n + " of " + rows.length + " claims shown";
  }
  outcome.addEventListener("change", apply);
  source.addEventListener("change", apply);
  apply();
})();
