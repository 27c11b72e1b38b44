/* Import wizard: while the dry run or the import works (one request), show a progress bar fed
 * by polling the upload's progress URL (any app server answers it from the shared files/
 * folder). The form is submitted normally; without JavaScript the page just waits. */
(function () {
  'use strict';
  document.querySelectorAll('form[data-progress]').forEach(function (form) {
    form.addEventListener('submit', function () {
      var box = document.querySelector('[data-progress-box]');
      var bar = box && box.querySelector('progress');
      var text = box && box.querySelector('[data-progress-text]');
      var url = form.getAttribute('data-progress');
      if (box) box.hidden = false;
      setTimeout(function () {  // after the submission started: a disabled button would not be sent
        form.querySelectorAll('button[type="submit"]').forEach(function (b) { b.disabled = true; });
      }, 0);
      function poll() {
        fetch(url, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (p) {
            if (!p || !bar) return;
            if (p.total) bar.max = p.total;
            bar.value = p.done || 0;
            if (text) text.textContent = (p.done || 0) + ' / ' + (p.total || 0);
          })
          .catch(function () {});
      }
      setInterval(poll, 700);
    });
  });
})();
