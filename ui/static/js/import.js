/* Import wizard: the dry run and the import are one request each and may take a while. With
 * JavaScript the form is sent with fetch() so that the page stays alive and shows a progress bar,
 * fed by polling the upload's progress URL (any app server answers it from the shared files/
 * folder); the answer (the report, or the form again with a message) then replaces the page.
 * Without JavaScript the form is submitted normally and the browser just waits. */
(function () {
  'use strict';
  function show(html, url) {
    document.open();
    document.write(html);
    document.close();
    if (url) history.replaceState(null, '', url);
  }
  document.querySelectorAll('form[data-progress]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.fetch || !window.FormData) return;
      event.preventDefault();
      var submitter = event.submitter;
      var action = (submitter && submitter.getAttribute('formaction')) || form.getAttribute('action');
      var data = new FormData(form);
      if (submitter && submitter.name) data.append(submitter.name, submitter.value);
      var box = document.querySelector('[data-progress-box]');
      var bar = box && box.querySelector('progress');
      var text = box && box.querySelector('[data-progress-text]');
      var url = form.getAttribute('data-progress');
      if (box) box.hidden = false;
      form.querySelectorAll('button[type="submit"]').forEach(function (b) { b.disabled = true; });
      var timer = setInterval(function () {
        fetch(url, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (p) {
            if (!p || !bar) return;
            if (p.total) bar.max = p.total;
            bar.value = p.done || 0;
            if (text) text.textContent = (p.done || 0) + ' / ' + (p.total || 0);
          })
          .catch(function () {});
      }, 700);
      fetch(action, {method: 'POST', body: data, credentials: 'same-origin'})
        .then(function (r) { return r.text().then(function (html) { clearInterval(timer); show(html, r.redirected ? r.url : null); }); })
        .catch(function () { clearInterval(timer); form.submit(); });
    });
  });
})();
