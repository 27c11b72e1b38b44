/* Small behaviours every page shares: confirmation of dangerous buttons, the CSRF token for
 * scripts (window.CrmUi.csrf), and tabs (role=tablist) with arrow-key navigation.
 * Plain script, no dependencies; the pages work without it (tabs then show every panel). */
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="csrf-token"]');
  window.CrmUi = {
    csrf: meta ? meta.getAttribute('content') : '',
    debounce: function (fn, ms) {
      var timer = null;
      return function () {
        var args = arguments, self = this;
        clearTimeout(timer);
        timer = setTimeout(function () { fn.apply(self, args); }, ms);
      };
    }
  };

  document.addEventListener('click', function (event) {
    var button = event.target.closest('[data-confirm]');
    if (button && button.getAttribute('data-confirm') && !window.confirm(button.getAttribute('data-confirm'))) {
      event.preventDefault();
    }
  });

  function setupTabs(list) {
    var tabs = Array.prototype.slice.call(list.querySelectorAll('[role="tab"]'));
    if (!tabs.length) return;
    function select(tab, focus, remember) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute('aria-selected', on ? 'true' : 'false');
        t.tabIndex = on ? 0 : -1;
        var panel = document.getElementById(t.getAttribute('aria-controls'));
        if (panel) panel.hidden = !on;
      });
      if (focus) tab.focus();
      if (remember) history.replaceState(null, '', '#' + tab.id);
    }
    tabs.forEach(function (tab, i) {
      tab.addEventListener('click', function () { select(tab, false, true); });
      tab.addEventListener('keydown', function (e) {
        var next = null;
        if (e.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
        else if (e.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
        else if (e.key === 'Home') next = tabs[0];
        else if (e.key === 'End') next = tabs[tabs.length - 1];
        if (next) { e.preventDefault(); select(next, true, true); }
      });
    });
    var wanted = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    var errored = tabs.filter(function (t) { return t.getAttribute('data-has-error') === 'true'; })[0];
    if (wanted && wanted.closest && wanted.closest('.tab-panel') && !tabs.includes(wanted)) {
      var panel = wanted.closest('.tab-panel');
      wanted = tabs.filter(function (t) { return t.getAttribute('aria-controls') === panel.id; })[0];
    }
    select(errored || (tabs.includes(wanted) ? wanted : null) || tabs.filter(function (t) {
      return t.getAttribute('aria-selected') === 'true';
    })[0] || tabs[0], false);
  }
  document.querySelectorAll('[role="tablist"]').forEach(setupTabs);
})();
