/* List page: the count the page gave up waiting for, select all rows, the count of selected rows,
 * and the value input that belongs to the field chosen for a bulk change. */
(function () {
  'use strict';
  var counts = document.querySelectorAll('[data-count-url]');
  if (counts.length && window.fetch) {
    fetch(counts[0].getAttribute('data-count-url'), {credentials: 'same-origin', headers: {Accept: 'application/json'}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (found) {
        if (!found || found.stopped || !found.text) return;  // the page keeps what it showed ("50+")
        counts.forEach(function (el) { el.textContent = found.text; });
      })
      .catch(function () {});
  }
  var form = document.getElementById('bulk-form');
  if (!form) return;
  var all = form.querySelector('[data-select-all]');
  var counter = form.querySelector('[data-selected-count]');
  function boxes() { return Array.prototype.slice.call(form.querySelectorAll('input[name="ids"]')); }
  function update() {
    var chosen = boxes().filter(function (b) { return b.checked; }).length;
    if (counter) counter.textContent = String(chosen);
    if (all) {
      all.checked = chosen > 0 && chosen === boxes().length;
      all.indeterminate = chosen > 0 && chosen < boxes().length;
    }
  }
  if (all) all.addEventListener('change', function () {
    boxes().forEach(function (b) { b.checked = all.checked; });
    update();
  });
  form.addEventListener('change', function (e) { if (e.target.name === 'ids') update(); });
  var chooser = form.querySelector('[data-bulk-field]');
  if (chooser) chooser.addEventListener('change', function () {
    form.querySelectorAll('[data-bulk-value]').forEach(function (box) {
      var on = box.getAttribute('data-bulk-value') === chooser.value;
      box.hidden = !on;
      box.querySelectorAll('input, select').forEach(function (input) { input.disabled = !on; });
    });
  });
  update();
})();
