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
  // the chosen field's value input comes from the server (page.bulk.value): a select of its
  // options, a picker or a plain input; a quicker second choice wins over a slower first one
  var chooser = form.querySelector('[data-bulk-field]');
  var slot = form.querySelector('[data-bulk-slot]');
  var asked = 0;
  function valueInput() {
    var mine = ++asked, name = chooser.value;
    slot.innerHTML = '';
    if (!name) return;
    fetch(chooser.getAttribute('data-bulk-value-url') + '?field=' + encodeURIComponent(name),
          {credentials: 'same-origin', headers: {Accept: 'text/html'}})
      .then(function (r) { return r.ok ? r.text() : ''; })
      .then(function (html) {
        if (mine !== asked) return;
        slot.innerHTML = html;
        if (window.CrmPickers) window.CrmPickers(slot);
      })
      .catch(function () {});
  }
  if (chooser && slot) {
    chooser.addEventListener('change', valueInput);
    if (chooser.value) valueInput();   // a field the browser kept chosen (back, reload)
  }
  update();
})();
