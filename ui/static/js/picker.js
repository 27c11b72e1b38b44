/* Link pickers (data-picker="single" | "multi"): search as you type against the page's JSON
 * look-up (data-lookup, ?q=, pinyin initials work), pick with the mouse or the keyboard (arrows,
 * Enter, Escape). "single" writes the id into its hidden input; "multi" adds a chip with a hidden
 * input named data-name. */
(function () {
  'use strict';
  function setup(box) {
    var mode = box.getAttribute('data-picker');
    var input = box.querySelector('input[role="combobox"]');
    var list = box.querySelector('[role="listbox"]');
    var hidden = box.querySelector('[data-picker-value]');
    var chips = box.querySelector('[data-picker-chips]');
    var items = [], active = -1, seq = 0;
    if (!input || !list) return;

    function close() { list.hidden = true; input.setAttribute('aria-expanded', 'false'); active = -1; input.removeAttribute('aria-activedescendant'); }
    function highlight(i) {
      var options = list.querySelectorAll('[role="option"]');
      options.forEach(function (o, j) { o.setAttribute('aria-selected', j === i ? 'true' : 'false'); });
      active = i;
      if (options[i]) { input.setAttribute('aria-activedescendant', options[i].id); options[i].scrollIntoView({block: 'nearest'}); }
    }
    function choose(item) {
      if (mode === 'single') {
        hidden.value = item.id;
        input.value = item.title;
        hidden.dispatchEvent(new Event('change', {bubbles: true}));
      } else {
        var name = box.getAttribute('data-name');
        if (!chips.querySelector('input[value="' + item.id + '"]')) {
          var li = document.createElement('li');
          li.className = 'chip';
          var h = document.createElement('input');
          h.type = 'hidden'; h.name = name; h.value = item.id;
          li.appendChild(h);
          li.appendChild(document.createTextNode(item.title + ' '));
          var b = document.createElement('button');
          b.type = 'button'; b.className = 'chip-remove'; b.setAttribute('data-picker-remove', '');
          b.setAttribute('aria-label', (box.getAttribute('data-remove-label') || 'Remove') + ' ' + item.title);
          b.textContent = '×';
          li.appendChild(b);
          chips.appendChild(li);
        }
        input.value = '';
      }
      close();
    }
    function render() {
      list.innerHTML = '';
      items.forEach(function (item, i) {
        var li = document.createElement('li');
        li.id = list.id + '-o' + i;
        li.setAttribute('role', 'option');
        li.setAttribute('aria-selected', 'false');
        li.textContent = item.title;
        if (item.detail) {
          var small = document.createElement('small');
          small.textContent = ' ' + item.detail;
          li.appendChild(small);
        }
        li.addEventListener('mousedown', function (e) { e.preventDefault(); choose(item); });
        list.appendChild(li);
      });
      list.hidden = !items.length;
      input.setAttribute('aria-expanded', items.length ? 'true' : 'false');
      active = -1;
    }
    var search = window.CrmUi.debounce(function () {
      var mine = ++seq;
      fetch(box.getAttribute('data-lookup') + '?q=' + encodeURIComponent(input.value.trim()), {
        headers: {'Accept': 'application/json'}, credentials: 'same-origin'
      }).then(function (r) { return r.ok ? r.json() : {items: []}; }).then(function (data) {
        if (mine !== seq) return;
        items = data.items || [];
        render();
      }).catch(function () { items = []; render(); });
    }, 200);
    input.addEventListener('input', function () {
      if (mode === 'single' && hidden.value) { hidden.value = ''; hidden.dispatchEvent(new Event('change', {bubbles: true})); }
      search();
    });
    input.addEventListener('focus', function () { if (!input.value) search(); });
    input.addEventListener('blur', function () { setTimeout(close, 150); });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'ArrowDown') { e.preventDefault(); if (list.hidden) search(); else highlight(Math.min(active + 1, items.length - 1)); }
      else if (e.key === 'ArrowUp') { e.preventDefault(); highlight(Math.max(active - 1, 0)); }
      else if (e.key === 'Enter' && !list.hidden && active >= 0) { e.preventDefault(); choose(items[active]); }
      else if (e.key === 'Escape') { close(); }
    });
    if (chips) chips.addEventListener('click', function (e) {
      var b = e.target.closest('[data-picker-remove]');
      if (b) { b.closest('li').remove(); input.focus(); }
    });
  }
  document.querySelectorAll('[data-picker]').forEach(setup);
  // pickers added later (list.js's bulk change): set up those inside ``root``
  window.CrmPickers = function (root) { root.querySelectorAll('[data-picker]').forEach(setup); };
})();
