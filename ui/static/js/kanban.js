/* Kanban: drag a card to another column (HTML5 drag and drop). The move is posted as JSON with
 * the card's version and the CSRF token; the server updates the record through the record
 * service. On a conflict or a refusal the message is shown and the board reloads. The select on
 * each card does the same without a mouse. */
(function () {
  'use strict';
  var board = document.querySelector('[data-kanban]');
  if (!board || board.getAttribute('data-editable') !== 'true') return;
  var status = document.querySelector('[data-kanban-status]');
  var dragged = null;

  function say(text, kind) {
    if (!status) return;
    status.textContent = text;
    status.className = 'kanban-status flash flash-' + (kind || 'info');
  }
  function count(column, delta) {
    var badge = column.querySelector('[data-column-count]');
    if (badge) badge.textContent = String(Math.max(0, Number(badge.textContent) + delta));
  }

  board.addEventListener('dragstart', function (e) {
    var card = e.target.closest('.kanban-card');
    if (!card) return;
    dragged = card;
    card.classList.add('dragging');
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', card.getAttribute('data-id'));
  });
  board.addEventListener('dragend', function () {
    if (dragged) dragged.classList.remove('dragging');
    board.querySelectorAll('.drop-target').forEach(function (c) { c.classList.remove('drop-target'); });
    dragged = null;
  });
  board.addEventListener('dragover', function (e) {
    var column = e.target.closest('.kanban-column');
    if (!column || !dragged) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
    board.querySelectorAll('.drop-target').forEach(function (c) { if (c !== column) c.classList.remove('drop-target'); });
    column.classList.add('drop-target');
  });
  board.addEventListener('drop', function (e) {
    var column = e.target.closest('.kanban-column');
    if (!column || !dragged) return;
    e.preventDefault();
    column.classList.remove('drop-target');
    var card = dragged, from = card.closest('.kanban-column');
    if (from === column) return;
    var value = column.getAttribute('data-value');
    column.querySelector('[data-drop]').appendChild(card);
    count(from, -1); count(column, 1);
    card.classList.add('saving');
    fetch(card.getAttribute('data-move'), {
      method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': window.CrmUi.csrf},
      body: JSON.stringify({value: value || null, version: Number(card.getAttribute('data-version'))})
    }).then(function (r) {
      return r.json().catch(function () { return {ok: false, message: r.statusText}; }).then(function (body) { return {status: r.status, body: body}; });
    }).then(function (answer) {
      card.classList.remove('saving');
      if (answer.status === 200 && answer.body.ok) {
        card.setAttribute('data-version', String(answer.body.version));
        var select = card.querySelector('select[name="value"]');
        if (select) select.value = value;
        var version = card.querySelector('input[name="version"]');
        if (version) version.value = String(answer.body.version);
        say(answer.body.message, 'success');
      } else {
        say(answer.body.message || 'Error', 'error');
        from.querySelector('[data-drop]').appendChild(card);
        count(column, -1); count(from, 1);
        if (answer.status === 409) setTimeout(function () { location.reload(); }, 1500);
      }
    }).catch(function () {
      card.classList.remove('saving');
      from.querySelector('[data-drop]').appendChild(card);
      count(column, -1); count(from, 1);
      say('Network error', 'error');
    });
  });
})();
