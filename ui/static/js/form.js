/* Record forms: conditional fields evaluated live with CrmExpr (the browser twin of
 * core/expressions.py; the server evaluates the same trees again on save), the region cascade,
 * rows of child tables, and the duplicate-name hint (重名提示). */
(function () {
  'use strict';
  var form = document.getElementById('record-form');
  if (!form) return;
  var today = form.getAttribute('data-today');
  var isNew = form.getAttribute('data-new') === 'true';
  var NUMBER = {integer: 1, decimal: 1, money: 1, percent: 1, rating: 1, link: 1, user: 1, department: 1};

  function fieldValue(box) {
    var type = box.getAttribute('data-type');
    var name = box.getAttribute('data-field');
    if (type === 'boolean') {
      var cb = box.querySelector('input[type="checkbox"][name="' + name + '"]');
      return cb ? cb.checked : null;
    }
    if (type === 'multiselect' || type === 'links') {
      var found = [];
      box.querySelectorAll('input[name="' + name + '"]').forEach(function (i) {
        if ((i.type !== 'checkbox' || i.checked) && i.value) found.push(type === 'links' ? Number(i.value) : i.value);
      });
      return found;
    }
    if (type === 'rating') {
      var r = box.querySelector('input[name="' + name + '"]:checked');
      return r && r.value ? Number(r.value) : null;
    }
    var input = box.querySelector('[name="' + name + '"]');
    if (!input) return undefined;  // read-only: not part of the form
    var v = input.value.trim();
    if (v === '') return null;
    if (NUMBER[type]) { var n = Number(v.replace(/,/g, '')); return isNaN(n) ? v : n; }
    return v;
  }

  var initial = {};
  try { initial = JSON.parse(form.getAttribute('data-values') || '{}'); } catch (e) { initial = {}; }

  function data() {
    var out = Object.assign({}, initial);
    form.querySelectorAll('[data-field]').forEach(function (box) {
      var v = fieldValue(box);
      if (v !== undefined) out[box.getAttribute('data-field')] = v;
    });
    return out;
  }

  function test(expr, values, fallback) {
    if (!expr) return fallback;
    try { return window.CrmExpr.truthy(window.CrmExpr.evaluate(JSON.parse(expr), values, today)); }
    catch (e) { return fallback; }
  }

  function setDisabled(box, off) {
    box.querySelectorAll('input, select, textarea, button').forEach(function (el) {
      if (off) { if (!el.disabled) { el.disabled = true; el.setAttribute('data-cond-disabled', ''); } }
      else if (el.hasAttribute('data-cond-disabled')) { el.disabled = false; el.removeAttribute('data-cond-disabled'); }
    });
  }

  function apply() {
    var values = data();
    form.querySelectorAll('[data-field]').forEach(function (box) {
      var visible = test(box.getAttribute('data-visible-if'), values, true);
      box.hidden = !visible;
      var required = box.getAttribute('data-static-required') === 'true' || test(box.getAttribute('data-required-if'), values, false);
      box.classList.toggle('is-required', required);
      var control = box.querySelector('input:not([type="hidden"]), select, textarea');
      if (control) control.setAttribute('aria-required', required ? 'true' : 'false');
      var readonly = isNew && test(box.getAttribute('data-readonly-if'), values, false);
      setDisabled(box, !visible || readonly);
    });
    form.querySelectorAll('fieldset[data-visible-if]').forEach(function (section) {
      var visible = test(section.getAttribute('data-visible-if'), values, true);
      section.hidden = !visible;
    });
  }
  form.addEventListener('input', apply);
  form.addEventListener('change', apply);
  apply();

  /* region cascade: one select per level, built from the tree; the original select keeps the value */
  form.querySelectorAll('[data-region]').forEach(function (box) {
    var select = box.querySelector('[data-region-select]');
    var tree;
    try { tree = JSON.parse(box.querySelector('[data-region-tree]').textContent); } catch (e) { return; }
    var path = [];
    (function find(nodes, trail) {
      nodes.forEach(function (n) {
        var t = trail.concat([n.v]);
        if (n.v === select.value) path = t;
        find(n.c, t);
      });
    })(tree, []);
    var holder = document.createElement('span');
    holder.className = 'region-cascade';
    select.hidden = true;
    select.setAttribute('aria-hidden', 'true');
    select.tabIndex = -1;
    box.insertBefore(holder, select);
    var label = form.querySelector('label[for="' + select.id + '"]');
    function levels() {
      holder.innerHTML = '';
      var nodes = tree, depth = 0;
      while (nodes && nodes.length) {
        var s = document.createElement('select');
        s.setAttribute('data-depth', depth);
        if (depth === 0) { s.id = select.id + '-cascade'; if (label) label.setAttribute('for', s.id); }
        else s.setAttribute('aria-label', (label ? label.textContent.replace('*', '') : '') + ' ' + (depth + 1));
        var blank = document.createElement('option');
        blank.value = ''; blank.textContent = '—';
        s.appendChild(blank);
        var chosen = null;
        nodes.forEach(function (n) {
          var o = document.createElement('option');
          o.value = n.v; o.textContent = n.l;
          if (path[depth] === n.v) { o.selected = true; chosen = n; }
          s.appendChild(o);
        });
        s.disabled = select.disabled;
        holder.appendChild(s);
        s.addEventListener('change', function (e) {
          var d = Number(e.target.getAttribute('data-depth'));
          path = path.slice(0, d);
          if (e.target.value) path.push(e.target.value);
          select.value = path.length ? path[path.length - 1] : '';
          levels();
          select.dispatchEvent(new Event('change', {bubbles: true}));
        });
        nodes = chosen ? chosen.c : null;
        depth += 1;
      }
    }
    levels();
  });

  /* child tables: add and remove rows; new rows get the next free index */
  form.querySelectorAll('[data-child-table]').forEach(function (box) {
    var body = box.querySelector('[data-rows]');
    var template = box.querySelector('[data-row-template]');
    var next = body.querySelectorAll('[data-row]').length;
    box.addEventListener('click', function (e) {
      if (e.target.closest('[data-remove-row]')) {
        e.target.closest('[data-row]').remove();
      } else if (e.target.closest('[data-add-row]') && template) {
        var html = template.innerHTML.replace(/__i__/g, String(next + 1000));
        next += 1;
        body.insertAdjacentHTML('beforeend', html);
        var first = body.lastElementChild.querySelector('input:not([type="hidden"]), select');
        if (first) first.focus();
      }
    });
  });

  /* 重名提示: similar names while typing the title */
  form.querySelectorAll('[data-similar]').forEach(function (input) {
    var hint = document.getElementById(input.id + '-similar');
    if (!hint || !input.getAttribute('data-similar')) return;
    var seq = 0;
    var check = window.CrmUi.debounce(function () {
      var name = input.value.trim(), mine = ++seq;
      if (name.length < 2) { hint.hidden = true; hint.innerHTML = ''; return; }
      var url = input.getAttribute('data-similar') + '?name=' + encodeURIComponent(name) + '&exclude=' + encodeURIComponent(input.getAttribute('data-exclude') || '');
      fetch(url, {headers: {'Accept': 'application/json'}, credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {items: []}; })
        .then(function (data) {
          if (mine !== seq) return;
          hint.innerHTML = '';
          var items = data.items || [];
          hint.hidden = !items.length;
          if (!items.length) return;
          var title = document.createElement('strong');
          title.textContent = hint.getAttribute('data-label') || (document.documentElement.lang === 'en' ? 'Similar names exist: ' : '已有相似名称:');
          hint.appendChild(title);
          items.forEach(function (item, i) {
            var a = document.createElement('a');
            a.href = item.url; a.target = '_blank'; a.rel = 'noopener';
            a.textContent = item.title + (item.detail ? ' (' + item.detail + ')' : '');
            hint.appendChild(a);
            if (i < items.length - 1) hint.appendChild(document.createTextNode(' · '));
          });
        }).catch(function () { hint.hidden = true; });
    }, 300);
    input.addEventListener('input', check);
  });
})();
